"""Compact on-disk cache of parsed splits, keyed by a fingerprint of the source.

Parsing 100,000 small files takes tens of seconds; the cache stores the
tokenized splits in one uncompressed `.npz` so later runs load them in well
under a second. The key is a SHA-256 over the source files' paths, sizes,
modification and change times and inodes (and the reader's version), so any
write to the source rebuilds the cache; no file is read to compute it. Each cache file also holds a SHA-256 of its
own arrays; a truncated or corrupt file is detected, reported and rebuilt.
Writes are atomic (temporary file, then rename).
"""

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from attngen_keras.data.containers import RawSplit
from attngen_keras.data.errors import DataError
from attngen_keras.files import default_file_mode

CACHE_FORMAT = 1
_FIELDS = ("flat", "offsets", "ids", "labels", "file_index")


def default_cache_dir():
    """`$ATTNGEN_CACHE`, else `~/.cache/attngen`."""
    return Path(os.environ.get("ATTNGEN_CACHE", Path.home() / ".cache" / "attngen"))


def make_cache_dir(path):
    """Creates the parsed-data cache directory `path`; a `FileError` saying how to choose
    another (or none) when it cannot be created or written."""
    from attngen_keras.files import FileError

    path = Path(path)
    try:  # (a read-only cache that exists is fine: it is read)
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise FileError(
            path,
            f"cannot be the parsed-data cache directory ({reason}); choose another with "
            "--cache-dir DIR (or ATTNGEN_CACHE), or --cache-dir none to read without a cache",
        ) from None
    return path


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
    os.fchmod(handle, default_file_mode())  # mkstemp's 0600 would hide a shared cache
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


# ---------------------------------------------------------------- memory-mapped splits
#
# Large CSV/TSV sources are read in chunks and written as one directory of
# `.npy` files per (source, loading options): `<split>.tokens.npy` (uint8
# `[n, length]`, opened memory-mapped), `<split>.labels.npy` (int32, read) and
# `<split>.ids.npy` (fixed-width str, memory-mapped), plus `meta.json` with the
# class names, the length and a SHA-256 of every array. Nothing holds a whole
# split's tokens in memory: not the build, not training, not evaluation.

MEMMAP_FORMAT = 1
MEMMAP_META = "meta.json"
# Pages of a memory-mapped array are released (`madvise(MADV_DONTNEED)`)
# after each read: the file stays in the page cache, but pages mapped into
# this process count in its resident set size.
_HASH_CHUNK_BYTES = 32 * 2**20


def release_pages(array):
    """Drops the pages of a memory-mapped `array` from this process's resident set.

    The data stays in the operating system's page cache (re-reading it is
    cheap); a no-op for an in-memory array.

    Example:

    >>> release_pages(np.zeros(3))  # nothing to release
    """
    mapped = getattr(array, "_mmap", None)
    if mapped is None:
        base = getattr(array, "base", None)
        while base is not None and mapped is None:
            mapped = getattr(base, "_mmap", None)
            base = getattr(base, "base", None)
    if mapped is not None and hasattr(mapped, "madvise"):
        import mmap

        with contextlib.suppress(OSError, ValueError):  # closed, or not supported here
            mapped.madvise(mmap.MADV_DONTNEED)


def is_memory_mapped(array):
    """Whether `array` (or the array it views) is a `np.memmap`."""
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = getattr(array, "base", None)
    return False


