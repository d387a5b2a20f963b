"""Streaming FASTA tiling: every window of length L at every S positions, memory independent of the genome.

The FASTA (plain, gzip or bgzip: a bgzip file is a series of gzip members,
which `gzip` reads as one stream) is read in blocks of bytes, never a record
at a time, so a 250-Mb chromosome on one line costs no more memory than one
on 60-column lines. Each record's sequence is kept only from the next window
start onwards: the bases a window needs across a block (chunk) boundary are
carried over, so windows across chunk boundaries are exactly the windows of
the whole sequence.

Tiling, precisely (0-based, half-open): in a record of size `n` (or a region
`[r0, r1)` of it, clipped to the record), windows start at `r0, r0 + S,
r0 + 2S, ...` and are kept while `start + L <= min(r1, n)`; a record (region)
shorter than L has no window. A window with more than `max_n_fraction * L`
N's (either case) is skipped. The score of the window `[w, w + L)` belongs to
its central S bases `[w + (L - S) // 2, w + (L - S) // 2 + S)`, so the
centres of consecutive windows tile the sequence without gaps or overlaps;
the first `(L - S) // 2` bases of a record (region) and the bases after the
last window's centre have no score (they are not the centre of any window).
"""

import gzip
import math
import zlib
from pathlib import Path

from attngen_keras.data.alphabet import SYMBOLS
from attngen_keras.data.errors import DataError, missing_file_error
from attngen_keras.data.readers import open_binary

BLOCK_BYTES = 1 << 20  # read this much compressed-or-not text at a time
CHUNK_BASES = 1 << 20  # window a record's buffered sequence once it holds this many bases
DEFAULT_MAX_N_FRACTION = 0.1  # windows with more N's are skipped (scan) or not scored (variants)


def centre(start, length, stride):
    """`(begin, end)` of the S bases a window's score is written to."""
    offset = (length - stride) // 2
    return start + offset, start + offset + stride


# Characters of a sequence that are plain nucleotides (U reads as T), and IUPAC nucleotide codes.
NUCLEOTIDES = b"ACGTUNacgtun"
IUPAC = (SYMBOLS + "U" + SYMBOLS.lower() + "u").encode()


def window_starts(region_start, region_end, size, length, stride):
    """The window starts in `[region_start, min(region_end, size))` (a `range`)."""
    end = min(region_end, size)
    if end - region_start < length:
        return range(0)
    return range(region_start, end - length + 1, stride)


def iter_fasta_pieces(path, block_bytes=BLOCK_BYTES):
    """Yields `("record", name)` at each header and `("seq", bytes)` pieces of sequence, streaming.

    Whitespace and line breaks are removed; `;` comment lines are ignored.
    Raises `DataError` for sequence before the first header, a header without
    a name, a duplicate record name, a corrupt gzip stream or a file without
    records.
    """
    names = set()
    count = 0
    header = None  # bytes of a header line split across blocks
    mid_line = False  # the previous block ended inside a sequence line
    try:
        with open_binary(path) as handle:
            while True:
                block = handle.read(block_bytes)
                if not block:
                    break
                lines = block.split(b"\n")
                last = len(lines) - 1
                for i, line in enumerate(lines):
                    if header is not None:
                        header += line
                        if i == last:
                            continue
                        line, header = header, None
                        count += 1
                        yield "record", _record_name(line, count, names, path)
                        continue
                    if not mid_line and line[:1] == b">":
                        if i == last:
                            header = line
                            continue
                        count += 1
                        yield "record", _record_name(line, count, names, path)
                        continue
                    if not mid_line and line[:1] == b";":
                        continue  # old-style comment line
                    piece = line.strip()
                    mid_line = i == last and line != b""
                    if not piece:
                        continue
                    if count == 0:
                        raise DataError("sequence before the first '>' header line", path)
                    if b" " in piece or b"\t" in piece:
                        piece = b"".join(piece.split())
                    yield "seq", piece
            if header is not None:
                count += 1
                yield "record", _record_name(header, count, names, path)
    except (gzip.BadGzipFile, zlib.error, EOFError) as error:
        raise DataError(f"corrupt gzip file ({error})", path) from None
    if count == 0:
        raise DataError("no FASTA records (expected '>id' header lines)", path)


