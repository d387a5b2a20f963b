"""`attngen scan`: tile a genome into windows, score them, write tracks (locally or on Apache Beam)."""

import sys
from pathlib import Path

from attngen_keras.data.alphabet import NOT_DNA_SHARE
from attngen_keras.data.errors import missing_file_error
from attngen_keras.files import check_distinct_files, check_output_file, plural, some_names
from attngen_keras.genome.checkpoint import (
    SAVE_SECONDS,
    clear_for_beam,
    describe,
    pending_windows,
    scan_identity,
)
from attngen_keras.genome.scoring import Scorer, score_windows
from attngen_keras.genome.tracks import TrackWriter
from attngen_keras.genome.windows import (
    CHUNK_BASES,
    DEFAULT_MAX_N_FRACTION,
    Tiler,
    missing_chromosomes,
    read_regions,
    regions_past_the_end,
)
from attngen_keras.progress import progress_bar


def scan_genome(
    model,
    fasta,
    out,
    stride=None,
    regions=None,
    both_strands=False,
    bigwig=None,
    tsv=None,
    max_n_fraction=DEFAULT_MAX_N_FRACTION,
    batch_size=256,
    runner="local",
    beam_options=(),
    show_progress=True,
    chunk_bases=CHUNK_BASES,
    target_class=None,
    force=False,
    checkpoint_seconds=SAVE_SECONDS,
):
    """Scores every window of a FASTA and writes the tracks; returns a summary dict.

    Args:
        model: an exported SavedModel or run directory (as `attngen predict`), or a `Scorer`.
        fasta: the genome (plain, gzip or bgzip), streamed.
        out: the bedGraph of the probability of `target_class` (default: the second class of a
            binary model; `track.<class>.bedGraph` per class of a multi-class model).
        stride: S (default: L // 4).
        regions: a BED file: tile only these intervals.
        both_strands: average each window's and its reverse complement's probabilities.
        bigwig, tsv: optional bigWig and per-window TSV outputs.
        max_n_fraction: skip windows with more than this share of N's.
        runner: `local` or `beam` (`beam_options`: Beam pipeline options).
        target_class: the class whose probability the track holds (`--class`).
        force: replace existing outputs (`--force`; at the end, when the new ones are
            complete); otherwise an existing output is an error before any work. It also
            discards an interrupted scan's checkpoint made with other inputs or options.
        checkpoint_seconds: how often a local scan saves its progress.

    A local scan checkpoints (`attngen_keras.genome.checkpoint`): killed or
    interrupted, the same call resumes it and writes the same bytes.

    Example:

    >>> scan_genome("saved_models/hof", "chr22.fa.gz", "hof.bedGraph", stride=50)  # doctest: +SKIP
    {'windows': 431000, 'skipped_n': 12, ...}
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if not Path(fasta).is_file():
        raise missing_file_error(fasta)
    # before any work: the paths as given (a multi-class model's per-class names are checked below)
    check_distinct_files({"--fasta": fasta, "--regions": regions},
                         {"--out": out, "--bigwig": bigwig, "--tsv": tsv})  # fmt: skip
    # existing outputs, before loading the model where the paths are known now (a multi-class
    # model's per-class tracks are checked once its classes are known, by TrackWriter)
    if not force:
        for path in (tsv, *((out, bigwig) if target_class is not None else ())):
            if path:
                check_output_file(path)
    region_map = read_regions(regions) if regions else None
    scorer = model if isinstance(model, Scorer) else None
    if scorer is not None:
        scorer = scorer.with_target(target_class)
    if runner == "beam":
        from attngen_keras.genome.beam import check_beam_options, require_beam

        require_beam()
        check_beam_options(beam_options)
    elif beam_options:
        raise ValueError(f"--beam-option {beam_options[0]} needs --runner beam")
    if scorer is None:
        scorer = Scorer.load(model, target_class)
    length = scorer.length
    stride = length // 4 if stride is None else int(stride)
    if stride < 1:
        stride = 1
    tiler = Tiler(fasta, length, stride, region_map, max_n_fraction, chunk_bases)
    identity = None
    if runner == "local":
        # a local scan checkpoints: killed or interrupted, the same command resumes it
        tracked = TrackWriter.tracked_columns(scorer.class_names, scorer.target)
        identity = scan_identity(scorer, fasta, regions, stride, both_strands, max_n_fraction,
                                 batch_size, tracked, tsv)  # fmt: skip
    writer = TrackWriter(
        out, scorer.class_names, length, stride, bigwig, tsv, scorer.target, force=force,
        checkpoint_identity=identity, checkpoint_seconds=checkpoint_seconds,
    )  # fmt: skip
    check_distinct_files({"--fasta": fasta, "--regions": regions}, writer.outputs())
    if runner == "beam":
        from attngen_keras.genome.beam import scan_with_beam

        clear_for_beam(out, "scan", force)  # last, once everything else is checked

        with writer:
            summary = scan_with_beam(
                model if not isinstance(model, Scorer) else None, tiler, writer, batch_size,
                both_strands, beam_options, show_progress,
            )  # fmt: skip
        _report(fasta, summary)
        return summary
    with (
        writer,
        progress_bar(
            unit=" windows", desc=f"scanning {Path(fasta).name}", disable=not show_progress
        ) as progress,
    ):
        windows = tiler
        if writer.progress:
            windows = pending_windows(tiler, writer.progress)
            done = writer.progress["lines"]
            print(
                f"attngen scan: resuming the interrupted scan of {out} after "
                f"{describe(writer.progress)} ({done:,} {'window' if done == 1 else 'windows'} "
                "already scored)",
                file=sys.stderr,
            )
            progress.update(done)
        batches = aligned_batches(windows, tiler.regions, stride, batch_size)
        for batch, probs in score_windows(scorer, batches, both_strands):
            writer.add_batch([(chrom, start) for chrom, start, _ in batch], probs)
            progress.update(len(batch))
        paths = writer.finish(tiler.sizes)
    summary = _summary(tiler, paths, stride, length)
    summary["resumed_windows"] = writer.progress["lines"] if writer.progress else 0
    _report(fasta, summary)
    return summary


def aligned_batches(windows, regions, stride, batch_size):
    """Lists of windows, cut where the Beam runner cuts its tasks: every `batch_size` window starts of a
    record (region), counted from its first window, before N-skipped windows are left out.

    A model's floating-point result for a window can depend (in the last bits) on the other windows of its
    batch; batching alike is what makes the local and Beam outputs identical.
    """
    import bisect

    starts = {chrom: [r[0] for r in intervals] for chrom, intervals in (regions or {}).items()}
    key, batch = None, []
    for window in windows:
        chrom, start = window[0], window[1]
        origin = 0
        if regions is not None:
            firsts = starts[chrom]
            origin = firsts[bisect.bisect_right(firsts, start) - 1]
        here = (chrom, origin, (start - origin) // stride // batch_size)
        if here != key and batch:
            yield batch
            batch = []
        key = here
        batch.append(window)
    if batch:
        yield batch


def _summary(tiler, paths, stride, length):
    return {
        "records": len(tiler.sizes),
        "bases": sum(tiler.sizes.values()),
        "windows": tiler.windows,
        "skipped_n": tiler.skipped_n,
        "short": tiler.short,
        "beyond_end": tiler.beyond,
        "past_the_end": regions_past_the_end(tiler.regions, tiler.sizes, length),
        "unusual_characters": tiler.unusual,
        "invalid_characters": tiler.invalid,
        "length": length,
        "stride": stride,
        "outputs": [str(p) for p in paths],
        "missing_regions": missing_chromosomes(tiler.regions, tiler.sizes),
    }


def _report(fasta, summary):
    parts = []
    missing = summary.get("missing_regions") or []
    if missing:
        parts.append(
            f"--regions names {plural(len(missing), 'chromosome')} absent from the FASTA "
            f"({some_names(missing, 5)}), "
            "not scored (check the naming, e.g. 'chr1' against '1')"
        )
    if summary.get("beyond_end"):
        parts.append(
            f"{plural(summary['beyond_end'], 'region')} of --regions "
            f"{'starts' if summary['beyond_end'] == 1 else 'start'} at or past the end of "
            "its record, not scored (another reference build?)"
        )
    if summary.get("past_the_end"):
        parts.append(
            f"{plural(summary['past_the_end'], 'region')} of --regions "
            f"{'runs' if summary['past_the_end'] == 1 else 'run'} past the end of "
            "its record, scored up to that end (another reference build?)"
        )
    if summary["skipped_n"]:
        parts.append(f"{plural(summary['skipped_n'], 'window')} skipped for N's (--max-n-fraction)")
    if summary["short"]:
        parts.append(
            f"{plural(summary['short'], 'record or region', 'records or regions')} shorter than the "
            f"window ({summary['length']}) {'has' if summary['short'] == 1 else 'have'} no score"
        )
    if summary["invalid_characters"]:
        parts.append(
            f"{summary['invalid_characters']} of {summary['bases']} characters are not nucleotides "
            "or IUPAC codes (read as N)"
        )
    if summary["unusual_characters"] >= NOT_DNA_SHARE * max(summary["bases"], 1):
        share = summary["unusual_characters"] / max(summary["bases"], 1)
        parts.append(
            f"{share:.0%} of the characters are not A, C, G, T or N: this does not look like DNA "
            "(protein?), and the scores are meaningless"
        )
    if summary["windows"] == 0:
        parts.append("no window was scored: the tracks are empty")
    if parts:
        print(f"attngen scan: warning: {fasta}: {'; '.join(parts)}", file=sys.stderr)