def sha256_array(array, digest=None):
    """SHA-256 of an array's bytes, read in chunks (a memory-mapped one is released as it goes)."""
    digest = digest or hashlib.sha256()
    flat = array.reshape(-1) if array.ndim else array.reshape(1)
    step = max(1, _HASH_CHUNK_BYTES // max(1, flat.itemsize))
    for start in range(0, len(flat), step):
        digest.update(np.ascontiguousarray(flat[start : start + step]).tobytes())
        release_pages(array)
    return digest


def memmap_dir(cache_dir, key):
    """Directory of the memory-mapped splits for `key`."""
    return Path(cache_dir) / "encoded" / key[:32]


def write_memmap_meta(directory, meta):
    """Writes `meta.json` last: a directory without it is incomplete."""
    (Path(directory) / MEMMAP_META).write_text(json.dumps({"format": MEMMAP_FORMAT, **meta}))


def load_memmap_splits(directory, verify=True):
    """Opens memory-mapped splits; returns `(splits, meta)` or raises `CacheError`.

    Returns:
        `splits` maps each split name to `(tokens, labels, ids)`: tokens and
        ids memory-mapped, labels in memory.
    """
    directory = Path(directory)
    try:
        meta = json.loads((directory / MEMMAP_META).read_text())
    except (OSError, ValueError) as error:
        raise CacheError(f"unreadable cache {directory} ({error})") from None
    if meta.get("format") != MEMMAP_FORMAT:
        raise CacheError(f"cache {directory} has format {meta.get('format')}")
    splits = {}
    for name, info in meta["splits"].items():
        try:
            tokens = np.load(directory / f"{name}.tokens.npy", mmap_mode="r")
            labels = np.load(directory / f"{name}.labels.npy", allow_pickle=False)
            ids = np.load(directory / f"{name}.ids.npy", mmap_mode="r")
        except (OSError, ValueError, EOFError) as error:
            raise CacheError(f"unreadable cache {directory} ({error})") from None
        if (
            tokens.shape != (info["n"], meta["length"])
            or len(labels) != info["n"]
            or len(ids) != info["n"]
        ):
            raise CacheError(
                f"cache {directory} is corrupt (the {name} arrays have the wrong size)"
            )
        if verify:
            found = [sha256_array(a).hexdigest() for a in (tokens, labels, ids)]
            if found != info["sha256"]:
                raise CacheError(f"cache {directory} is corrupt (checksum mismatch)")
        splits[name] = (tokens, labels, ids)
    return splits, meta


class TableScan:
    """Records of CSV/TSV or FASTA files read in chunks: tokens on disk, the rest as small arrays.

    Attributes:
        flat: memory-mapped `uint8` tokens of all records, concatenated.
        offsets: `(n + 1,)` int64; record `i` is `flat[offsets[i]:offsets[i+1]]`.
        label_names: the class names, sorted (`labels` index them, so that
            sorting the codes sorts the names).
        labels: `(n,)` int32 codes into `label_names`.
        splits: `(n,)` int8 codes into `SPLIT_NAMES`.
        ids_flat: memory-mapped utf-8 bytes of all record ids, concatenated.
        id_offsets: `(n + 1,)` int64; id `i` is `ids_flat[id_offsets[i]:id_offsets[i+1]]`.
        file_ends: the number of records read up to the end of each file.
        files: the files read.
    """

    SPLIT_NAMES = ("train", "val", "test", "all")

    def file_of(self, row):
        """The file record `row` was read from."""
        return self.files[int(np.searchsorted(self.file_ends, row, side="right"))]


def scan_tables(paths, flat_path, chunk_rows=100_000, show_progress=False):
    """Reads CSV/TSV files as `readers.read_tables` does, in chunks of `chunk_rows` rows.

    Tokens are appended to `flat_path`; memory holds one chunk plus a few
    bytes per record. Errors are the same `DataError`s as the in-memory reader's.

    Returns:
        A `TableScan`.
    """
    from attngen_keras.data import readers
    from attngen_keras.progress import progress_bar

    by_name = len(paths) > 1
    with (
        _ScanWriter(flat_path) as writer,
        progress_bar(
            desc="reading tables", unit=" rows", disable=not show_progress, mininterval=1.0
        ) as bar,
    ):
        for path in paths:
            split = readers._split_from_name(path) if by_name else None
            rows_in_file = 0
            for chunk in _table_chunks(path, chunk_rows):
                chunk_split = split
                if split is None and "split" in chunk.columns:
                    names = readers.check_split_column(chunk, path)
                    chunk_split = names.map(readers.SPLIT_ALIASES).to_numpy()
                tokens, chunk_lengths, chunk_labels, chunk_ids = _encode_chunk(chunk, path)
                writer.add(tokens, chunk_lengths, chunk_labels, chunk_ids, chunk_split)
                rows_in_file += len(chunk)
                bar.update(len(chunk))
            if rows_in_file == 0:
                raise DataError("no rows", path)
            writer.end_file(path)
    return writer.scan


def scan_fasta(sources, flat_path, chunk_records=100_000, show_progress=False):
    """Reads FASTA files as `readers.read_fasta_per_class` does, streaming, in chunks of records.

    Plain or gzip files are read as they are decompressed (never whole in
    memory); tokens are appended to `flat_path`; memory holds one chunk plus
    a few bytes per record. Errors are the same `DataError`s as the in-memory
    reader's.

    Args:
        sources: `[(split, class_name, path), ...]` in reading order; `split`
            one of `TableScan.SPLIT_NAMES` (`"all"` for files without splits).
        flat_path: where the tokens go (with sibling files for ids and offsets).
        chunk_records: records encoded and written at a time.
        show_progress: show a progress bar.

    Returns:
        A `TableScan`.
    """
    from attngen_keras.progress import progress_bar

    with (
        _ScanWriter(flat_path) as writer,
        progress_bar(
            desc="reading FASTA", unit=" records", disable=not show_progress, mininterval=1.0
        ) as bar,
    ):
        for split, label, path in sources:
            for ids, tokens in _fasta_chunks(path, chunk_records):
                lengths = np.fromiter(map(len, tokens), np.int64, len(tokens))
                joined = np.concatenate(tokens) if tokens else np.zeros(0, np.uint8)
                writer.add(joined, lengths, [label] * len(ids), ids, split)
                bar.update(len(ids))
            writer.end_file(path)
    return writer.scan


def _fasta_chunks(path, chunk_records, chunk_bases=32 * 2**20):
    """`(ids, token arrays)` of a FASTA file, up to `chunk_records` records or `chunk_bases`
    bases at a time (long records: the memory held stays bounded by bases, not records)."""
    from attngen_keras.data import alphabet, readers

    ids, tokens, bases = [], [], 0
    with readers.open_text_stream(path) as handle:
        for record_id, sequence in readers.fasta_records(handle, path):
            tokens.append(alphabet.encode(sequence, file=path, record=record_id))
            ids.append(record_id)
            bases += len(tokens[-1])
            if len(ids) >= chunk_records or bases >= chunk_bases:
                yield ids, tokens
                ids, tokens, bases = [], [], 0
    if ids:
        yield ids, tokens


class _ScanWriter:
    """Appends chunks of records (tokens, ids, offsets on disk; label and split codes in memory)
    and makes the `TableScan` of them (`scan`, once the `with` block ends without error)."""

    def __init__(self, flat_path):
        self.flat_path = Path(flat_path)
        self.ids_path = Path(str(flat_path) + ".ids")
        self.labels, self.split_codes, self.file_ends, self.files = [], [], [], []
        self.label_codes = {}
        self.scan = None

    def __enter__(self):
        self.flat = open(self.flat_path, "wb")  # noqa: SIM115 (closed in __exit__)
        self.id_file = open(self.ids_path, "wb")  # noqa: SIM115
        self.offsets = _OffsetWriter(Path(str(self.flat_path) + ".offsets"))
        self.id_offsets = _OffsetWriter(Path(str(self.flat_path) + ".id_offsets"))
        return self

    def add(self, tokens, lengths, labels, ids, split):
        """One chunk: concatenated `tokens`, their `lengths`, and per record its label and id;
        `split` a split name, None (`all`) or an array of split names."""
        self.flat.write(np.asarray(tokens, np.uint8).tobytes())
        self.offsets.add(lengths)
        self.labels.append(
            np.fromiter(
                (self.label_codes.setdefault(label, len(self.label_codes)) for label in labels),
                dtype=np.int32,
                count=len(labels),
            )  # fmt: skip
        )
        where = TableScan.SPLIT_NAMES.index
        if split is None:
            self.split_codes.append(np.full(len(labels), where("all"), np.int8))
        elif isinstance(split, str):
            self.split_codes.append(np.full(len(labels), where(split), np.int8))
        else:
            self.split_codes.append(np.array([where(s) for s in split], np.int8))
        encoded = [str(i).encode() for i in ids]
        self.id_file.write(b"".join(encoded))
        self.id_offsets.add(np.fromiter(map(len, encoded), np.int64, len(encoded)))

    def end_file(self, path):
        self.files.append(str(path))
        self.file_ends.append(self.offsets.count)

    def __exit__(self, kind, value, traceback):
        self.flat.close()
        self.id_file.close()
        offsets, id_offsets = self.offsets.close(), self.id_offsets.close()
        if kind is not None:
            return False
        scan = TableScan()
        scan.files = self.files
        scan.file_ends = np.array(self.file_ends)
        scan.offsets, scan.id_offsets = offsets, id_offsets
        names = sorted(self.label_codes)
        rank = np.zeros(len(names), np.int32)
        for sorted_code, name in enumerate(names):
            rank[self.label_codes[name]] = sorted_code
        scan.label_names = names
        scan.labels = np.concatenate(self.labels) if self.labels else np.zeros(0, np.int32)
        self.labels = []
        np.take(rank, scan.labels, out=scan.labels)
        scan.splits = np.concatenate(self.split_codes) if self.split_codes else np.zeros(0, np.int8)
        scan.flat = _open_flat(self.flat_path, scan.offsets[-1])
        scan.ids_flat = _open_flat(self.ids_path, scan.id_offsets[-1])
        self.scan = scan
        return False


class _OffsetWriter:
    """`(n + 1,)` int64 offsets from chunks of lengths, written to a file, read back memory-mapped."""

    def __init__(self, path):
        self.path, self.total, self.count = Path(path), 0, 0
        self.handle = open(self.path, "wb")  # noqa: SIM115 (closed in `close`)
        self.handle.write(np.zeros(1, np.int64).tobytes())

    def add(self, lengths):
        ends = self.total + np.cumsum(np.asarray(lengths, np.int64))
        self.handle.write(ends.tobytes())
        if len(ends):
            self.total = int(ends[-1])
        self.count += len(ends)

    def close(self):
        self.handle.close()
        return np.memmap(self.path, dtype=np.int64, mode="r")


def _open_flat(path, size):
    return np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)


