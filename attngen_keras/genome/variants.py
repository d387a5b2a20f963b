"""`attngen variants`: the model's prediction on the REF and ALT windows of every ALT allele of a VCF.

For a variant at 1-based VCF position `pos` (0-based `p = pos - 1`) and a
model of length L:

- the REF window is the genome's `[p - L//2, p - L//2 + L)`: the variant's
  first REF base at 0-based offset `L//2`;
- the ALT window is built the same way: the `L//2` genome bases before `p`,
  then the ALT allele, then the genome after the REF allele, cut to L (an
  insertion pushes the right flank out, a deletion pulls more of it in;
  past the record's end the flank is padded with N);
- `ref_match` is false when the VCF's REF differs from the genome at `p`
  (case-insensitive); such rows are still scored (the REF window is the
  genome's), flagged and counted on stderr;
- a variant whose REF window does not fit in its record (closer than L//2
  to an end), whose REF allele lies beyond the record's end (`ref_match`
  empty: the VCF is likely of another reference build), on a chromosome
  absent from the FASTA, or with a symbolic ALT (`<DEL>`, `*`, breakends) is
  written with empty scores and a `note`, and counted on stderr: never
  dropped silently;
- multi-allelic records are split: one row per ALT allele.

Columns of the TSV: `chrom pos id ref alt ref_match class p_ref p_alt delta
log_odds_ratio importance_ref importance_alt note`. `p_*` is the probability
of `class`: `target_class` (`--class`) if given, else the second class of a
binary model (as the scan's track), the class predicted on the REF window
for a multi-class one. `delta = p_alt -
p_ref`, `log_odds_ratio = logit(p_alt) - logit(p_ref)` (probabilities clipped
to [1e-7, 1 - 1e-7]). `importance_*`: the model's `saliency` output (AttnGen's
attention projected to nucleotides; |gradient x input| for models without
attention), averaged over the REF (ALT) allele's bases in the REF (ALT) window.
"""

import contextlib
import csv
import hashlib
import math
import os
import re
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np

from attngen_keras.data.errors import DataError, missing_file_error
from attngen_keras.files import (
    FileError,
    check_distinct_files,
    check_output_file,
    partial_path,
    plural,
    remove_stale_partials,
    some_names,
    user_path,
)
from attngen_keras.genome.checkpoint import (
    CHECKPOINT_FILES,
    SAVE_SECONDS,
    Checkpoint,
    clear_for_beam,
    kept_after,
    sync_files,
    variants_identity,
)
from attngen_keras.genome.reference import compression, open_fasta, random_access_path, temp_dir
from attngen_keras.genome.scoring import Scorer
from attngen_keras.genome.windows import (
    DEFAULT_MAX_N_FRACTION,
    max_n_count,
    unusual_characters,
)
from attngen_keras.progress import progress_bar

COLUMNS = [
    "chrom", "pos", "id", "ref", "alt", "ref_match", "class", "p_ref", "p_alt", "delta",
    "log_odds_ratio", "importance_ref", "importance_alt", "note",
]  # fmt: skip
INFO_TAGS = {
    "ATTNGEN_PREF": "attngen: model probability of {what} on the REF window (per ALT allele)",
    "ATTNGEN_PALT": "attngen: model probability of {what} on the ALT window (per ALT allele)",
    "ATTNGEN_DELTA": "attngen: PALT - PREF (per ALT allele)",
}
MISMATCH_TAG = "ATTNGEN_REF_MISMATCH"
MISMATCH_DESCRIPTION = (
    "attngen: the REF allele differs from the reference genome (scored on the genome's)"
)
_EPS = 1e-7
_ROWS = "effects.tsv"  # the rows' file in a checkpoint
_SCORABLE = set("ACGTUNRYSWKMBDHVacgtunryswkmbdhv")
NOTE_END = "too close to the record end (either end): no full REF window"
NOTE_CHROM = "chromosome not in the FASTA"
NOTE_SYMBOLIC = "symbolic or non-sequence ALT allele: not scored"
NOTE_BEYOND = "REF allele beyond the end of the record: another reference build?"
NOTE_N = "REF window more than --max-n-fraction N (an assembly gap?): not scored"