def unusual_characters(piece):
    """`(unusual, invalid)` of a piece of sequence: characters other than A, C, G, T, U, N, and of
    those the ones that are not IUPAC codes (one `bytes.translate`; two when there are any)."""
    unusual = len(piece.translate(None, NUCLEOTIDES))
    return (unusual, len(piece.translate(None, IUPAC))) if unusual else (0, 0)


def max_n_count(max_n_fraction, length):
    """The most N's a window of `length` may hold, `floor(max_n_fraction * length)`: `scan` skips
    windows with more, `variants` does not score alleles whose REF window has more.

    Example:

    >>> max_n_count(0.1, 200), max_n_count(0.1, 60)
    (20, 6)
    """
    if not 0 <= max_n_fraction <= 1:
        raise ValueError(f"--max-n-fraction must be between 0 and 1, got {max_n_fraction}")
    return math.floor(max_n_fraction * int(length) + 1e-9)


def fasta_records(path):
    """`({name: length}, unusual, invalid)` of a FASTA in one streaming pass: every record in file
    order, empty ones too (which a faidx index leaves out), and the characters `Tiler` counts."""
    sizes = {}
    name = None
    unusual = invalid = 0
    for kind, value in iter_fasta_pieces(path):
        if kind == "record":
            name = value
            sizes[name] = 0
        else:
            sizes[name] += len(value)
            extra, bad = unusual_characters(value)
            unusual, invalid = unusual + extra, invalid + bad
    return sizes, unusual, invalid


def _record_name(line, count, names, path):
    if b"\r" in line.rstrip(b"\r"):  # a whole old-Mac file reads as this one header line
        raise DataError(
            f"record {count}: a carriage return inside the header line; lone CR line ends "
            "(an old Mac file?) are not read here: convert them (tr '\\r' '\\n')",
            path,
        )
    words = line[1:].decode("utf-8", "replace").split()
    if not words:  # a track or a VCF needs the chromosome's name: none is made up
        raise DataError(f"record {count} has a header line without a name ('>' alone)", path)
    name = words[0]
    if name in names:
        raise DataError("duplicate record name in the FASTA", path, name)
    names.add(name)
    return name


def missing_chromosomes(regions, sizes):
    """Chromosomes of the `--regions` BED that are not records of the FASTA, sorted."""
    return sorted(set(regions or {}) - set(sizes))


def regions_past_the_end(regions, sizes, length):
    """How many `--regions` run past the end of their record with at least `length` bases inside it
    (scored up to the end; a shorter remainder is a region shorter than the window, counted as such).

    Example:

    >>> regions = {"chr1": [(0, 50), (30, 120), (90, 120), (200, 300)]}
    >>> regions_past_the_end(regions, {"chr1": 100}, length=60)  # (30, 120) only
    1
    """
    return sum(
        start < size < end and size - start >= length
        for chrom, size in sizes.items()
        for start, end in (regions or {}).get(chrom, [])
    )