def gather_ragged(flat, offsets, rows, width, crop=None, fill=0):
    """`(len(rows), width)` uint8 block of ragged records `rows` of `flat`, padded with `fill`.

    Records longer than `width` keep their `crop` part: `left` (or `None`)
    the first `width` bytes, `center` the middle, `right` the last.
    """
    lengths = offsets[rows + 1] - offsets[rows]
    kept = np.minimum(lengths, width)
    excess = lengths - kept
    shift = {None: 0, "left": 0, "center": excess // 2, "right": excess}[crop]
    block = np.full((len(rows), width), fill, np.uint8)
    if len(rows):
        column = np.arange(width)
        valid = column[None, :] < kept[:, None]
        block[valid] = flat[((offsets[rows] + shift)[:, None] + column[None, :])[valid]]
    return block


def _table_chunks(path, chunk_rows):
    """`pandas` chunks of a CSV/TSV file with the columns normalized as `readers._read_table` does."""
    import pandas as pd

    from attngen_keras.data import readers

    separator = readers.table_separator(path)
    index = 0
    try:
        with readers.open_text_stream(path) as text:
            handle = readers.TableLines(text, separator)
            reader = pd.read_csv(
                handle, sep=separator, dtype=str, keep_default_na=False, chunksize=chunk_rows
            )
            for chunk in reader:
                chunk = readers.normalize_table_columns(chunk, path)
                # "line {index + 2}" names a row, as in `readers._read_table`
                chunk.index = handle.data_lines(range(index, index + len(chunk)))
                index += len(chunk)
                yield chunk
    except pd.errors.EmptyDataError:
        raise DataError("empty file (no header, no rows)", path) from None
    except pd.errors.ParserError as error:
        raise DataError(f"malformed table ({error})", path) from None


def _encode_chunk(chunk, path):
    """Tokens (concatenated), lengths, labels and ids of one chunk, vectorized; errors as the reader's."""
    from attngen_keras.data import alphabet

    sequences = chunk["seq"].str.strip()
    labels = chunk["label"].str.strip().to_numpy()
    ids = (
        chunk["id"].to_numpy() if "id" in chunk.columns else [f"line {i + 2}" for i in chunk.index]
    )
    lengths = sequences.str.len().to_numpy().astype(np.int64)
    joined = "".join(sequences).encode("utf-8")
    tokens = alphabet.BYTE_TO_TOKEN[np.frombuffer(joined, dtype=np.uint8)]
    empty_label = labels == ""
    if (
        len(joined) != lengths.sum()
        or (tokens == alphabet.INVALID).any()
        or (lengths == 0).any()
        or empty_label.any()
    ):
        # the first bad record, reported exactly as the per-record reader does
        for row, (sequence, label) in enumerate(zip(sequences, labels)):
            if label == "":
                raise DataError("empty label", path, ids[row])
            alphabet.encode(sequence, file=path, record=ids[row])
    return tokens, lengths, labels, ids