def readable_vcf(vcf, quiet=False):
    """The path to read `vcf` from: itself, or for a plain-gzip (not bgzip) VCF a temporary
    plain copy, which htslib can read (one stderr note says so)."""
    import gzip

    path = Path(vcf)
    if not path.is_file():
        raise missing_file_error(path)
    if compression(path) != "gzip":
        return path
    stat = path.stat()  # an edited file gets a new copy
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    plain = temp_dir() / f"{key[:16]}.vcf"
    if not plain.exists():
        if not quiet:
            print(f"attngen: note: {path}: VCF is gzip (not bgzip): reading a temporary plain copy "
                  "(bgzip it to avoid this)", file=sys.stderr)  # fmt: skip
        partial = plain.with_suffix(f".partial-{os.getpid()}")
        try:
            with gzip.open(path, "rb") as source, open(partial, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
        except (OSError, EOFError, zlib.error) as error:
            partial.unlink(missing_ok=True)
            raise DataError(f"cannot decompress the VCF ({error})", path) from None
        partial.replace(plain)
    return plain


def read_alleles(vcf, name=None):
    """Yields `(index, chrom, pos, id, ref, alt)` for every ALT allele of a VCF (multi-allelic records split).

    Args:
        vcf: a plain, bgzipped or BCF file (see `readable_vcf` for plain gzip).
        name: the file named in errors (default: `vcf`).
    """
    import pysam

    path = Path(vcf)
    if not path.is_file():
        raise missing_file_error(path, name)
    shown = name or path
    index = 0
    number = 0
    verbosity = pysam.set_verbosity(0)  # htslib's own warnings: the error below says it in one line
    try:
        with pysam.VariantFile(str(path)) as reader:
            for number, record in enumerate(reader, 1):  # noqa: B007 (read after the loop for errors)
                for alt in record.alts or ():
                    yield index, record.chrom, record.pos, record.id or ".", record.ref, alt
                    index += 1
    except (OSError, ValueError) as error:
        found = _diagnose_vcf(path, number + 1)
        if found is not None:
            where, problem = found
            raise DataError(problem, shown, where) from None
        where = f"record {number + 1}" if number else None
        raise DataError(f"cannot read the VCF ({error})", shown, where) from None
    finally:
        pysam.set_verbosity(verbosity)


def _diagnose_vcf(path, record):
    """`(where, problem)` for the VCF text's first problem up to data line `record`, or None.

    pysam (htslib) reports a malformed line as e.g. "truncated file" without
    naming it; this reads the text again to say which line and what is wrong.
    """
    import gzip

    try:
        opener = gzip.open if compression(path) != "plain" else open
        with opener(path, "rb") as raw:
            start = raw.read(4)
        if start.startswith(b"BCF"):  # binary: nothing to read as text
            return None, "a BCF file that htslib cannot read (truncated or corrupt?)"
        if start.startswith(b"\xef\xbb\xbf"):
            return "line 1", (
                "starts with a UTF-8 byte-order mark (BOM), which htslib does not accept: "
                "save the file without it"
            )
        with opener(path, "rt", errors="replace") as lines:
            header = data = 0
            declared = False  # a first line ##fileformat=VCF..., which htslib requires
            for number, line in enumerate(lines, 1):
                line = line.rstrip("\r\n")
                declared = declared or (number == 1 and line.startswith("##fileformat=VCF"))
                if line.startswith("##"):
                    continue
                if line.startswith("#"):
                    if not declared:
                        return "line 1", (
                            "not a VCF: its first line must be '##fileformat=VCFv4.x' (add it "
                            "above the header)"
                        )
                    header = number
                    continue
                if not line.strip():
                    continue
                if not header:
                    return f"line {number}", "not a VCF: no '#CHROM' header line before the records"
                data += 1
                fields = line.split("\t")
                if len(fields) < 8:
                    return f"line {number}", (
                        f"{len(fields)} tab-separated field(s); a VCF record has at least 8 "
                        "(CHROM POS ID REF ALT QUAL FILTER INFO)"
                    )
                if not fields[1].isdigit():
                    return f"line {number}", f"POS {fields[1]!r} is not a position (a whole number)"
                if data >= record:
                    return None
            if not header:
                return None, "not a VCF: no '#CHROM' header line"
    except (OSError, EOFError, UnicodeDecodeError):
        return None
    return None


def _windows(fasta, sizes, allele, length, max_n=None):
    """`(ref_window, alt_window, ref_match, note)` of one allele (windows None when not scorable).

    `max_n`: the most N's a scored REF window may hold (None: any number), as `scan` skips
    windows with more (`Tiler.max_n`).
    """
    _, chrom, pos, _, ref, alt = allele
    p = pos - 1
    if chrom not in sizes:
        return None, None, None, NOTE_CHROM
    half = length // 2
    start = p - half
    size = sizes[chrom]
    if p + len(ref) > size:  # the REF allele ends past the record: the genome has no REF to compare
        return None, None, None, NOTE_BEYOND
    origin = max(start, 0)
    segment = fasta.fetch(chrom, origin, min(size, p + len(ref) + length)) if origin < size else ""
    genome_ref = segment[p - origin : p - origin + len(ref)]
    ref_match = genome_ref.upper() == ref.upper()
    if start < 0 or start + length > size:
        return None, None, ref_match, NOTE_END
    if not alt or not set(alt) <= _SCORABLE:
        return None, None, ref_match, NOTE_SYMBOLIC
    ref_window = segment[:length]
    if max_n is not None and ref_window.count("N") + ref_window.count("n") > max_n:
        return None, None, ref_match, NOTE_N
    left = segment[:half]
    right = segment[half + len(ref) :]
    alt_window = (left + alt + right)[:length]
    alt_window += "N" * (length - len(alt_window))
    return ref_window.encode(), alt_window.encode(), ref_match, ""


def score_alleles(scorer, fasta, sizes, alleles, both_strands=False, max_n=None):
    """Scores a batch of alleles; returns one result dict per allele (keys: the TSV columns).

    `max_n`: REF windows with more N's are not scored (`NOTE_N`; None: no limit).
    """
    built = [_windows(fasta, sizes, allele, scorer.length, max_n) for allele in alleles]
    scored = [b for b in built if b[0] is not None]
    windows = [b[0] for b in scored] + [b[1] for b in scored]
    outputs = scorer.probabilities_and_importance(windows, both_strands)
    return _results(scorer, alleles, built, outputs)


def _results(scorer, alleles, built, outputs):
    """The result dicts of a batch of alleles from their windows and the model's outputs."""
    probs, importance = outputs
    scored = [i for i, b in enumerate(built) if b[0] is not None]
    n = len(scored)
    position = dict(zip(scored, range(n)))
    half = scorer.length // 2
    # Python floats up front (exactly the float32 values): per-element numpy indexing is slow
    prob_rows = probs.tolist()
    at_variant = importance[:, half].tolist()
    target = scorer.target
    results = []
    for i, allele in enumerate(alleles):
        index, chrom, pos, ident, ref, alt = allele
        _, _, ref_match, note = built[i]
        row = {
            "index": index, "chrom": chrom, "pos": pos, "id": ident, "ref": ref, "alt": alt,
            "ref_match": "" if ref_match is None else str(bool(ref_match)).lower(), "note": note,
            "class": "", "p_ref": None, "p_alt": None, "delta": None, "log_odds_ratio": None,
            "importance_ref": None, "importance_alt": None, "invalid_characters": 0,
        }  # fmt: skip
        if i in position:
            k = position[i]
            ref_probs, alt_probs = prob_rows[k], prob_rows[n + k]
            column = target if target is not None else int(np.argmax(ref_probs))
            p_ref, p_alt = ref_probs[column], alt_probs[column]
            row.update(
                {
                    "class": scorer.class_names[column],
                    "p_ref": p_ref,
                    "p_alt": p_alt,
                    "delta": p_alt - p_ref,
                    "log_odds_ratio": _logit(p_alt) - _logit(p_ref),
                    "importance_ref": _mean(importance, at_variant, k, half, len(ref)),
                    "importance_alt": _mean(importance, at_variant, n + k, half, len(alt)),
                    # of the REF window: the model reads them as N
                    "invalid_characters": unusual_characters(built[i][0])[1],
                }
            )
        results.append(row)
    return results


def _mean(importance, at_variant, row, start, count):
    """`float(np.mean(importance[row, start:start + max(count, 1)]))`; `at_variant` holds
    `importance[:, start]` as Python floats, the answer for one base without numpy's overhead."""
    if count <= 1:
        return at_variant[row]
    return float(np.mean(importance[row, start : start + count]))


def _logit(p):
    p = min(max(p, _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def _format(value, spec):
    return "" if value is None else format(value, spec)


def tsv_row(result):
    """The TSV fields of one result."""
    return [
        result["chrom"], result["pos"], result["id"], result["ref"], result["alt"],
        result["ref_match"], result["class"], _format(result["p_ref"], ".6f"),
        _format(result["p_alt"], ".6f"), _format(result["delta"], ".6f"),
        _format(result["log_odds_ratio"], ".6f"), _format(result["importance_ref"], ".6g"),
        _format(result["importance_alt"], ".6g"), result["note"],
    ]  # fmt: skip


# alleles per model call (twice as many windows: REF and ALT); on 2 CPU cores 512 scored
# 5,039-5,423 variants/s against 4,652-4,873 at 256 (benchmarks/genome.py's variants, alternating)
DEFAULT_BATCH_SIZE = 512


def score_variants(
    model,
    vcf,
    fasta,
    out,
    vcf_out=None,
    both_strands=False,
    batch_size=DEFAULT_BATCH_SIZE,
    max_n_fraction=DEFAULT_MAX_N_FRACTION,
    runner="local",
    beam_options=(),
    show_progress=True,
    target_class=None,
    force=False,
    checkpoint_seconds=SAVE_SECONDS,
):
    """Writes `effects.tsv` (and optionally an annotated VCF); returns a summary dict.

    Args:
        model: an exported SavedModel or run directory (as `attngen predict`), or a `Scorer`.
        vcf: the variants (VCF/BCF, plain or bgzipped).
        fasta: the reference (plain, gzip or bgzip FASTA).
        out: the effects TSV (one row per ALT allele, in VCF order).
        vcf_out: the input VCF with `ATTNGEN_PREF`, `ATTNGEN_PALT`, `ATTNGEN_DELTA` INFO tags
            (`.gz`: bgzipped).
        both_strands: average each window and its reverse complement.
        batch_size: alleles per model call (each scores a REF and an ALT window); with
            `runner="beam"` also the alleles of one Beam task.
        max_n_fraction: alleles whose REF window has more than this share of N's (an assembly
            gap) are not scored, as `scan` skips such windows (their rows say why).
        runner: `local` or `beam` (`beam_options`: Beam pipeline options).
        target_class: the class whose probabilities `p_ref`/`p_alt` are (`--class`; default: the
            second class of a binary model, the REF window's predicted class of a multi-class one).
        force: replace existing outputs (`--force`; at the end, when the new ones are
            complete); otherwise an existing output is an error before any work. It also
            discards an interrupted run's checkpoint made with other inputs or options.
        checkpoint_seconds: how often a local run saves its progress.

    A local run checkpoints (`attngen_keras.genome.checkpoint`): killed or
    interrupted, the same call resumes it and writes the same bytes.

    Example:

    >>> score_variants("saved_models/hof", "calls.vcf.gz", "chr22.fa.gz", "effects.tsv")  # doctest: +SKIP
    {'alleles': 1000, 'scored': 998, 'ref_mismatch': 1, ...}
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    max_n_count(max_n_fraction, 1)  # its range, before any work
    check_distinct_files({"--vcf": vcf, "--fasta": fasta}, {"--out": out, "--vcf-out": vcf_out})
    out = check_output_file(out, force=force)
    vcf_out = check_output_file(vcf_out, force=force) if vcf_out else None
    for path in (out, vcf_out):  # what killed runs left
        if path is not None:
            remove_stale_partials(path)
    if not Path(vcf).is_file():
        raise missing_file_error(vcf)
    if runner == "beam":
        from attngen_keras.genome.beam import check_beam_options, require_beam

        require_beam()
        check_beam_options(beam_options)
    elif beam_options:
        raise ValueError(f"--beam-option {beam_options[0]} needs --runner beam")
    source = readable_vcf(vcf)
    paths = random_access_path(fasta)
    scorer = (
        model.with_target(target_class)
        if isinstance(model, Scorer)
        else Scorer.load(model, target_class)
    )
    max_n = max_n_count(max_n_fraction, scorer.length)
    reference = open_fasta(paths)
    sizes = dict(zip(reference.references, reference.lengths))
    identity = None
    if runner == "local":
        # a local run checkpoints: killed or interrupted, the same command resumes it
        identity = variants_identity(scorer, vcf, fasta, both_strands, batch_size, max_n_fraction)
    if runner == "beam":
        clear_for_beam(out, "variants", force)  # last, once everything else is checked
    table = EffectsTable(out, identity, force=force, checkpoint_seconds=checkpoint_seconds,
                         batch_size=batch_size)  # fmt: skip
    cleanup = None
    try:
        with table:
            if runner == "beam":
                from attngen_keras.genome.beam import variants_with_beam

                results, cleanup = variants_with_beam(
                    model, paths, list(read_alleles(source, vcf)), scorer.length, batch_size,
                    both_strands, beam_options, scorer.target_class, max_n,
                )  # fmt: skip
            else:
                if table.rows:
                    print(
                        f"attngen variants: resuming the interrupted run into {out} after "
                        f"{table.rows:,} ALT {'allele' if table.rows == 1 else 'alleles'}",
                        file=sys.stderr,
                    )
                results = _local(scorer, reference, sizes, source, vcf, batch_size, both_strands,
                                 show_progress, skip=table.rows, max_n=max_n)  # fmt: skip
            for result in results:
                table.add(result)
                table.batch_done()
            table.close()
            if vcf_out is not None:
                what = (
                    f"class {scorer.class_names[scorer.target]}"
                    if scorer.target is not None
                    else "the class predicted on the REF window"
                )
                # the annotations are read back from the TSV, in VCF order (memory stays flat,
                # and the two outputs print the same numbers)
                try:
                    _write_vcf(source, partial_path(vcf_out), effects_from_tsv(table.path),
                               vcf_out.name.endswith(".gz"), what, vcf_name=vcf)  # fmt: skip
                except BaseException:
                    partial_path(vcf_out).unlink(missing_ok=True)
                    raise
            table.commit()
    finally:
        if cleanup is not None:  # the Beam run's task files
            cleanup()
    outputs = [str(out)]
    if vcf_out is not None:
        partial_path(vcf_out).replace(vcf_out)
        outputs.append(str(vcf_out))
    counts = table.counts
    _report(vcf, counts, scorer.length, sorted(table.missing), list(sizes), table.beyond, sizes)
    return {
        "alleles": counts["alleles"], "scored": counts["scored"],
        "ref_mismatch": counts["ref_mismatch"], "near_end": counts[NOTE_END],
        "missing_chrom": counts[NOTE_CHROM], "symbolic": counts[NOTE_SYMBOLIC],
        "beyond_end": counts[NOTE_BEYOND], "invalid_windows": counts["invalid_windows"],
        "mostly_n": counts[NOTE_N], "outputs": outputs, "resumed_alleles": table.resumed,
    }  # fmt: skip


class EffectsTable:
    """The effects TSV being written, row by row in VCF order, and the counts the report needs.

    Args:
        out: the TSV's path (written under a temporary name, renamed into place by `commit`).
        identity: a `checkpoint.variants_identity` to keep the rows in a checkpoint beside
            `out` and resume from it; None: a temporary file, removed unless committed.
        force: discard a checkpoint of a different run (or a damaged one).
        checkpoint_seconds: how often progress is saved (with a checkpoint).
        batch_size: alleles per model call: progress is saved only after whole batches, so
            that a resumed run scores the same batches as an uninterrupted one.

    With a checkpoint, an interruption or an I/O error keeps it (the rows up
    to the last batch boundary saved), as does a file problem once every row
    is written (the annotated VCF cannot be created); bad input (a
    `ValueError` while scoring, a `DataError` at any time), which would
    recur, removes it.

    Example:

    >>> with EffectsTable("effects.tsv") as table:  # doctest: +SKIP
    ...     table.add(result); table.close(); table.commit()
    """

    def __init__(self, out, identity=None, force=False, checkpoint_seconds=SAVE_SECONDS,
                 batch_size=DEFAULT_BATCH_SIZE):  # fmt: skip
        self.out = Path(out)
        self.checkpoint = None
        if identity is not None:
            self.checkpoint = Checkpoint(out, identity, force=force, interval=checkpoint_seconds,
                                         command="variants")  # fmt: skip
        self.path = (
            partial_path(out) if self.checkpoint is None else self.checkpoint.directory / _ROWS
        )
        self.batch_size = int(batch_size)
        self.counts = {
            "alleles": 0, "scored": 0, "ref_mismatch": 0, NOTE_END: 0, NOTE_CHROM: 0,
            NOTE_SYMBOLIC: 0, NOTE_BEYOND: 0, NOTE_N: 0, "invalid_windows": 0,
        }  # fmt: skip
        self.missing = set()  # VCF chromosomes that the FASTA lacks
        self.beyond = None  # the first allele past its record's end
        self.rows = self.resumed = 0
        self._handle = self._writer = None
        self._saved = None  # rows when progress was last saved
        self._boundary = None  # the state at the last batch boundary
        self._complete = False  # every row written
        self._committed = False

    def __enter__(self):
        progress = self.checkpoint.open() if self.checkpoint is not None else None
        if self.checkpoint is not None:
            for path in self.checkpoint.directory.iterdir():
                if path.name not in (*CHECKPOINT_FILES, _ROWS):
                    path.unlink()
        if progress and (not self.path.is_file() or self.path.stat().st_size < progress["size"]):
            self.checkpoint.damaged(_ROWS)
            progress = None
        if progress:
            os.truncate(self.path, progress["size"])
            self.counts.update(progress["counts"])
            self.missing = set(progress["missing"])
            self.beyond = tuple(progress["beyond"]) if progress["beyond"] else None
            self.rows = self.resumed = self._saved = int(progress["rows"])
            self._handle = open(self.path, "a", newline="")  # noqa: SIM115 (closed in close)
        else:
            self._handle = open(self.path, "w", newline="")  # noqa: SIM115 (closed in close)
        self._writer = csv.writer(self._handle, delimiter="\t", lineterminator="\n")
        if not progress:
            self._writer.writerow(COLUMNS)
        return self

    def add(self, result):
        """One ALT allele's result: its row, and the counts."""
        self._writer.writerow(tsv_row(result))
        counts = self.counts
        counts["alleles"] += 1
        counts["scored"] += result["p_ref"] is not None
        counts["ref_mismatch"] += result["ref_match"] == "false"
        counts["invalid_windows"] += result.get("invalid_characters", 0) > 0
        if result["note"]:
            counts[result["note"]] += 1
            if result["note"] == NOTE_CHROM:
                self.missing.add(result["chrom"])
            if result["note"] == NOTE_BEYOND and self.beyond is None:
                self.beyond = (result["chrom"], result["pos"])
        self.rows += 1

    def batch_done(self):
        """After a row: at a batch boundary, notes the state there, and saves it when a save is
        due (with a checkpoint)."""
        if self.checkpoint is None or self.rows % self.batch_size or self.rows == self._saved:
            return
        self._boundary = self._state()
        if self.checkpoint.due():
            self.save_progress()

    def _state(self):
        """The progress as of now (the rows flushed): rows, bytes, and the report's counts."""
        return {
            "rows": self.rows, "size": self._handle.tell(), "counts": dict(self.counts),
            "missing": sorted(self.missing), "beyond": list(self.beyond) if self.beyond else None,
        }  # fmt: skip

    def save_progress(self):
        """Syncs the rows, then saves the state at the last batch boundary (or, once every row is
        written, the whole): a resumed run scores the same batches as an uninterrupted one."""
        state = self._state() if self._complete and self._handle else self._boundary
        if self.checkpoint is None or state is None or state["rows"] == self._saved:
            return
        if self._handle is not None:
            self._handle.flush()
        sync_files([self.path])
        self.checkpoint.save(state)
        self._saved = state["rows"]

    def close(self):
        """Closes the TSV once every row is written, saving the progress first: a failure writing
        the annotated VCF then resumes with nothing left to score."""
        if self._handle is None:
            return
        self._complete = True
        self.save_progress()
        self._handle.close()
        self._handle = None

    def commit(self):
        """Renames the complete TSV into place and removes the checkpoint."""
        self.close()
        os.replace(self.path, self.out)
        self._committed = True
        if self.checkpoint is not None:
            self.checkpoint.remove()

    def __exit__(self, kind, error, trace):
        interrupted = kept_after(kind, self._complete)
        keep = self.checkpoint is not None and not self._committed and interrupted
        try:
            if keep:
                with contextlib.suppress(OSError):  # (a full disk) the progress saved last stays
                    self.save_progress()
            if self._handle is not None:
                with contextlib.suppress(OSError):
                    self._handle.close()
                self._handle = None
        finally:
            if self._committed:
                pass
            elif self.checkpoint is None:
                self.path.unlink(missing_ok=True)
            elif keep and self._saved is not None:
                self.checkpoint.release()  # another process (another host) may resume it
            else:
                self.checkpoint.remove()
        return False


def _local(
    scorer,
    reference,
    sizes,
    source,
    vcf,
    batch_size,
    both_strands,
    show_progress,
    skip=0,
    max_n=None,
):
    """The results of every ALT allele of the VCF after the first `skip` (already written)."""
    import itertools

    from attngen_keras.predict import _batches

    alleles = read_alleles(source, vcf)
    if skip:
        alleles = itertools.islice(alleles, skip, None)
    with progress_bar(
        unit=" alleles", desc=f"scoring {Path(vcf).name}", disable=not show_progress
    ) as bar:
        bar.update(skip)
        for batch in _batches(alleles, batch_size):
            yield from score_alleles(scorer, reference, sizes, batch, both_strands, max_n)
            bar.update(len(batch))


def _report(vcf, counts, length, missing=(), fasta_names=(), beyond=None, sizes=None):
    parts = []
    if counts.get(NOTE_BEYOND):
        example = ""
        if beyond is not None and sizes:
            chrom, pos = beyond
            example = f", e.g. {chrom}:{pos} on a record of {sizes[chrom]:,} bp"
        parts.append(
            f"{plural(counts[NOTE_BEYOND], 'allele')} beyond the end of their record{example}: is the "
            "FASTA the VCF's reference build? not scored"
        )
    if counts["ref_mismatch"]:
        parts.append(
            f"{plural(counts['ref_mismatch'], 'allele')} whose REF differs from the genome (ref_match false)"
        )
    if counts[NOTE_END]:
        parts.append(
            f"{plural(counts[NOTE_END], 'allele')} within {length // 2} nt of the start or end of their "
            "record, not scored"
        )
    if counts[NOTE_CHROM]:
        hint = (
            f" ({some_names(missing)}; the FASTA has {some_names(fasta_names)})" if missing else ""
        )
        parts.append(
            f"{plural(counts[NOTE_CHROM], 'allele')} on chromosomes absent from the FASTA{hint}, "
            "not scored"
        )
    if counts[NOTE_SYMBOLIC]:
        parts.append(f"{plural(counts[NOTE_SYMBOLIC], 'symbolic ALT allele')}, not scored")
    if counts.get(NOTE_N):
        parts.append(
            f"{plural(counts[NOTE_N], 'allele')} whose REF window is more than --max-n-fraction N "
            "(an assembly gap?), not scored"
        )
    if parts:
        parts[-1] += " (see the note column)"
    if counts.get("invalid_windows"):
        parts.append(
            f"{plural(counts['invalid_windows'], 'allele')} whose REF window holds characters that "
            "are not nucleotides or IUPAC codes (read as N)"
        )
    if parts:
        print(f"attngen variants: warning: {vcf}: {'; '.join(parts)}", file=sys.stderr)


UNDEFINED_DESCRIPTION = "not defined in the input VCF; definition added by attngen variants"
# The VCF specification's (4.2-4.4) reserved INFO tags of structural variants, as `(Number, Type,
# Description)`: what an undefined one is declared as in the annotated VCF
RESERVED_INFO = {
    "END": ("1", "Integer", "End position of the variant described in this record"),
    "SVLEN": (".", "Integer", "Difference in length between REF and ALT alleles"),
    "SVTYPE": ("1", "String", "Type of structural variant"),
    "CIPOS": ("2", "Integer", "Confidence interval around POS for imprecise variants"),
    "CIEND": ("2", "Integer", "Confidence interval around END for imprecise variants"),
    "IMPRECISE": ("0", "Flag", "Imprecise structural variation"),
}
_INFO_DEFINITION = re.compile(r"^##INFO=<ID=(?P<id>[^,>]+),")


def _missing_definitions(vcf):
    """The header lines that `vcf`'s records need but its header lacks (`##contig`, `##INFO`, ...).

    Hand-written VCFs often lack `##contig` (or `##INFO`) lines. htslib reads
    them, adding a definition to the reader's header as it meets each, but
    it marks each record read that way, and writing a marked record makes
    htslib exit the process. A first pass collects those definitions, so
    that they can be added to the header before the records are read.
    """
    import pysam

    with pysam.VariantFile(str(vcf)) as probe:
        before = set(str(probe.header).splitlines())
        for _ in probe:
            pass
        after = str(probe.header).splitlines()
    # htslib's placeholder says "Dummy"; say what it is in the annotated copy. Its placeholder
    # types every tag as a String, and writing a record whose END is a String crashes pysam:
    # the VCF specification's reserved structural-variant tags get their specified types
    lines = []
    for line in after:
        if not line.startswith("##") or line in before:
            continue
        match = _INFO_DEFINITION.match(line)
        if match and match["id"] in RESERVED_INFO:
            number, kind, description = RESERVED_INFO[match["id"]]
            line = (f'##INFO=<ID={match["id"]},Number={number},Type={kind},'
                    f'Description="{description} ({UNDEFINED_DESCRIPTION})">')  # fmt: skip
        lines.append(line.replace('Description="Dummy"', f'Description="{UNDEFINED_DESCRIPTION}"'))
    return lines


_UNSCORED = (None, None, None, False)


def effects_from_tsv(path):
    """Yields `(p_ref, p_alt, delta, ref_mismatch)` of each row of an effects TSV, in order (None
    for an empty score), as the annotated VCF's tags print them."""
    with open(path, newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        columns = next(rows)
        at = [columns.index(name) for name in ("p_ref", "p_alt", "delta", "ref_match")]
        for row in rows:
            yield (*(float(row[i]) if row[i] else None for i in at[:3]), row[at[3]] == "false")


def _write_vcf(vcf, out, effects, compressed, what="the model's target class", vcf_name=None):
    """The input VCF with the INFO tags (Number=A: one value per ALT allele; `.` when not scored),
    `effects` the `(p_ref, p_alt, delta, ref_mismatch)` of each ALT allele in VCF order;
    `what` names the class the probabilities are of, in the tags' descriptions; `vcf_name` is the
    file errors name (the user's, when `vcf` is a temporary plain copy)."""
    import pysam

    verbosity = pysam.set_verbosity(0)  # htslib's header warnings (e.g. a tag's Type)
    try:
        _annotate(vcf, out, effects, compressed, _missing_definitions(vcf), what, vcf_name)
    finally:
        pysam.set_verbosity(verbosity)


def _annotate(vcf, out, effects, compressed, definitions, what, vcf_name=None):
    import pysam

    with pysam.VariantFile(str(vcf)) as reader:
        for line in definitions:
            reader.header.add_line(line)
        header = reader.header.copy()
        for tag, description in INFO_TAGS.items():
            if tag not in header.info:
                header.info.add(tag, "A", "Float", description.format(what=what))
        if MISMATCH_TAG not in header.info:
            header.info.add(MISMATCH_TAG, 0, "Flag", MISMATCH_DESCRIPTION)
        try:
            writer = pysam.VariantFile(str(out), "wz" if compressed else "w", header=header)
        except OSError:  # pysam's message names the temporary file and no reason
            raise FileError(user_path(out), "cannot be created (VCF writer)") from None
        effects = iter(effects)
        with writer:
            for record in reader:
                alts = record.alts or ()
                values = [next(effects, _UNSCORED) for _ in alts]
                record.translate(writer.header)
                if alts and any(v[0] is not None for v in values):
                    for position, tag in enumerate(INFO_TAGS):
                        record.info[tag] = tuple(v[position] for v in values)
                if any(v[3] for v in values):
                    record.info[MISMATCH_TAG] = True
                try:
                    writer.write(record)
                except (TypeError, ValueError) as error:  # what htslib cannot write back
                    raise DataError(
                        f"record {record.chrom}:{record.pos}: cannot be written to the annotated "
                        f"VCF ({error}); check its INFO tags against the header",
                        vcf_name or vcf,
                    ) from None
