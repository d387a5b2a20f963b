"""Checkpoints of `attngen scan` and `attngen variants`: interrupted or killed, run again the same way, they resume.

A local scan keeps its part files (one per record and tracked class, and the
window TSV's rows) in a directory beside its first output,
`.NAME.scan-checkpoint`, with `identity.json` (what was scanned, and how) and
`progress.json` (the last window written, and each part file's size then).
Progress is saved at batch boundaries, every `interval` seconds and when the
scan stops; a kill loses at most the windows scored since the last save.
Run again with the same model, FASTA, regions and options, the scan skips
the windows already written (the FASTA is still read, so its counts come
out the same) and writes byte-identical outputs; with anything different
it refuses to resume, naming what changed (`--force` discards the
checkpoint and starts afresh). The directory is removed when the outputs
are complete.

`attngen variants` does the same with its effects TSV's rows
(`.NAME.variants-checkpoint` beside `--out`): its progress is the number of
ALT alleles written and the counts its report needs; run again, it skips
those alleles of the VCF.
"""

import contextlib
import os
import shutil
import time
import zlib
from pathlib import Path

import numpy as np

from attngen_keras.data.errors import DataError
from attngen_keras.files import FileError, is_stale_tag, process_tag, read_json, write_json_atomic

SAVE_SECONDS = 30.0  # between progress saves
FORMAT = 1
_IDENTITY = "identity.json"
_PROGRESS = "progress.json"
_OWNER = "owner"
# the checkpoint's own files (the rest are the scan's part files)
CHECKPOINT_FILES = (_IDENTITY, _PROGRESS, _OWNER)
_BLOCK_BYTES = 1 << 22
_PROBE_WINDOWS = 8


def checkpoint_dir(out, command="scan"):
    """`.NAME.COMMAND-checkpoint` beside `out` (the scan's first bedGraph, the variants' TSV)."""
    out = Path(out)
    return out.with_name(f".{out.name}.{command}-checkpoint")


def file_fingerprint(path):
    """`{"size", "crc32"}` of a file's whole content: the same file moved or copied matches, an
    edited or replaced one does not (`None` for no file). One streaming pass (about 1 s a GB)."""
    if path is None:
        return None
    checksum = 0
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK_BYTES):
            checksum = zlib.crc32(block, checksum)
            size += len(block)
    return {"size": size, "crc32": f"{checksum:08x}"}


def model_probe(scorer):
    """The model's probabilities of a fixed batch of pseudo-random windows, rounded to 6 decimals:
    the same model (wherever its files are) gives the same numbers."""
    rng = np.random.default_rng(20261129)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    windows = [letters[rng.integers(0, 4, scorer.length)].tobytes() for _ in range(_PROBE_WINDOWS)]
    return np.round(scorer.probabilities(windows).astype(np.float64), 6).tolist()


def _model_identity(scorer):
    return {"class_names": [str(c) for c in scorer.class_names], "length": scorer.length,
            "probe": model_probe(scorer)}  # fmt: skip


def scan_identity(scorer, fasta, regions, stride, both_strands, max_n_fraction, batch_size,
                  columns, tsv):  # fmt: skip
    """What a scan's outputs depend on: a resumed scan must match it exactly (the model within 1e-5)."""
    return {
        "format": FORMAT,
        "model": _model_identity(scorer),
        "fasta": file_fingerprint(fasta),
        "regions": file_fingerprint(regions),
        "stride": int(stride),
        "both_strands": bool(both_strands),
        "max_n_fraction": float(max_n_fraction),
        "batch_size": int(batch_size),
        "tracked_classes": [str(scorer.class_names[c]) for c in columns],
        "tsv": bool(tsv),
    }


def variants_identity(scorer, vcf, fasta, both_strands, batch_size, max_n_fraction):
    """What the effects TSV depends on: a resumed `attngen variants` must match it exactly."""
    return {
        "format": FORMAT,
        "model": _model_identity(scorer),
        "vcf": file_fingerprint(vcf),
        "fasta": file_fingerprint(fasta),
        "both_strands": bool(both_strands),
        "batch_size": int(batch_size),
        "max_n_fraction": float(max_n_fraction),
        "class": None if scorer.target is None else str(scorer.class_names[scorer.target]),
    }


