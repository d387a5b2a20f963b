"""Track writers of `attngen scan`: bedGraph (one per class of a multi-class model), bigWig, window TSV.

bedGraph lines are `chrom  start  end  score` (0-based, half-open), each
window's score on its central S bases (`windows.centre`), sorted by
chromosome name (byte order, as `LC_ALL=C sort -k1,1 -k2,2n` and
`bedGraphToBigWig` expect) and by start within a chromosome; the centres of
windows never overlap, so neither do the lines. Every output is written
under a temporary name and renamed into place once complete (an existing
file is replaced only then; a failed scan leaves it as it was).
"""

import contextlib
import gzip
import io
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
    user_path,
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


def _open_text(path, gzipped):
    """A text file for writing; gzipped with a fixed header (no time stamp, no file name), so that
    the same rows give the same bytes (the Beam and local runners' outputs compare with `cmp`)."""
    if not gzipped:
        return open(path, "w", newline="")  # noqa: SIM115 (the caller closes it)
    raw = open(path, "wb")  # noqa: SIM115
    try:
        compressed = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
    except BaseException:
        raw.close()
        raise
    return _ClosingText(io.TextIOWrapper(compressed, newline=""), raw)


class _ClosingText:
    """A text wrapper over a GzipFile over a raw file: closing it closes all three."""

    def __init__(self, text, raw):
        self._text, self._raw = text, raw

    def write(self, data):
        return self._text.write(data)

    def close(self):
        try:
            self._text.close()
        finally:
            self._raw.close()


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
            here, before any work.

    Use as a context manager; `finish(sizes)` (the records' sizes, in FASTA
    order) completes the files; leaving the block without it removes them.

    Example:

    >>> with TrackWriter("track.bedGraph", ["bg", "promoter"], 200, 50) as tracks:  # doctest: +SKIP
    ...     tracks.add("chr1", 0, probs); tracks.finish({"chr1": 1000})
    """

    def __init__(
        self, out, class_names, length, stride, bigwig=None, tsv=None, target=None, force=False
    ):
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
        first = next(iter(self.bedgraphs.values()))
        self._parts = parts_dir(first)
        self._columns = (
            [self.target] if self.target is not None else list(range(len(self.class_names)))
        )
        self._chrom = None
        self._order = {}  # chrom -> part file index
        self._handles = []
        self._tsv_handle = None
        self.lines = 0

    def outputs(self):
        """`(option, path)` of every file this writer will write."""
        return [
            *(("--out", p) for p in self.bedgraphs.values()),
            *(("--bigwig", p) for p in self.bigwigs.values()),
            *([("--tsv", self.tsv)] if self.tsv else []),
        ]

    def __enter__(self):
        # part files and partial outputs left by killed scans
        remove_stale(self._parts.parent, self._parts.name[: -len(process_tag())])
        for _, path in self.outputs():
            remove_stale_partials(path)
        shutil.rmtree(self._parts, ignore_errors=True)
        self._parts.mkdir(parents=True)
        if self.tsv is not None:
            self._tsv_handle = _open_text(partial_path(self.tsv), self.tsv.name.endswith(".gz"))
            header = ["chrom", "start", "end", *[f"prob_{c}" for c in self.class_names]]
            self._tsv_handle.write("\t".join(header) + "\n")
        return self

    def __exit__(self, kind, error, trace):
        try:
            self._close_parts()
            if self._tsv_handle is not None:
                with contextlib.suppress(OSError):  # (a full disk) the file goes anyway
                    self._tsv_handle.close()
                partial_path(self.tsv).unlink(missing_ok=True)
        finally:
            shutil.rmtree(self._parts, ignore_errors=True)
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
        self._chrom = chrom

    def _close_parts(self):
        for handle in self._handles:
            handle.close()
        self._handles = []

    def add(self, chrom, start, probabilities):
        """One window's probabilities (`[C]`)."""
        self.add_batch([(chrom, start)], [list(probabilities)])

    def add_batch(self, keys, probabilities):
        """Windows `[(chrom, start), ...]` and their probabilities (`[n, C]` array or lists)."""
        rows = probabilities.tolist() if hasattr(probabilities, "tolist") else probabilities
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

    def finish(self, sizes):
        """Assembles the bedGraph files in sorted chromosome order, writes the bigWigs, renames all into place."""
        self._close_parts()
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
            if self._tsv_handle is not None:
                self._tsv_handle.close()
                self._tsv_handle = None
                written.append((partial_path(self.tsv), self.tsv))
        except BaseException:
            for partial, _ in written:
                partial.unlink(missing_ok=True)
            raise
        for partial, path in written:
            os.replace(partial, path)
        return [path for _, path in written]


def _write_bigwig(bedgraph, out, sizes):
    """A bigWig of a sorted bedGraph through pyBigWig (chromosome sizes from the FASTA)."""
    try:
        import pyBigWig
    except ImportError:
        raise ValueError('--bigwig needs pyBigWig: pip install -e ".[genome]"') from None
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
