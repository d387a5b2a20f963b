"""`attngen predict`: stream sequences through an exported model or a run directory.

The input (FASTA, or CSV/TSV with a `seq` column and optional `id`, plain or
gzipped) is read as a stream, in batches, so memory stays flat however large
the file. Sequences go
through the same in-graph preprocessing as TF Serving (see
`attngen_keras.export`), so predictions match the served model exactly.
"""

import contextlib
import csv
import functools
import gzip
import io
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

from attngen_keras.data.alphabet import NOT_DNA_SHARE
from attngen_keras.data.errors import DataError, missing_file_error
from attngen_keras.data.readers import (
    FASTA_SUFFIXES,
    TABLE_FILE_SUFFIXES,
    TableLines,
    base_suffix,
    normalize_table_columns,
    open_text_stream,
    table_separator,
)
from attngen_keras.export import METADATA_FILE
from attngen_keras.files import (
    check_distinct_files,
    check_output_file,
    partial_path,
    plural,
    read_json,
    remove_stale_partials,
    reproducible_gzip,
)
from attngen_keras.progress import progress_bar

# Above this share of characters other than A, C, G, T (U) and N the input is
# reported as probably not DNA (protein letters are mostly IUPAC codes, so
# the invalid characters alone undercount them).
_DEFINITE = "ACGTUNacgtun"


STDOUT = "-"  # `--out -`: the TSV goes to standard output
# duplicate ids are looked for among this many distinct ids (a set of them is held)
DUPLICATE_IDS_CHECKED = 1_000_000


def resolve_model(path):
    """`(predict_fn, saliency_fn, facts)` for a SavedModel (version or base dir) or a run dir."""
    endpoints = resolve_endpoints(path)
    return endpoints["predict"], endpoints["saliency"], endpoints["facts"]