_WHAT = {
    "vcf": "the VCF",
    "class": "--class",
    "fasta": "the FASTA",
    "regions": "the --regions file",
    "stride": "--stride",
    "both_strands": "--both-strands",
    "max_n_fraction": "--max-n-fraction",
    "batch_size": "--batch-size",
    "tracked_classes": "the tracked class (--class)",
    "tsv": "--tsv",
    "format": "the checkpoint format (another attngen version)",
}


def identity_differences(saved, current):
    """What differs between two identities (`scan_identity`, `variants_identity`), in words (empty:
    the same run)."""
    differences = []
    for key, current_value in current.items():
        saved_value = saved.get(key)
        if key == "model":
            same = (
                isinstance(saved_value, dict)
                and saved_value.get("class_names") == current_value["class_names"]
                and saved_value.get("length") == current_value["length"]
                and np.allclose(saved_value.get("probe"), current_value["probe"], atol=1e-5)
            )
            if not same:
                differences.append("the model")
        elif saved_value != current_value:
            differences.append(_WHAT.get(key, key))
    return differences


class Checkpoint:
    """The checkpoint directory of one scan (or variants run): its identity, progress and owner.

    Args:
        out: the scan's first bedGraph, or the variants' TSV (the checkpoint lives beside it).
        identity: `scan_identity(...)` or `variants_identity(...)` of this run.
        force: discard a checkpoint of a different run instead of refusing.
        interval: seconds between progress saves.
        command: `"scan"` or `"variants"` (the directory's name and the messages).

    `open()` takes the directory (refusing one a running process holds) and
    returns the saved progress (None: start afresh); the writer saves
    progress through `save` and removes the directory with `remove` once
    its outputs are complete.

    Example:

    >>> checkpoint = Checkpoint("track.bedGraph", identity)  # doctest: +SKIP
    >>> progress = checkpoint.open()  # doctest: +SKIP
    """

    def __init__(self, out, identity, force=False, interval=SAVE_SECONDS, command="scan"):
        self.out = Path(out)
        self.command = command
        self.directory = checkpoint_dir(out, command)
        self.identity = identity
        self.force = bool(force)
        self.interval = float(interval)
        self.last_save = time.monotonic()

    def open(self):
        """Takes the directory; returns the saved progress dict, or None for a fresh start."""
        directory = self.directory
        if directory.exists() and not directory.is_dir():
            raise FileError(directory, f"is a file, not a {self.command} checkpoint; remove it")
        if directory.exists():
            self._claim()
            progress = self._saved_progress()
            if progress is not None:
                return progress
        else:
            directory.mkdir()  # (so that `reset` finds it, as after an earlier run)
        self.reset()
        return None

    def reset(self):
        """Empties the directory and starts it afresh (this process the owner, this identity)."""
        shutil.rmtree(self.directory)
        self.directory.mkdir()
        self._write_owner()
        write_json_atomic(self.directory / _IDENTITY, self.identity)

    def release(self):
        """Gives the directory up, keeping its progress: the next run, on any host, may take it."""
        owner = self.directory / _OWNER
        with contextlib.suppress(OSError):
            if owner.read_text().strip() == process_tag():
                owner.unlink()

    def _claim(self):
        refuse_a_live_owner(self.directory, self.out, self.command)
        self._write_owner()

    def _write_owner(self):
        (self.directory / _OWNER).write_text(process_tag() + "\n")

    def _saved_progress(self):
        """The saved progress when the checkpoint is of this very run; None when it holds nothing
        to resume (whatever its identity) or, with `force`, when it is a different run's."""
        identity_path, progress_path = self.directory / _IDENTITY, self.directory / _PROGRESS
        if not identity_path.exists() or not progress_path.exists():
            return None
        saved = read_json(identity_path, f"{self.command} checkpoint")
        differences = identity_differences(saved, self.identity)
        if differences:
            if self.force:
                return None
            verb = "differs" if len(differences) == 1 else "differ"
            raise FileError(
                self.out,
                f"an interrupted {self.command} left its checkpoint here ({self.directory}), but "
                f"{', '.join(differences)} {verb}; run it again as it was to resume it, or add "
                "--force to discard it and start afresh",
            )
        return read_json(progress_path, f"{self.command} checkpoint")

    def damaged(self, name):
        """A damaged checkpoint (part `name` missing or shorter than saved): with `force`, emptied for a
        fresh start; else a `FileError` saying how to start afresh."""
        if not self.force:
            raise FileError(
                self.directory,
                f"damaged {self.command} checkpoint ({name} is missing or shorter than saved); "
                "add --force to discard it and start afresh",
            )
        self.reset()

    def due(self):
        """Whether `interval` seconds have passed since the last save."""
        return time.monotonic() - self.last_save >= self.interval

    def save(self, progress):
        """Writes `progress` (after the caller has flushed and synced the part files)."""
        write_json_atomic(self.directory / _PROGRESS, progress)
        self.last_save = time.monotonic()

    def remove(self):
        """Removes the directory (the outputs are complete, or there is nothing to resume)."""
        shutil.rmtree(self.directory, ignore_errors=True)