def read_regions(path):
    """`{chrom: [(start, end), ...]}` from a BED file, sorted and merged (overlapping or touching regions join).

    `track`, `browser` and `#` lines are skipped; a malformed line is a
    `DataError` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise missing_file_error(path)
    regions = {}
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, 1):
            # a UTF-8 byte-order mark (some Windows editors write one) is not part of the name
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8", "replace").strip()
            if not line or line.startswith(("#", "track", "browser")):
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            try:
                chrom, start, end = fields[0], int(fields[1]), int(fields[2])
            except (IndexError, ValueError):
                raise DataError(
                    "not a BED line (expected chrom, start, end: tab-separated, integers)",
                    path,
                    f"line {number}",
                ) from None
            if start < 0 or end < start:
                raise DataError(f"invalid interval {start}-{end}", path, f"line {number}")
            regions.setdefault(chrom, []).append((start, end))
    merged = {}
    for chrom, intervals in regions.items():
        out = []
        for start, end in sorted(intervals):
            if out and start <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], end))
            else:
                out.append((start, end))
        merged[chrom] = out
    return merged


class Tiler:
    """Iterates the windows of a FASTA, streaming; counts what it skipped.

    Args:
        path: the FASTA (plain, gzip or bgzip).
        length: the window length L (the model's).
        stride: the step S between window starts (1 <= S <= L).
        regions: `{chrom: [(start, end), ...]}` sorted and merged (see
            `read_regions`): tile only these; `None`: every record whole.
        max_n_fraction: skip windows with more than this share of N's.
        chunk_bases: how many bases to buffer before windowing (tests set
            it small to put windows across chunk boundaries).

    After iteration: `sizes` (`{record: size}` in file order), `windows`
    (kept), `skipped_n` (windows skipped for N's), `short` (records or
    regions shorter than L), `beyond` (regions that start at or past their
    record's end), `unusual` (characters other than A, C, G, T, U,
    N in either case) and `invalid` (of those, the ones that are not IUPAC
    nucleotide codes, which the model reads as N; IUPAC codes encode as in
    training).

    Example:

    >>> tiler = Tiler("genome.fa.gz", 200, 50)  # doctest: +SKIP
    >>> for chrom, start, sequence in tiler: ...  # doctest: +SKIP
    """

    def __init__(
        self,
        path,
        length,
        stride,
        regions=None,
        max_n_fraction=DEFAULT_MAX_N_FRACTION,
        chunk_bases=CHUNK_BASES,
    ):
        if not 1 <= stride <= length:
            raise ValueError(
                f"--stride must be between 1 and the model's length {length}, got {stride}"
            )
        self.max_n = max_n_count(max_n_fraction, length)
        self.path, self.length, self.stride = Path(path), int(length), int(stride)
        self.regions = regions
        self.chunk_bases = int(chunk_bases)
        self.sizes = {}
        self.windows = self.skipped_n = self.short = self.beyond = 0
        self.unusual = self.invalid = 0

    def __iter__(self):
        name = None
        for kind, value in iter_fasta_pieces(self.path):
            if kind == "record":
                if name is not None:
                    yield from self._finish()
                name = value
                self._start(name)
            else:
                self._pieces.append(value)
                self._pending += len(value)
                extra, bad = unusual_characters(value)
                self.unusual, self.invalid = self.unusual + extra, self.invalid + bad
                if self._pending >= self.chunk_bases:
                    yield from self._drain(final=False)
        if name is not None:
            yield from self._finish()

    def _start(self, name):
        self._name = name
        self._size = 0
        self._buffer = b""
        self._buffer_start = 0
        self._pieces = []
        self._pending = 0
        if self.regions is None:
            self._intervals = [(0, math.inf)]
        else:
            self._intervals = self.regions.get(name, [])
        self._interval = 0
        self._next = None  # the next window start (None: at the start of the current interval)

    def _finish(self):
        yield from self._drain(final=True)
        self.sizes[self._name] = self._size
        for index in range(self._interval, len(self._intervals)):
            region_start = self._intervals[index][0]
            started = index == self._interval and self._next not in (None, region_start)
            if region_start >= self._size and self.regions is not None:
                self.beyond += 1  # a region past the record's end
            elif not started:
                self.short += (
                    1  # a record (an empty one too) or region (clipped to it) shorter than L
                )

    def _drain(self, final):
        if self._pieces:
            self._buffer = self._buffer + b"".join(self._pieces)
            self._size += self._pending
            self._pieces, self._pending = [], 0
        buffer, origin = self._buffer, self._buffer_start
        end = origin + len(buffer)
        length, stride, max_n = self.length, self.stride, self.max_n
        name = self._name
        while self._interval < len(self._intervals):
            region_start, region_end = self._intervals[self._interval]
            if self._next is None:
                self._next = region_start
            start = self._next
            if start + length > region_end:
                if start == region_start:
                    if region_start >= end and not final:
                        break  # not read that far: whether the record reaches the region is known later
                    if region_start < end:
                        self.short += 1
                    else:
                        self.beyond += 1  # the record ends before the region starts
                self._interval += 1
                self._next = None
                continue
            if start + length > end:
                break
            window = buffer[start - origin : start - origin + length]
            if window.count(b"N") + window.count(b"n") > max_n:
                self.skipped_n += 1
            else:
                self.windows += 1
                yield name, start, window
            self._next = start + stride
        if final:
            self._buffer = b""
            return
        if self._interval < len(self._intervals):
            keep = self._next if self._next is not None else self._intervals[self._interval][0]
        else:
            keep = end
        keep = min(max(keep, origin), end)
        self._buffer = buffer[keep - origin :]
        self._buffer_start = keep
