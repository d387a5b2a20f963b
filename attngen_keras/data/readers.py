"""Parsers for each supported on-disk format, producing `RawSplit`s.

Every reader returns `{split_name: RawSplit}`; split names are `train`,
`val`, `test`, or `all` when the source has no split of its own.
"""

import contextlib
import gzip
import io
import itertools
import os
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from Bio.SeqIO.FastaIO import SimpleFastaParser

from attngen_keras.data.containers import RawSplitBuilder
from attngen_keras.data.errors import DataError, missing_file_error
from attngen_keras.progress import progress_bar

FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas")
TABLE_SUFFIXES = (".csv", ".tsv")
TAB_SEPARATED_SUFFIXES = (".tsv", ".txt")  # `.txt` given as a --data file: a table, as `.tsv`
# a table given as a file (in a directory, `.txt` files are notes or the full-sequence layout)
TABLE_FILE_SUFFIXES = (*TABLE_SUFFIXES, ".txt")
SPLIT_ALIASES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}  # fmt: skip
_CORRUPT_ERRORS = (EOFError, OSError, zlib.error, UnicodeDecodeError)


def strip_suffixes(path):
    """`a.fa.gz` -> `a`, `b.csv` -> `b`."""
    name = Path(path).name
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).stem


def base_suffix(path):
    """`a.fa.gz` -> `.fa` (lower case)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix


def table_separator(path):
    """`"\\t"` for a `.tsv` or `.txt` table (optionally gzipped), else `","`."""
    return "\t" if base_suffix(path) in TAB_SEPARATED_SUFFIXES else ","


def open_binary(path):
    """A binary stream over a plain, gzip or bgzip file, decompressed as it is read."""
    path = Path(path)
    if not path.is_file():
        raise missing_file_error(path)
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def open_text(path):
    """Opens plain or gzip UTF-8 text, read whole; a missing, corrupt or non-UTF-8 file is a
    `DataError` naming `path`. Line ends are universal: CRLF and a lone CR read as LF."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    with open(path, "rb") as handle:
        head = handle.read(2)
    if head == b"\x1f\x8b":
        try:
            data = gzip.decompress(path.read_bytes())
        except _CORRUPT_ERRORS as error:
            raise DataError(f"corrupt gzip file ({error})", path) from None
    else:
        data = path.read_bytes()
    try:
        return io.StringIO(data.decode("utf-8-sig"), newline=None)
    except UnicodeDecodeError as error:
        raise not_utf8_error(path, error) from None


