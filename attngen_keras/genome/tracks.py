"""Track writers of `attngen scan`: bedGraph (one per class of a multi-class model), bigWig, window TSV.

bedGraph lines are `chrom  start  end  score` (0-based, half-open), each
window's score on its central S bases (`windows.centre`), sorted by
chromosome name (byte order, as `LC_ALL=C sort -k1,1 -k2,2n` and
`bedGraphToBigWig` expect) and by start within a chromosome; the centres of
windows never overlap, so neither do the lines. Every output is written
under a temporary name and renamed into place once complete (an existing
file is replaced only then; a failed scan leaves it as it was). With a
checkpoint (`attngen_keras.genome.checkpoint`), the part files outlive an
interrupted scan, and the same scan run again resumes from them.
"""

import contextlib
import itertools
import os
import shutil
from pathlib import Path

from attngen_keras.files import (
    FileError,
    check_output_file,
    partial_path,
    parts_dir,
    process_tag,
    remove_stale,
    remove_stale_partials,
    reproducible_gzip,
    user_path,
)
from attngen_keras.genome.checkpoint import (
    CHECKPOINT_FILES,
    SAVE_SECONDS,
    Checkpoint,
    kept_after,
    sync_files,
)
from attngen_keras.genome.scoring import default_target

_BIGWIG_BATCH = 100_000


def per_class_paths(out, class_names, target):
    """`{class: path}` of the bedGraph (or bigWig) files: `out` itself for a binary model's target class,
    else `stem.<class>.suffix` per class."""
    out = Path(out)
    if target is not None:
        return {class_names[target]: out}
    stem, suffix = (out.stem, out.suffix) if out.suffix else (out.name, "")
    return {name: out.with_name(f"{stem}.{_safe(name)}{suffix}") for name in class_names}


def _safe(name):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))


_TSV_PART = "windows.tsv"


def _write_tsv(part, out, header, gzipped):
    """`header` then the rows of the part file `part`, into `out`; `gzipped` with a fixed header (no
    time stamp or file name), so that the same rows give the same bytes: the Beam and local
    runners' outputs, and a resumed scan's, compare equal with `cmp`."""
    with open(out, "wb") as raw, open(part, "rb") as rows:
        if gzipped:
            with reproducible_gzip(raw) as compressed:
                compressed.write(header.encode())
                shutil.copyfileobj(rows, compressed, 1 << 20)
        else:
            raw.write(header.encode())
            shutil.copyfileobj(rows, raw, 1 << 20)