def resolve_endpoints(path):
    """`{"predict", "saliency", "predict_with_saliency", "facts"}` of a SavedModel or run dir.

    `predict_with_saliency` is None for an export made before that signature existed.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or directory", path)
    if not path.is_dir():
        raise DataError("is a file; give an exported SavedModel directory or a run directory", path)
    if (path / "model.keras").exists():
        from attngen_keras.export import _Serving
        from attngen_keras.training import load_run

        model, record = load_run(path)
        serving = _Serving(model, record["length"], record.get("crop"))
        facts = {
            "class_names": record["class_names"],
            "length": record["length"],
            "shortest_sequence": record.get("shortest_sequence"),
            "source": str(path),
        }
        spec = [tf.TensorSpec([None], tf.string)]
        return {
            "predict": tf.function(serving.predict, input_signature=spec),
            "saliency": tf.function(serving.importance, input_signature=spec),
            "predict_with_saliency": tf.function(
                serving.predict_with_saliency, input_signature=spec
            ),
            "facts": facts,
        }
    if not (path / "saved_model.pb").exists():
        versions = sorted(
            (int(p.name) for p in path.glob("*") if p.is_dir() and p.name.isdigit()), reverse=True
        )
        if not versions:
            from attngen_keras.training import _what_the_directory_is

            raise DataError(
                "not a run directory (model.keras) nor an exported SavedModel (saved_model.pb); "
                + _what_the_directory_is(path),
                path,
            )
        path = path / str(versions[0])
    metadata = path / METADATA_FILE
    if not metadata.exists():
        raise DataError(
            f"SavedModel without {METADATA_FILE}: export it with `attngen export`", path
        )
    facts = {**read_json(metadata, "export metadata file"), "source": str(path)}
    try:
        loaded = tf.saved_model.load(str(path))
    except (
        Exception
    ) as error:  # DecodeError, OpError, OSError, ...: all mean an unusable SavedModel
        reason = " ".join(str(error).split())[:200]
        raise DataError(
            f"corrupt or truncated SavedModel, cannot load it ({type(error).__name__}: {reason}); export it again",
            path / "saved_model.pb",
        ) from None
    missing = [name for name in ("serving_default", "saliency") if name not in loaded.signatures]
    if missing:
        raise DataError(
            f"SavedModel without the {' and '.join(missing)} signature(s): export it with `attngen export`",
            path,
        )
    serve, saliency = loaded.signatures["serving_default"], loaded.signatures["saliency"]
    both = loaded.signatures.get("predict_with_saliency")
    return {
        "predict": lambda s: serve(sequences=s),
        "saliency": lambda s: saliency(sequences=s),
        "predict_with_saliency": None if both is None else (lambda s: both(sequences=s)),
        "facts": facts,
    }


def iter_records(path, kind=None):
    """Yields `(id, sequence)` from FASTA or CSV/TSV without loading the whole file.

    Args:
        path: the input file (optionally gzipped).
        kind: `"fasta"` or `"table"` (default: from the file name).
    """
    import zlib

    path = Path(path)
    if not path.is_file():
        raise missing_file_error(path)
    suffix = base_suffix(path)
    if kind is None:
        kind = (
            "fasta"
            if suffix in FASTA_SUFFIXES
            else "table"
            if suffix in TABLE_FILE_SUFFIXES
            else None
        )
    if kind is None:
        raise DataError(
            "unrecognized file type (expected FASTA or CSV/TSV, optionally gzipped)", path
        )
    try:
        yield from (_iter_fasta(path) if kind == "fasta" else _iter_table(path))
    except (gzip.BadGzipFile, zlib.error, EOFError) as error:
        raise DataError(f"corrupt gzip file ({error})", path) from None


def _iter_fasta(path):
    import itertools

    from Bio.SeqIO.FastaIO import SimpleFastaParser

    with open_text_stream(path) as handle:
        # the parser would skip text before the first header: sequence lost without a word
        lines = iter(handle)
        leading = []
        for number, line in enumerate(lines, start=1):
            leading.append(line)
            if line.strip() and not line.startswith(";"):  # (old-style comment lines, as scan)
                if not line.startswith(">"):
                    raise DataError(f"line {number}: sequence before the first '>' header line",
                                    path)  # fmt: skip
                break
        count = 0
        for title, sequence in SimpleFastaParser(itertools.chain(leading, lines)):
            count += 1
            # spaces and tabs inside sequence lines are not sequence (the parser drops spaces)
            yield (
                title.split()[0] if title.strip() else f"record{count}",
                sequence.replace("\t", ""),
            )
        if count == 0:
            raise DataError("no FASTA records (expected '>id' header lines)", path)


def _iter_table(path):
    import pandas as pd

    separator = table_separator(path)
    with open_text_stream(path) as text:
        handle = TableLines(text, separator)  # rows are named by their line in the file
        try:
            chunks = pd.read_csv(
                handle, sep=separator, dtype=str, keep_default_na=False, chunksize=10_000
            )
            row = 0
            for chunk in chunks:
                chunk = normalize_table_columns(chunk, path, required=("seq",))
                ids = (
                    chunk["id"]
                    if "id" in chunk.columns
                    else [
                        f"line {line + 2}"
                        for line in handle.data_lines(range(row, row + len(chunk)))
                    ]
                )
                yield from zip(ids, chunk["seq"])
                row += len(chunk)
        except pd.errors.EmptyDataError:
            raise DataError("empty file", path) from None
        except pd.errors.ParserError as error:
            raise DataError(f"malformed table ({error})", path) from None


def _batches(records, size):
    batch = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_file(
    model_path,
    input_path,
    out,
    saliency=False,
    batch_size=256,
    show_progress=True,
    kind=None,
    force=False,
):
    """Writes one TSV row per input sequence; returns the number of sequences.

    Columns: `id`, `predicted_class`, `prob_<class>` per class,
    `invalid_characters`, `truncated`, and with `saliency` an `importance`
    column of comma-separated per-nucleotide scores (up to the sequence's
    length within the model's window). An existing `out` is replaced only
    with `force`. Characters that are not nucleotides (or IUPAC codes) are
    summarized on stderr: how many sequences have them, and a warning when
    they are a large share of the input (protein, say).

    Example:

    >>> predict_file("saved_models/hof", "reads.fa", "preds.tsv")  # doctest: +SKIP
    """
    to_stdout = str(out) == STDOUT
    if not to_stdout:
        out = check_output_file(out, force)
    if not Path(input_path).is_file():
        raise missing_file_error(input_path)
    if not to_stdout:
        check_distinct_files({"the input file": input_path}, {"--out": out})
    endpoints = resolve_endpoints(model_path)
    predict, importance, facts = endpoints["predict"], endpoints["saliency"], endpoints["facts"]
    if saliency and endpoints["predict_with_saliency"] is not None:
        # one forward pass for both; `importance` reads it from the same outputs
        predict, importance = endpoints["predict_with_saliency"], None
    write = functools.partial(
        _write_predictions, predict=predict, importance=importance,
        class_names=facts["class_names"], input_path=input_path, kind=kind, saliency=saliency,
        batch_size=batch_size, show_progress=show_progress, window=int(facts["length"]),
        shortest=facts.get("shortest_sequence"),
    )  # fmt: skip
    if to_stdout:
        if hasattr(sys.stdout, "reconfigure"):  # UTF-8, as the files are, whatever the locale
            sys.stdout.reconfigure(encoding="utf-8")
        count, invalid = write(sys.stdout)
        sys.stdout.flush()
    else:
        remove_stale_partials(out)  # left by a killed predict
        partial = partial_path(out)  # hidden, per process; an error about it names `out`
        try:
            with _open_output(partial, gzipped=out.name.lower().endswith(".gz")) as handle:
                count, invalid = write(handle)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(out)
    _report_invalid(
        input_path, count, invalid, int(facts["length"]), facts.get("shortest_sequence")
    )
    return count


@contextlib.contextmanager
def _open_output(path, gzipped):
    """The TSV's text handle: `gzipped` with a fixed gzip header (the same input, the same
    bytes)."""
    with (
        open(path, "wb") as raw,
        reproducible_gzip(raw, compresslevel=6) if gzipped else contextlib.nullcontext(raw) as sink,
        io.TextIOWrapper(sink, encoding="utf-8", newline="") as handle,
    ):
        yield handle


def _report_invalid(input_path, count, stats, window, shortest=None):
    """One stderr line when characters were not nucleotides (read as N), the input does not look like
    DNA, sequences were longer than the model's window, shorter than any it was trained on
    (`shortest`: the training data's shortest length, when the run recorded it), or empty."""
    sequences, invalid, unusual, total, truncated, empty, short, repeated = stats
    share = unusual / max(total, 1)
    parts = []
    if invalid:
        parts.append(
            f"{sequences} of {count} sequences have characters that are not nucleotides or IUPAC codes "
            f"({invalid} of {total} characters), read as N (see the invalid_characters column)"
        )
    if share >= NOT_DNA_SHARE:
        parts.append(
            f"{share:.0%} of the characters are not A, C, G, T or N: this does not look like DNA (protein?), "
            "and the predictions are meaningless"
        )
    if truncated:
        parts.append(
            f"{plural(truncated, 'sequence')} longer than the model's {window} nt, cropped to {window} nt "
            "(see the truncated column; `attngen scan` scores long sequences window by window)"
        )
    if short:
        parts.append(
            f"{plural(short, 'sequence')} shorter than any the model was trained on "
            f"({min(shortest, window)} nt), padded to {window} nt: inputs unlike its training data"
        )
    if empty:
        parts.append(
            f"{plural(empty, 'empty sequence')}, predicted as an input with no nucleotides: "
            "not meaningful"
        )
    if repeated:
        count_repeated, first = repeated
        parts.append(
            f"{plural(count_repeated, 'record')} with an id used before (the first: {first!r}): "
            "an id does not name one record"
        )
    if parts:
        print(f"attngen predict: warning: {input_path}: {'; '.join(parts)}", file=sys.stderr)


def _write_predictions(
    handle,
    predict,
    importance,
    class_names,
    input_path,
    kind,
    saliency,
    batch_size,
    show_progress,
    window=None,
    shortest=None,
):
    """Writes the TSV to the text `handle`; returns `(count, stats)`.

    `stats`: sequences with invalid characters, invalid characters,
    characters other than A/C/G/T/U/N, and all characters, counted within the
    model's `window` (as `invalid_characters` is); sequences longer than the
    window; empty sequences; non-empty sequences shorter than `shortest` (the
    training data's shortest length, capped at the window; None: not counted);
    None or `(records whose id came before, the first such id)`, looked for
    among the first `DUPLICATE_IDS_CHECKED` distinct ids.
    """
    count = invalid_sequences = invalid_characters = unusual = characters = truncated = empty = 0
    short = repeated = 0
    seen_ids, first_repeated = set(), None
    short_of = None if shortest is None else min(shortest, window or shortest)
    with progress_bar(
        unit=" sequences", desc=f"predicting {Path(input_path).name}", disable=not show_progress
    ) as progress:  # closed (ending its line) before any error message
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        header = [
            "id",
            "predicted_class",
            *[f"prob_{c}" for c in class_names],
            "invalid_characters",
            "truncated",
        ]
        writer.writerow(header + (["importance"] if saliency else []))
        for batch in _batches(iter_records(input_path, kind), batch_size):
            ids = [r for r, _ in batch]
            strings = tf.constant([s.encode("ascii", "replace") for _, s in batch])
            result = {k: v.numpy() for k, v in predict(strings).items()}
            scores = None
            if saliency:
                scores = result.get("importance")
                if scores is None:
                    scores = importance(strings)["importance"].numpy()
            for i, record in enumerate(ids):
                if record in seen_ids:
                    repeated += 1
                    first_repeated = record if first_repeated is None else first_repeated
                elif len(seen_ids) < DUPLICATE_IDS_CHECKED:
                    seen_ids.add(record)
                row = [record, class_names[int(result["class_index"][i])]]
                row += [f"{p:.6f}" for p in result["probabilities"][i]]
                row += [int(result["invalid_characters"][i]), bool(result["truncated"][i])]
                if saliency:
                    length = min(len(batch[i][1].strip()), scores.shape[1])
                    row.append(",".join(f"{v:.5g}" for v in np.asarray(scores[i][:length])))
                writer.writerow(row)
            count += len(batch)
            invalid_sequences += int((result["invalid_characters"] > 0).sum())
            invalid_characters += int(result["invalid_characters"].sum())
            truncated += int(np.asarray(result["truncated"]).sum())
            for _, sequence in batch:
                stripped = sequence.strip()
                empty += not stripped
                short += bool(stripped) and short_of is not None and len(stripped) < short_of
                seen = stripped[: window or None]
                characters += len(seen)
                unusual += len(seen) - sum(seen.count(c) for c in _DEFINITE)
            progress.update(len(batch))
    return count, (
        invalid_sequences, invalid_characters, unusual, characters, truncated, empty, short,
        (repeated, first_repeated) if repeated else None,
    )  # fmt: skip