@contextlib.contextmanager
def open_text_stream(path):
    """Plain or gzip UTF-8 text read as it is consumed, with universal line ends as
    `open_text`; corrupt gzip or non-UTF-8 input is a `DataError` naming `path` (and the
    line), wherever in the `with` block it is found."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", path)
    try:
        with io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline=None) as handle:
            yield handle
    except UnicodeDecodeError as error:
        raise not_utf8_error(path, error) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DataError(f"corrupt gzip file ({error})", path) from None


def not_utf8_error(path, error):
    """The `DataError` for `path`, whose decoding raised `error`: it names the first line that
    is not UTF-8 (LF, CRLF or a lone CR ending a line) and, for UTF-16 text, says so."""
    line, head = None, None
    try:
        with open_binary(path) as handle:
            number = 1  # of the line `raw` starts (a lone CR ends a line too)
            for raw in handle:
                head = raw[:2] if head is None else head
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as found:
                    line, error = number + _lone_crs(raw[: found.start]), found
                    break
                number += 1 + _lone_crs(raw)
    except _CORRUPT_ERRORS:
        head = b""
    where = f"line {line}: " if line else ""
    if head in (b"\xff\xfe", b"\xfe\xff"):
        return DataError(f"{where}UTF-16 text, not UTF-8; save it as UTF-8", path)
    byte = error.object[error.start : error.start + 1]
    return DataError(
        f"{where}not UTF-8 text (byte 0x{byte.hex() or '??'}: {error.reason}); save it as UTF-8",
        path,
    )


def _lone_crs(raw):
    """Carriage returns in the bytes `raw` not followed by a line feed."""
    return raw.count(b"\r") - raw.count(b"\r\n")


def read_fasta(path, label, builder):
    """Adds every record of a FASTA file to `builder` with class `label`."""
    count = 0
    for record_id, sequence in fasta_records(open_text(path), path):
        builder.add(record_id, label, sequence, path)
        count += 1
    return count


def fasta_records(handle, path):
    """Yields `(record_id, sequence)` of the FASTA text in `handle` (read as it is consumed).

    The id is the first word of the title (`#k` for the k-th record when the
    title is empty). An empty file, one that does not start with `>`,
    malformed FASTA and a file without records are `DataError`s naming `path`.
    """
    first = handle.read(1)
    if first == "":
        raise DataError("empty file (no FASTA records)", path)
    if first != ">":
        raise DataError("not a FASTA file: the first character is not '>'", path)
    lines = itertools.chain([first + handle.readline()], handle)
    count = 0
    try:
        for title, sequence in SimpleFastaParser(lines):
            # spaces and tabs inside sequence lines are not sequence (the parser drops spaces)
            sequence = sequence.replace("\t", "")
            yield (title.split(None, 1)[0] if title.strip() else f"#{count + 1}"), sequence
            count += 1
    except ValueError as error:
        if isinstance(error, (DataError, UnicodeDecodeError)):
            raise  # a decoding error is the opener's to report
        raise DataError(f"malformed FASTA ({error})", path) from None
    if count == 0:
        raise DataError("no FASTA records", path)


def read_fasta_per_class(paths, split_dirs=False, min_classes=2):
    """FASTA files, one per class; the class is `name=` or the file stem.

    Args:
        paths: file paths, optionally `class=path`; or one directory holding
            the FASTA files (or `train/` and `test/` directories of them).
        split_dirs: set by detection when the directory has split subdirs.
        min_classes: fewest classes accepted (1 where the classes are known,
            e.g. scoring a set of known positives against a trained run).
    """
    splits = {}
    for split, label, path in fasta_sources(paths, split_dirs, min_classes):
        builder = splits.setdefault(split, RawSplitBuilder())
        read_fasta(path, label, builder)
    return {split: builder.build() for split, builder in splits.items()}


def fasta_sources(paths, split_dirs=False, min_classes=2):
    """`[(split, class, path), ...]` of FASTA files, one per class, in reading order (see
    `read_fasta_per_class`); `split` is `"all"` without split directories.

    Raises:
        DataError: a class given twice, or fewer than two classes (in a split).
    """
    if split_dirs:
        root = Path(paths[0])
        groups = [
            (SPLIT_ALIASES[sub.name], _fasta_files(sub))
            for sub in sorted(root.iterdir())
            if sub.is_dir() and sub.name in SPLIT_ALIASES
        ]
    elif len(paths) == 1 and Path(paths[0]).is_dir():
        groups = [("all", _fasta_files(Path(paths[0])))]
    else:
        groups = [("all", list(paths))]
    sources = []
    for split, items in groups:
        seen = {}
        for item in items:
            label, path = fasta_class_and_path(item)
            if label in seen:
                raise DataError(
                    f"class {label!r} given twice (also {seen[label]}); use one FASTA "
                    "file per class or name them class=path",
                    path,
                )
            seen[label] = path
            sources.append((split, label, path))
        if len(seen) < min_classes:
            raise DataError(
                "FASTA input needs one file per class and at least two classes",
                ", ".join(seen.values()),
            )
    return sources


def _fasta_files(directory):
    files = sorted(str(p) for p in Path(directory).iterdir() if base_suffix(p) in FASTA_SUFFIXES)
    if not files:
        raise DataError("no FASTA files (*.fa, *.fasta, *.fna, optionally .gz)", directory)
    return files


def class_and_path(item):
    """Splits a `--data` item written `class=path` into `(class, path)`.

    Items without a `class=` prefix (or whose whole text is an existing path)
    give `(None, item)`.

    Example:

    >>> class_and_path("human=data/human.fa")
    ('human', 'data/human.fa')
    """
    item = str(item)
    if "=" in item and not Path(item).exists():
        label, path = item.split("=", 1)
        if not label.strip():
            raise DataError("empty class name before '=' (write class=path)", item)
        return label, path
    return None, item


def fasta_class_and_path(item):
    """`(class, path)` of a per-class FASTA `--data` item: the `class=` prefix, else the file stem.

    Example:

    >>> fasta_class_and_path("data/human.fa.gz")
    ('human', 'data/human.fa.gz')
    """
    label, path = class_and_path(item)
    return (strip_suffixes(path) if label is None else label), path


def read_tables(paths):
    """CSV/TSV files with `seq` and `label` columns (optional `id`, `split`).

    One file: its `split` column (train/val/test) if present, else one `all`
    split. Several files: the split is taken from each file name (a name
    containing train, val/valid or test).
    """
    if len(paths) == 1:
        frame = _read_table(paths[0])
        if "split" in frame.columns:
            return _frame_splits_by_column(frame, paths[0])
        return {"all": _frame_to_split(frame, paths[0])}
    splits = {}
    for path in paths:
        split = _split_from_name(path)
        if split in splits:
            raise DataError(f"two files for the {split} split", path)
        splits[split] = _frame_to_split(_read_table(path), path)
    return splits


def _split_from_name(path):
    """The split named by a whole word of the file name (`my_train.csv` -> train)."""
    words = re.split(r"[^a-z0-9]+", strip_suffixes(path).lower())
    found = {SPLIT_ALIASES[w] for w in words if w in SPLIT_ALIASES}
    if len(found) != 1:
        raise DataError(
            "cannot tell which split this file is: with several CSV/TSV files, each "
            "file name must contain exactly one of the words train, val (valid, "
            "validation, dev) or test, e.g. train.csv, my_test.tsv",
            path,
        )
    return found.pop()


# other names read as the table's columns (when the column itself is absent)
COLUMN_ALIASES = {"sequence": "seq", "class": "label", "name": "id"}


def apply_column_aliases(frame):
    """`frame` with its columns lower-cased and stripped and `COLUMN_ALIASES` applied."""
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame.rename(
        columns={old: new for old, new in COLUMN_ALIASES.items() if new not in frame.columns}
    )


def normalize_table_columns(frame, path, required=("seq", "label")):
    """`frame` with its columns lower-cased and stripped, and `COLUMN_ALIASES` applied
    (`sequence` read as `seq`, `class` as `label`, `name` as `id`); a `DataError` naming
    the file's own header when a `required` column is missing.

    Example:

    >>> columns = normalize_table_columns(pd.DataFrame(columns=["Name", " Sequence", "Class"]), "t.csv")
    >>> list(columns.columns)
    ['id', 'seq', 'label']
    """
    header = [str(c) for c in frame.columns]
    frame = apply_column_aliases(frame)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        need = {"seq": "'seq' or 'sequence'", "label": "'label' or 'class'"}
        hint = ""
        if len(header) == 1:  # one column: another separator than the file name says?
            tabbed = base_suffix(path) in TAB_SEPARATED_SUFFIXES
            other = "," if tabbed else "\t"
            if other in header[0]:
                hint = (
                    f"; it looks {'comma' if tabbed else 'tab'}-separated, but a "
                    f"{base_suffix(path)} file is read as {'tab' if tabbed else 'comma'}-separated"
                )
        raise DataError(
            f"missing column(s) {missing}; the header is {header} "
            f"(need {', and '.join(need[c] for c in required)}; optional 'id' or 'name'"
            + (", and 'split')" if "label" in required else ")")
            + hint,
            path,
        )
    return frame


class TableLines:
    """A table's text stream, passed to `pandas.read_csv` unchanged, that maps its rows to file lines.

    `pandas.read_csv` skips empty lines and lines of spaces and tabs (those
    that are not the separator), and a quoted field may span lines, so a
    table's data rows are not its file lines. Reading through this stream,
    which notes where such lines are, a row can still be named by its line in
    the file (`data_lines`): how records without an `id` are named in errors
    and in `predict`'s output. A quote inside an unquoted field (rare in
    sequence tables) would be taken as opening a quoted one.

    Args:
        handle: the table's text stream.
        separator: the table's field separator.

    Example:

    >>> text = "seq,label\\nAC,a\\n\\r\\n  \\n\\nGT,b\\n"
    >>> lines = TableLines(io.StringIO(text), ",")
    >>> frame = pd.read_csv(lines, dtype=str)
    >>> [int(line) + 2 for line in lines.data_lines(range(len(frame)))]  # lines 2 and 6
    [2, 6]
    """

    def __init__(self, handle, separator=","):
        self._handle = handle
        self._spaces = "".join(sorted(set(" \t") - {separator}))
        # a line pandas skips, whole within a block (its first line is checked on its own)
        self._skipped_line = re.compile(f"\\n[{re.escape(self._spaces)}]*\\r?\\n")
        self._records = 0  # records (rows, the header included) completed so far
        self._line_blank = True  # the line read so far holds only what pandas skips
        self._in_quotes = False
        # for each line that does not start a record (skipped, or inside a quoted field): the
        # first record it moves down by one line, in order
        self._shifts = []
        self._counted = 0  # shifts before `_shifts`, already counted for every later record

    def read(self, size=-1):
        block = self._handle.read(size)
        while block.endswith("\r"):  # a CRLF is read whole
            more = self._handle.read(1)
            if not more:
                break
            block += more
        if block:
            self._observe(block)
        return block

    def __iter__(self):  # pandas wants an iterable stream; it only calls `read`
        return self

    def __next__(self):
        raise StopIteration

    def _blank(self, text):
        return not text.rstrip("\r").strip(self._spaces)

    def _observe(self, block):
        first_end = block.find("\n")
        if (
            not self._in_quotes
            and '"' not in block
            and not self._skipped_line.search(block)
            and not (first_end >= 0 and self._line_blank and self._blank(block[:first_end]))
        ):  # the common case: every line in the block is a record
            if first_end < 0:
                self._line_blank = self._line_blank and self._blank(block)
            else:
                self._records += block.count("\n")
                self._line_blank = self._blank(block[block.rfind("\n") + 1 :])
            return
        pieces = block.split("\n")
        for number, piece in enumerate(pieces):
            was_in_quotes = self._in_quotes
            if piece.count('"') % 2:
                self._in_quotes = not self._in_quotes
            blank = self._line_blank and self._blank(piece) and not was_in_quotes
            if number == len(pieces) - 1:  # the line goes on in the next block
                self._line_blank = blank
                break
            if self._in_quotes:  # a line break inside a quoted field: the record goes on
                self._shifts.append(self._records + 1)
            elif blank:
                self._shifts.append(self._records)
            else:
                self._records += 1
            self._line_blank = True

    def data_lines(self, rows):
        """The file lines, less 2 (as with nothing skipped), of the 0-based data `rows`, line 1
        being the header (for a header on line 1; rows asked for in increasing order)."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return rows
        # shifts that move every asked row down are counted once and dropped
        shifts = np.asarray(self._shifts, np.int64)
        passed = int(np.searchsorted(shifts, rows.min() + 1, "right"))
        self._counted += passed
        del self._shifts[:passed]
        later = shifts[passed:]
        return rows + self._counted + np.searchsorted(later, rows + 1, side="right")