def refuse_a_live_owner(directory, out, command):
    """A `FileError` when checkpoint `directory` belongs to another process that is alive, or that
    ran on another host (whose liveness cannot be judged from here)."""
    owner_file = directory / _OWNER
    owner = ""
    with contextlib.suppress(OSError):
        owner = owner_file.read_text().strip()
    if owner and owner != process_tag() and not is_stale_tag(owner):
        raise FileError(
            out,
            f"another attngen {command} ({owner}) is writing this output, or was killed on "
            f"another host; wait for it, choose another --out, or, if that process is gone, "
            f"remove {owner_file} (the progress it saved is kept) and run again",
        )


def clear_for_beam(out, command, force):
    """Before a `--runner beam` run into `out` (which does not checkpoint): a local run's
    checkpoint beside it with progress is refused, as that progress would be left behind unused,
    or, with `force`, removed; one a live local run owns is always refused (both would write
    `out`); one without progress is removed.

    Example:

    >>> clear_for_beam("track.bedGraph", "scan", force=False)  # no checkpoint: nothing to do
    """
    directory = checkpoint_dir(out, command)
    if not directory.exists():
        return
    if not directory.is_dir():
        raise FileError(directory, f"is a file, not a {command} checkpoint; remove it")
    refuse_a_live_owner(directory, out, command)
    if (directory / _PROGRESS).exists() and not force:
        raise FileError(
            out,
            f"an interrupted local {command}'s checkpoint is beside it ({directory.name}), which "
            f"--runner beam cannot resume: run with --runner local to resume it, or add --force to "
            "discard it",
        )
    shutil.rmtree(directory)


def kept_after(kind, all_written):
    """Whether a run that left its `with` block by exception `kind` keeps its checkpoint.

    Interrupted, killed, an I/O error, or a file problem once everything is written (a bigWig or
    an annotated VCF that cannot be created): kept for the next run. Bad input would fail the
    same way again: a `ValueError` while scoring (a malformed record), a `DataError` at any time.
    """
    return (
        kind is not None
        and not issubclass(kind, DataError)
        and (all_written or not issubclass(kind, ValueError))
    )


def sync_files(paths):
    """`fsync` of each file (written and closed or flushed by the caller)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def pending_windows(windows, progress):
    """The windows not yet written, in order: those after where `progress` (a saved scan's) stops."""
    order = progress["order"]
    last_chrom, last_start = progress["last"]
    last_index = order[last_chrom]
    for window in windows:
        index = order.get(window[0])
        if index is None or index > last_index or (index == last_index and window[1] > last_start):
            yield window


def describe(progress):
    """`"chr2:1,200"`: where the saved progress stops, for messages."""
    chrom, start = progress["last"]
    return f"{chrom}:{start:,}"