class TrackWriter:
    """Writes the scan's outputs from `(chrom, start, probabilities)` in FASTA order, starts ascending.

    Args:
        out: the bedGraph path (`track.bedGraph`; per-class files for multi-class models).
        class_names: the model's classes, in column order.
        length, stride: the window length L and the stride S.
        bigwig: optional bigWig path (per class like the bedGraph).
        tsv: optional window TSV path (`.gz`: gzipped): `chrom start end prob_<class>...`.
        target: the column whose probability the bedGraph (and bigWig) holds, written to
            `out` itself; None: the second class of a binary model, or one file per class
            of a multi-class model.
        force: replace existing output files (at `finish`); otherwise they are an error
            here, before any work. With a checkpoint, also discard one of a different scan.
        checkpoint_identity: a `checkpoint.scan_identity` to keep the part files in a
            checkpoint beside `out` and resume from it (`progress` is what it held);
            None: temporary part files, removed when the writer exits.
        checkpoint_seconds: how often progress is saved (with a checkpoint).

    Use as a context manager; `finish(sizes)` (the records' sizes, in FASTA
    order) completes the files; leaving the block without it removes them,
    except that a checkpoint is kept, its progress saved for the next run,
    when `checkpoint.kept_after` says so (an interruption, an I/O error, a
    file problem once every window is written; not bad input, which would
    recur).

    Example:

    >>> with TrackWriter("track.bedGraph", ["bg", "promoter"], 200, 50) as tracks:  # doctest: +SKIP
    ...     tracks.add("chr1", 0, probs); tracks.finish({"chr1": 1000})
    """

    def __init__(
        self, out, class_names, length, stride, bigwig=None, tsv=None, target=None, force=False,
        checkpoint_identity=None, checkpoint_seconds=SAVE_SECONDS,
    ):  # fmt: skip
        self.class_names = list(class_names)
        self.target = default_target(self.class_names) if target is None else target
        self.length, self.stride = int(length), int(stride)
        self.offset = (self.length - self.stride) // 2
        self.bedgraphs = per_class_paths(out, self.class_names, self.target)
        self.bigwigs = per_class_paths(bigwig, self.class_names, self.target) if bigwig else {}
        self.tsv = Path(tsv) if tsv else None
        for path in [
            *self.bedgraphs.values(),
            *self.bigwigs.values(),
            *([self.tsv] if tsv else []),
        ]:
            # an existing file (unless `force`), a directory there, an unwritable place: an error now
            check_output_file(path, force=force)
        if self.bigwigs:
            _require_pybigwig()  # now, not after the scan
        first = self._first = next(iter(self.bedgraphs.values()))
        self.checkpoint = None
        if checkpoint_identity is not None:
            self.checkpoint = Checkpoint(
                first, checkpoint_identity, force=force, interval=checkpoint_seconds
            )
        self._parts = parts_dir(first) if self.checkpoint is None else self.checkpoint.directory
        self._columns = self.tracked_columns(self.class_names, self.target)
        self._chrom = None
        self._order = {}  # chrom -> part file index
        self._handles = []
        self._tsv_handle = None
        self._last = None  # the last window written, (chrom, start)
        self._saved = None  # ... when progress was last saved
        self._boundary = None  # where the scan was after its last whole batch
        self._touched = set()  # part files written since the last save
        self._finishing = False  # every window written
        self._finished = False
        self.progress = None  # the checkpoint's progress when this scan resumes
        self.lines = 0

    @staticmethod
    def tracked_columns(class_names, target):
        """The class columns that get a bedGraph: `[target]`, or every class when it is None."""
        return [target] if target is not None else list(range(len(class_names)))

    def outputs(self):
        """`(option, path)` of every file this writer will write."""
        return [
            *(("--out", p) for p in self.bedgraphs.values()),
            *(("--bigwig", p) for p in self.bigwigs.values()),
            *([("--tsv", self.tsv)] if self.tsv else []),
        ]

    def __enter__(self):
        # part files and partial outputs left by killed scans
        first = self._first
        remove_stale(first.parent, parts_dir(first).name[: -len(process_tag())])
        for _, path in self.outputs():
            remove_stale_partials(path)
        if self.checkpoint is None:
            shutil.rmtree(self._parts, ignore_errors=True)
            self._parts.mkdir(parents=True)
        else:
            self.progress = self.checkpoint.open()
            self._restore(self.progress)
        if self.tsv is not None:
            mode = "a" if self.progress else "w"
            self._tsv_handle = open(self._parts / _TSV_PART, mode, newline="")  # noqa: SIM115 (closed in __exit__ or finish)
        return self

    def _restore(self, progress):
        """Cuts the current record's part files and the TSV's back to the sizes saved with `progress`
        (a kill may have written more), removes the part files of records begun since, and reopens
        the record it stopped in (the records before it were complete, and synced, then)."""
        sizes = (progress or {}).get("sizes", {})
        damaged = [name for name, size in sizes.items()
                   if not (self._parts / name).is_file()
                   or (self._parts / name).stat().st_size < size]  # fmt: skip
        if damaged:
            self.checkpoint.damaged(damaged[0])
            self.progress = progress = None
            sizes = {}
        current = None
        if progress and progress.get("last") is not None:
            current = progress["order"][progress["last"][0]]
        for path in self._parts.iterdir():
            if path.name in CHECKPOINT_FILES or path.name in sizes:
                continue
            index = path.name.split(".")[0]
            if current is not None and index.isdigit() and int(index) < current:
                continue  # a record completed before the save
            path.unlink()
        for name, size in sizes.items():
            os.truncate(self._parts / name, size)
        if current is None:
            return
        self._order = dict(progress["order"])
        self.lines = int(progress["lines"])
        self._last = self._saved = tuple(progress["last"])
        chrom = self._last[0]
        self._handles = [open(self._parts / f"{current}.{c}", "a") for c in self._columns]  # noqa: SIM115 (closed in _close_parts)
        self._touched = {f"{current}.{c}" for c in self._columns}
        self._chrom = chrom

    def __exit__(self, kind, error, trace):
        interrupted = kept_after(kind, self._finishing)
        keep = self.checkpoint is not None and not self._finished and interrupted
        try:
            if keep:
                # (a full disk) the progress saved last stays; it tells the next run what is whole
                with contextlib.suppress(OSError):
                    self.save_progress()
            self._close_parts()
            if self._tsv_handle is not None:
                with contextlib.suppress(OSError):
                    self._tsv_handle.close()
                self._tsv_handle = None
        finally:
            if self.checkpoint is None:
                shutil.rmtree(self._parts, ignore_errors=True)
            elif self._finished:
                pass  # (`finish` removed it)
            elif keep and self._saved is not None:
                self.checkpoint.release()  # another process (another host) may resume it
            else:
                with contextlib.suppress(OSError):
                    self.checkpoint.remove()
        return False

    def _open_chrom(self, chrom):
        self._close_parts()
        if chrom in self._order:
            raise ValueError(
                f"windows of {chrom!r} are not contiguous (the writer takes FASTA order)"
            )
        self._order[chrom] = len(self._order)
        index = self._order[chrom]
        self._handles = [open(self._parts / f"{index}.{c}", "w") for c in self._columns]  # noqa: SIM115 (closed in _close_parts)
        self._touched.update(f"{index}.{c}" for c in self._columns)
        self._chrom = chrom

    def _close_parts(self):
        for handle in self._handles:
            handle.close()
        self._handles = []

    def add(self, chrom, start, probabilities):
        """One window's probabilities (`[C]`)."""
        self.add_batch([(chrom, start)], [list(probabilities)])

    def add_batch(self, keys, probabilities):
        """Windows `[(chrom, start), ...]` and their probabilities (`[n, C]` array or lists); with a
        checkpoint, saves the progress when it is due (at this batch boundary)."""
        rows = probabilities.tolist() if hasattr(probabilities, "tolist") else probabilities
        if not rows:
            return
        offset, stride, length = self.offset, self.stride, self.length
        tsv = self._tsv_handle
        for (chrom, start), row in zip(keys, rows):
            if chrom != self._chrom:
                self._open_chrom(chrom)
            begin = start + offset
            for handle, column in zip(self._handles, self._columns):
                handle.write(f"{chrom}\t{begin}\t{begin + stride}\t{row[column]:.6f}\n")
            if tsv is not None:
                values = "\t".join([f"{p:.6f}" for p in row])
                tsv.write(f"{chrom}\t{start}\t{start + length}\t{values}\n")
        self.lines += len(rows)
        self._last = tuple(keys[len(rows) - 1])
        if self.checkpoint is not None:
            self._boundary = self._snapshot()
            if self.checkpoint.due():
                self.save_progress()

    def _snapshot(self):
        """Where the scan is after a whole batch: the last window, the lines, the records begun, and
        the current record's and the TSV's sizes (`tell` flushes them)."""
        current = self._order[self._last[0]]
        handles = dict(zip([f"{current}.{c}" for c in self._columns], self._handles))
        if self._tsv_handle is not None:
            handles[_TSV_PART] = self._tsv_handle
        return {"last": list(self._last), "lines": self.lines, "records": len(self._order),
                "sizes": {name: handle.tell() for name, handle in handles.items()}}  # fmt: skip

    def save_progress(self):
        """Syncs the part files, then saves where the scan was after its last whole batch (with a
        checkpoint): a window half written by an interruption is cut off by the next run."""
        state = self._boundary
        if self.checkpoint is None or state is None or tuple(state["last"]) == self._saved:
            return
        for handle in [*self._handles, *([self._tsv_handle] if self._tsv_handle else [])]:
            handle.flush()
        # the files written since the last save (records completed since, the current one)
        touched = sorted(self._touched) + ([_TSV_PART] if self.tsv is not None else [])
        sync_files([self._parts / name for name in touched])
        order = dict(itertools.islice(self._order.items(), state["records"]))
        self.checkpoint.save({"order": order, **{k: state[k] for k in ("last", "lines", "sizes")}})
        self._saved = tuple(state["last"])
        current = order[state["last"][0]]
        self._touched = {f"{current}.{c}" for c in self._columns} if self._handles else set()

    def finish(self, sizes):
        """Assembles the bedGraph files in sorted chromosome order, writes the bigWigs and the window
        TSV, renames all into place (and removes the checkpoint)."""
        self._finishing = True
        self.save_progress()  # every window: a failure from here on resumes with none to score
        self._close_parts()
        if self._tsv_handle is not None:
            self._tsv_handle.close()
            self._tsv_handle = None
        order = self._order
        written = []
        try:
            for column in self._columns:
                name = self.class_names[column]
                path = self.bedgraphs[name]
                partial = partial_path(path)
                written.append((partial, path))  # removed too if writing it fails
                with open(partial, "wb") as out:
                    for chrom in sorted(order):
                        with open(self._parts / f"{order[chrom]}.{column}", "rb") as part:
                            shutil.copyfileobj(part, out, 1 << 20)
                if name in self.bigwigs:
                    bigwig = self.bigwigs[name]
                    written.append(
                        (partial_path(bigwig), bigwig)
                    )  # removed too if writing it fails
                    _write_bigwig(partial, partial_path(bigwig), sizes)
            if self.tsv is not None:
                written.append((partial_path(self.tsv), self.tsv))
                header = ["chrom", "start", "end", *[f"prob_{c}" for c in self.class_names]]
                _write_tsv(self._parts / _TSV_PART, partial_path(self.tsv),
                           "\t".join(header) + "\n", self.tsv.name.endswith(".gz"))  # fmt: skip
        except BaseException:
            for partial, _ in written:
                partial.unlink(missing_ok=True)
            raise
        for partial, path in written:
            os.replace(partial, path)
        self._finished = True
        if self.checkpoint is not None:
            self.checkpoint.remove()
        return [path for _, path in written]


