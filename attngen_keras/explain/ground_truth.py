"""Ground-truth informative positions (e.g. planted motifs) read from a file.

The file lists informative intervals per sequence id, one interval per row,
0-based with the end excluded (BED convention):

- CSV or TSV with a header holding `id`, `start` and `end` columns, or
- BED (`.bed`, no header): the first three columns are id, start and end;
  empty, `#` comment, `track` and `browser` lines are skipped.

Errors name a row by its line in the file.

`attngen synthetic` writes such a file (`planted.csv`) next to its sequences.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from attngen_keras.data.errors import DataError
from attngen_keras.data.readers import (
    TableLines,
    apply_column_aliases,
    base_suffix,
    open_text,
    table_separator,
)
from attngen_keras.files import plural


def read_intervals(path):
    """`id, start, end` rows of a ground-truth file, validated.

    Raises:
        DataError: missing/empty/malformed file, missing columns, or a row
            whose start/end is not an integer interval with `0 <= start < end`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("ground-truth file not found", path)
    suffix = base_suffix(path)
    if suffix == ".bed":
        frame, lines = _read_bed(path)
    else:
        separator = table_separator(path)
        try:
            with open_text(path) as text:
                handle = TableLines(text, separator)  # rows are named by their file line
                frame = pd.read_csv(handle, sep=separator, dtype=str)
        except pd.errors.EmptyDataError:
            raise DataError("empty file (no rows)", path) from None
        except (pd.errors.ParserError, ValueError) as error:
            raise DataError(f"malformed ground-truth table ({error})", path) from None
        lines = handle.data_lines(np.arange(len(frame))) + 2
    found = list(frame.columns)
    frame = apply_column_aliases(frame)  # `name` is read as `id`, as in the training tables
    missing = [c for c in ("id", "start", "end") if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing column(s) {missing}; found {found} (need id or name, start, end)",
            path,
        )
    if frame.empty:
        raise DataError("no intervals", path)
    starts = pd.to_numeric(frame["start"], errors="coerce")
    ends = pd.to_numeric(frame["end"], errors="coerce")
    bad = (
        starts.isna()
        | ends.isna()
        | (starts < 0)
        | (ends <= starts)
        | (starts % 1 != 0)
        | (ends % 1 != 0)
    )
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        line = int(lines[row])
        raise DataError(
            f"line {line}: start {frame['start'].iloc[row]!r}, end {frame['end'].iloc[row]!r} "
            "is not an interval 0 <= start < end (0-based, end excluded)",
            path, frame["id"].iloc[row],
        )  # fmt: skip
    intervals = pd.DataFrame(
        {"id": frame["id"].str.strip(), "start": starts.astype(int), "end": ends.astype(int)}
    )
    intervals.index = pd.Index(np.asarray(lines, dtype=int), name="line")  # each row's file line
    return intervals


def _read_bed(path):
    """`(frame, lines)`: a BED file's first three fields as `id, start, end` and each row's
    file line; empty, `#` comment, `track` and `browser` lines are skipped."""
    rows, lines = [], []
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            text = line.rstrip("\r\n")
            words = text.split(None, 1)
            if not words or words[0].startswith("#") or words[0] in ("track", "browser"):
                continue
            fields = text.split("\t") if "\t" in text else text.split()
            if len(fields) < 3:
                raise DataError(
                    f"line {number}: {len(fields)} field(s); BED needs chrom (id), start, end",
                    path,
                )
            rows.append([field.strip() for field in fields[:3]])
            lines.append(number)
    if not rows:
        raise DataError("empty file (no rows)", path)
    return pd.DataFrame(rows, columns=["id", "start", "end"]), np.asarray(lines)


def ground_truth_mask(path, ids, lengths, clip=False, intervals=None):
    """Boolean `(n, max_length)` mask of informative positions for sequences `ids`.

    Args:
        path: ground-truth file (see module docstring).
        ids: record ids of the explained sequences.
        lengths: their valid lengths (an interval past the end is an error,
            unless `clip`).
        clip: clip intervals to the valid length (sequences cropped at the
            end, `--crop left`: coordinates are unchanged, the tail is gone).
        intervals: already read `read_intervals(path)` (read it if `None`).

    Returns:
        `(n, max(lengths))` bool array; rows of ids absent from the file are
        all False (no informative positions: skipped by localization metrics).
    """
    intervals = read_intervals(path) if intervals is None else intervals
    ids = [str(i) for i in ids]
    seen = set()
    for record in ids:
        if record in seen:
            raise DataError(
                f"the explained sequences share the id {record!r}, so ground truth by id is ambiguous",
                path,
            )
        seen.add(record)
    lengths = np.asarray(lengths, dtype=int)
    mask = np.zeros((len(ids), int(lengths.max()) if len(ids) else 0), dtype=bool)
    where = {record: i for i, record in enumerate(ids)}
    matched = clipped = dropped = 0
    for line, record, start, end in intervals.itertuples(index=True):
        row = where.get(record)
        if row is None:
            continue
        if clip:
            if end > lengths[row]:
                clipped += start < lengths[row]
                dropped += start >= lengths[row]
            end = min(end, int(lengths[row]))
            if start >= end:
                continue
        elif end > lengths[row]:
            raise DataError(
                f"line {line}: interval {start}-{end} runs past the sequence end "
                f"({lengths[row]} nt)",
                path, record,
            )  # fmt: skip
        mask[row, start:end] = True
        matched += 1
    if clipped or dropped:
        warnings.warn(
            f"{path}: {plural(clipped, 'interval')} clipped and {plural(dropped, 'interval')} "
            "left out where they run past their sequence's end (the explained sequences are cut "
            "at the model's length, or shorter)",
            stacklevel=2,
        )
    if not matched:
        example = ", ".join(ids[:3])
        raise DataError(
            f"none of its ids match the explained sequences (ids such as {example})", path
        )
    return mask