def _read_table(path):
    separator = table_separator(path)
    handle = TableLines(open_text(path), separator)
    try:
        frame = pd.read_csv(handle, sep=separator, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError("empty file (no header, no rows)", path) from None
    except pd.errors.ParserError as error:
        raise DataError(f"malformed table ({error})", path) from None
    frame = normalize_table_columns(frame, path)
    if frame.empty:
        raise DataError("no rows", path)
    frame.index = handle.data_lines(range(len(frame)))  # "line {index + 2}" names a row
    return frame


def _frame_to_split(frame, path):
    builder = RawSplitBuilder()
    ids = frame["id"] if "id" in frame.columns else None
    for row, (index, sequence, label) in enumerate(zip(frame.index, frame["seq"], frame["label"])):
        # `index` is the 0-based data row of the file; line 1 is the header.
        record = ids.iloc[row] if ids is not None else f"line {index + 2}"
        if label.strip() == "":
            raise DataError("empty label", path, record)
        builder.add(record, label.strip(), sequence.strip(), path)
    return builder.build()


def check_split_column(frame, path):
    """The `split` column of a table (or chunk) as lower-case names; a `DataError` naming the first
    record (its id, else its line) with a value that is not a split name.

    Example:

    >>> frame = pd.DataFrame({"seq": ["ACGT"] * 3, "split": ["train", "Test ", "foo"]})
    >>> check_split_column(frame, "d.csv")
    Traceback (most recent call last):
    ...
    attngen_keras.data.errors.DataError: d.csv: record 'line 4': unknown split value 'foo' in column 'split' (use train, val, test)
    """
    names = frame["split"].astype(str).str.strip().str.lower()
    bad = ~names.isin(list(SPLIT_ALIASES))
    if bad.any():
        position = int(np.flatnonzero(bad.to_numpy())[0])
        record = (frame["id"].iloc[position] if "id" in frame.columns
                  else f"line {frame.index[position] + 2}")  # fmt: skip
        others = sorted(set(names[bad]) - {names.iloc[position]})
        also = f"; also {others}" if others else ""
        raise DataError(
            f"unknown split value {frame['split'].iloc[position]!r} in column 'split' "
            f"(use train, val, test){also}",
            path,
            record,
        )
    return names


def _frame_splits_by_column(frame, path):
    names = check_split_column(frame, path)
    mapped = names.map(SPLIT_ALIASES)
    return {
        split: _frame_to_split(frame[mapped == split], path)
        for split in ("train", "val", "test")
        if (mapped == split).any()
    }


def read_full_sequence_dir(root, show_progress=True, source_file=None):
    """Genomic Benchmarks full-sequence layout `{train,test}/<class>/<id>.txt`.

    Args:
        root: the dataset directory.
        show_progress: progress bar over the files.
        source_file: `(split_dir_name, class) -> path` named for each record
            in later errors (default: the class directory, the record id being
            the file stem); parse errors always name the `.txt` file itself.
    """
    root = Path(root)
    files = list_full_sequence_files(root)
    if not files:
        raise DataError("no sequence files found in {train,test}/<class>/*.txt", root)
    builders = {}
    for split, label, path in progress_bar(
        files, desc=f"reading {root.name}", unit=" files", disable=not show_progress,
        mininterval=1.0,
    ):  # fmt: skip
        builder = builders.setdefault(split, RawSplitBuilder())
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise DataError(f"cannot read ({error})", path) from None
        stored = source_file(split, label) if source_file else os.path.dirname(path)
        builder.add(Path(path).stem, label, b"".join(data.split()), path, stored_file=stored)
    return {split: builder.build() for split, builder in builders.items()}


def list_full_sequence_files(root):
    """`(split, class, path)` for every `*.txt` in the full-sequence layout."""
    found = []
    for split_entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not split_entry.is_dir() or split_entry.name not in SPLIT_ALIASES:
            continue
        split = SPLIT_ALIASES[split_entry.name]
        for class_entry in sorted(os.scandir(split_entry.path), key=lambda e: e.name):
            if not class_entry.is_dir():
                continue
            names = sorted(e.name for e in os.scandir(class_entry.path) if e.name.endswith(".txt"))
            found.extend(
                (split, class_entry.name, os.path.join(class_entry.path, n)) for n in names
            )
    return found


def stratified_split(labels, fraction, seed):
    """Indices `(keep, carved)` with `fraction` of each class carved out.

    Every class with at least 2 members keeps at least one and gives at
    least one. Deterministic for a given `seed`.

    Example:

    >>> keep, carved = stratified_split(np.array(["a"] * 10 + ["b"] * 10), 0.2, 0)
    >>> len(keep), len(carved)
    (16, 4)
    """
    rng = np.random.default_rng(seed)
    keep, carved = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        n_carved = int(round(len(members) * fraction))
        if len(members) >= 2:
            n_carved = min(max(n_carved, 1), len(members) - 1)
        else:
            n_carved = 0
        carved.append(members[:n_carved])
        keep.append(members[n_carved:])
        del members
    # concatenated, then sorted in place: one copy of the indices at a time, not three
    keep, carved = np.concatenate(keep), np.concatenate(carved)
    keep.sort()
    carved.sort()
    return keep, carved
