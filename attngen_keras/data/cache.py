"""Compact on-disk cache of parsed splits, keyed by a fingerprint of the source.

Parsing 100,000 small files takes tens of seconds; the cache stores the
tokenized splits in one uncompressed `.npz` so later runs load them in well
under a second. The key is a SHA-256 over the source files' paths, sizes,
modification and change times and inodes (and the reader's version), so any
write to the source rebuilds the cache; no file is read to compute it. Each cache file also holds a SHA-256 of its
own arrays; a truncated or corrupt file is detected, reported and rebuilt.
Writes are atomic (temporary file, then rename).
"""

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from attngen_keras.data.containers import RawSplit

CACHE_FORMAT = 1
_FIELDS = ("flat", "offsets", "ids", "labels", "file_index")


def default_cache_dir():
    """`$ATTNGEN_CACHE`, else `~/.cache/attngen`."""
    return Path(os.environ.get("ATTNGEN_CACHE", Path.home() / ".cache" / "attngen"))


def fingerprint(paths, extra=""):
    """SHA-256 over path, size, mtime, ctime and inode of `paths`, plus `extra`.

    Directories are walked recursively (stat only, no file is read: hashing
    the bytes of 100,000 files would cost as much as parsing them).
    """
    digest = hashlib.sha256(f"{CACHE_FORMAT}|{extra}".encode())
    for path in paths:
        path = Path(path)
        if path.is_dir():
            lines = []
            _walk_stats(str(path), "", lines)
            digest.update("".join(lines).encode())
        else:
            digest.update(f"{path.resolve()}|{_stat_key(path.stat())}\n".encode())
    return digest.hexdigest()


def _walk_stats(directory, prefix, lines):
    with os.scandir(directory) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=True):
                _walk_stats(entry.path, f"{prefix}{entry.name}/", lines)
            else:
                lines.append(f"{prefix}{entry.name}|{_stat_key(entry.stat())}\n")


def _stat_key(stat):
    # ctime and inode change on any write or replacement, even when a copy
    # tool preserves the size and the modification time.
    return f"{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|{stat.st_ino}"


def _checksum(arrays):
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(arrays[key]).tobytes())
    return digest.hexdigest()


def save_splits(path, splits, meta=None):
    """Atomically writes `{split: RawSplit}` to `path` (`.npz`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, raw in splits.items():
        for name in _FIELDS:
            arrays[f"{split}/{name}"] = getattr(raw, name)
        arrays[f"{split}/files"] = np.asarray(raw.files, dtype=str)
    header = {
        "format": CACHE_FORMAT,
        "splits": sorted(splits),
        "checksum": _checksum(arrays),
        **(meta or {}),
    }
    arrays["meta"] = np.asarray(json.dumps(header))
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        with open(tmp, "wb") as out:
            np.savez(out, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_splits(path):
    """Reads a cache file; returns `(splits, meta)` or raises `CacheError`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise CacheError(f"unreadable cache file {path} ({error})") from None
    if meta.get("format") != CACHE_FORMAT:
        raise CacheError(f"cache file {path} has format {meta.get('format')}")
    if _checksum(arrays) != meta.get("checksum"):
        raise CacheError(f"cache file {path} is corrupt (checksum mismatch)")
    splits = {}
    for split in meta["splits"]:
        fields = {name: arrays[f"{split}/{name}"] for name in _FIELDS}
        splits[split] = RawSplit(files=list(arrays[f"{split}/files"]), **fields)
    return splits, meta


class CacheError(Exception):
    """A cache file that cannot be used (it is then rebuilt)."""


def cached(cache_dir, key, build, description=""):
    """Returns cached splits for `key`, building and caching them if needed.

    Args:
        cache_dir: directory of cache files, or `None` to disable caching.
        key: the fingerprint of the source.
        build: zero-argument callable returning `{split: RawSplit}`.
        description: a name for messages.

    Returns:
        `(splits, hit)` where `hit` tells whether the cache was used.
    """
    if cache_dir is None:
        return build(), False
    path = Path(cache_dir) / "parsed" / f"{key[:32]}.npz"
    if path.exists():
        try:
            splits, _ = load_splits(path)
            return splits, True
        except CacheError as error:
            warnings.warn(f"{error}; rebuilding it", stacklevel=2)
    splits = build()
    try:
        save_splits(path, splits, {"source": description, "key": key})
    except OSError as error:
        warnings.warn(f"could not write cache {path} ({error})", stacklevel=2)
    return splits, False