def _require_pybigwig():
    try:
        import pyBigWig
    except ImportError:
        raise ValueError('--bigwig needs pyBigWig: pip install -e ".[genome]"') from None
    return pyBigWig


def _write_bigwig(bedgraph, out, sizes):
    """A bigWig of a sorted bedGraph through pyBigWig (chromosome sizes from the FASTA)."""
    pyBigWig = _require_pybigwig()
    # pyBigWig returns a handle even when it cannot create the file, and then crashes the
    # process (SIGSEGV) in addHeader: create it first, so that Python reports the problem
    with open(out, "wb"):
        pass
    handle = pyBigWig.open(str(out), "w")
    if handle is None:
        raise FileError(user_path(out), "cannot create the bigWig file")
    try:
        handle.addHeader([(chrom, int(sizes[chrom])) for chrom in sorted(sizes)], maxZooms=10)
        chroms, starts, ends, values = [], [], [], []
        with open(bedgraph) as lines:
            for line in lines:
                chrom, start, end, value = line.split("\t")
                chroms.append(chrom)
                starts.append(int(start))
                ends.append(int(end))
                values.append(float(value))
                if len(chroms) == _BIGWIG_BATCH:
                    handle.addEntries(chroms, starts, ends=ends, values=values)
                    chroms, starts, ends, values = [], [], [], []
        if chroms:
            handle.addEntries(chroms, starts, ends=ends, values=values)
    finally:
        handle.close()
