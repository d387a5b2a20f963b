"""`--runner beam`: the scan and the variant scoring as Apache Beam pipelines (RunInference).

Locally the pipeline runs on Beam's `FnApiRunner` (DirectRunner would first
try to download the Prism runner binary, which fails offline) with
`--direct_num_workers=2 --direct_running_mode=multi_processing` unless other
options are given; any runner is chosen with
`--beam-option=--runner=DataflowRunner --beam-option=--project=...` (see
docs/guides/genome.md for Dataflow, Flink and Spark).

The workers read windows at random from the FASTA (pysam, indexed: plain or
bgzip; a gzip FASTA is decompressed once to a temporary file) and load the
model by path, so both must be at paths every worker can read. Each task is
`batch_size` consecutive windows of one record (or one batch of alleles),
numbered in the local runner's order. Each task's scores come back as one
small text file, `<prefix>-<task number>`, under `--temp_location` (a local
temporary directory by default); the launcher reads them back in task order,
one at a time, deleting each once read, and feeds them to the same writers as
the local runner: the outputs are identical, and the launcher's memory does
not grow with the genome (it holds one task's scores, and the list of tasks).
"""

import json
import tempfile
import uuid

from attngen_keras.genome.reference import open_fasta, random_access_path
from attngen_keras.genome.windows import count_characters, missing_chromosomes, window_starts

INSTALL_HINT = 'pip install -e ".[beam]"'


def require_beam():
    """Raises a one-line error naming the extra when Apache Beam is not installed."""
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        raise ValueError(
            f"--runner beam needs Apache Beam, which is not installed: {INSTALL_HINT}"
        ) from None


def worker_threads(beam_options):
    """TensorFlow threads per worker: this machine's cores split among FnApiRunner's worker processes
    (None, TensorFlow's default, for other runners and in-process runs)."""
    import os

    options = list(beam_options or ())
    if any(o.split("=")[0] == "--runner" for o in options):
        return None
    mode = [o.split("=", 1)[1] for o in options if o.startswith("--direct_running_mode=")]
    if mode and mode[-1] != "multi_processing":
        return None
    workers = [int(o.split("=", 1)[1]) for o in options if o.startswith("--direct_num_workers=")]
    count = workers[-1] if workers and workers[-1] > 0 else 2
    return max(1, (os.cpu_count() or 1) // count)


def _options(beam_options):
    """`(PipelineOptions, runner)`: FnApiRunner with 2 worker processes unless a runner is named."""
    from apache_beam.options.pipeline_options import PipelineOptions

    options = list(beam_options or ())
    named = any(o.split("=")[0] == "--runner" for o in options)
    runner = None
    if not named:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        runner = FnApiRunner()
        if not any(o.startswith("--direct_num_workers") for o in options):
            options.append("--direct_num_workers=2")
        if not any(o.startswith("--direct_running_mode") for o in options):
            options.append("--direct_running_mode=multi_processing")
    if not any(o.startswith("--default_sdk_harness_log_level") for o in options):
        options.append(
            "--default_sdk_harness_log_level=WARNING"
        )  # workers' INFO lines are noise here
    parsed = PipelineOptions(options)
    return parsed, runner


def _temp_prefix(parsed):
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    base = parsed.view_as(GoogleCloudOptions).temp_location
    if not base:
        base = tempfile.mkdtemp(prefix="attngen-beam-")
    return FileSystems.join(base, f"attngen-{uuid.uuid4().hex}", "part")


def task_file(prefix, index):
    """The file a task's output lines go to (zero-padded: they list in task order)."""
    return f"{prefix}-{index:010d}"


def read_task_files(prefix, count):
    """Yields the output lines of tasks `0 .. count-1`, in that order, deleting each file once read.

    Raises `RuntimeError` naming the first missing file (a task whose output never arrived).
    """
    from apache_beam.io.filesystems import FileSystems

    for index in range(count):
        path = task_file(prefix, index)
        if not FileSystems.exists(path):
            raise RuntimeError(f"{path}: the Beam pipeline finished without task {index}'s output")
        with FileSystems.open(path) as handle:
            lines = handle.read().decode().splitlines()
        yield from lines
        FileSystems.delete([path])


def _run(build, beam_options):
    """Runs the pipeline `build(pipeline, prefix)` makes; returns the prefix of its task files."""
    import logging

    import apache_beam as beam

    logging.getLogger("apache_beam").setLevel(logging.WARNING)

    parsed, runner = _options(beam_options)
    prefix = _temp_prefix(parsed)
    pipeline = beam.Pipeline(runner=runner, options=parsed)
    build(pipeline, prefix)
    pipeline.run().wait_until_finish()
    return prefix


def scan_tasks(sizes, regions, length, stride, per_task):
    """`(index, chrom, first_start, count)` tasks covering the windows the local `Tiler` makes, in its order."""
    index = 0
    for chrom, size in sizes.items():
        intervals = [(0, size)] if regions is None else regions.get(chrom, [])
        for start, end in intervals:
            starts = window_starts(start, end, size, length, stride)
            for k in range(0, len(starts), per_task):
                piece = starts[k : k + per_task]
                yield index, chrom, piece[0], len(piece)
                index += 1


def scan_with_beam(
    model_path, tiler, writer, batch_size, both_strands, beam_options, show_progress
):
    """Runs the scan as a Beam pipeline; writes through `writer`; returns the summary."""
    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference

    from attngen_keras.genome.beam_handlers import WindowModelHandler, WindowTasks, WriteTaskFile

    if model_path is None:
        raise ValueError(
            "--runner beam needs a model path (workers load it), not an in-memory model"
        )
    paths = random_access_path(tiler.path)
    fasta = open_fasta(paths)
    sizes = dict(zip(fasta.references, fasta.lengths))
    fasta.close()
    length, stride = tiler.length, tiler.stride
    tasks = list(scan_tasks(sizes, tiler.regions, length, stride, batch_size))
    threads = None  # TensorFlow's default pools, as locally: worker_threads() changed 6 of 392,739 last digits
    short = _short(sizes, tiler.regions, length)

    def build(pipeline, prefix):
        return (
            pipeline
            | "tasks" >> beam.Create(tasks, reshuffle=True)
            | "windows" >> beam.ParDo(WindowTasks(paths, length, stride, tiler.max_n))
            | "score" >> RunInference(WindowModelHandler(model_path, both_strands, threads))
            | "lines" >> beam.Map(_scan_lines)
            | "write" >> beam.ParDo(WriteTaskFile(prefix))
        )

    prefix = _run(build, beam_options)
    skipped = windows = 0
    batch = []
    for line in read_task_files(prefix, len(tasks)):
        fields = line.split("\t")
        if fields[0] == "#skipped":
            skipped += int(fields[1])
            continue
        batch.append((fields[0], int(fields[1]), [float(v) for v in fields[2].split(",")]))
        if len(batch) >= batch_size:
            windows += _add(writer, batch)
    windows += _add(writer, batch)
    outputs = writer.finish(sizes)
    unusual, invalid = count_characters(tiler.path)  # the workers read windows, not every base
    return {
        "records": len(sizes), "bases": sum(sizes.values()), "windows": windows,
        "skipped_n": skipped, "short": short, "beyond_end": _beyond(sizes, tiler.regions),
        "unusual_characters": unusual,
        "invalid_characters": invalid, "length": length, "stride": stride,
        "outputs": [str(p) for p in outputs], "tasks": len(tasks),
        "missing_regions": missing_chromosomes(tiler.regions, sizes),
    }  # fmt: skip


def _add(writer, batch):
    """Hands `[(chrom, start, probs), ...]` to the track writer; empties `batch`; returns its size."""
    count = len(batch)
    if count:
        writer.add_batch([(chrom, start) for chrom, start, _ in batch], [p for _, _, p in batch])
    batch.clear()
    return count


def _short(sizes, regions, length):
    count = 0
    for chrom, size in sizes.items():
        for start, end in [(0, size)] if regions is None else regions.get(chrom, []):
            if start < size and min(end, size) - start < length:
                count += 1
    return count


def _beyond(sizes, regions):
    """Regions that start at or past their record's end (as `Tiler.beyond`)."""
    return sum(
        start >= size
        for chrom, size in sizes.items()
        for start, _ in (regions or {}).get(chrom, [])
    )


def _scan_lines(element):
    """`((index, chrom), [(start, probs)], skipped)` -> `(index, lines)`."""
    (index, chrom), scored, skipped = element
    lines = [f"#skipped\t{skipped}"] if skipped else []
    lines += [
        f"{chrom}\t{start}\t{','.join(repr(float(p)) for p in probs)}" for start, probs in scored
    ]
    return index, lines


def variants_with_beam(
    model_path, paths, alleles, length, batch_size, both_strands, beam_options, target_class=None
):
    """Scores the alleles as a Beam pipeline; returns an iterator of the result dicts, in VCF order."""
    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference

    from attngen_keras.genome.beam_handlers import VariantModelHandler, WriteTaskFile

    if not isinstance(model_path, (str, bytes)) and not hasattr(model_path, "__fspath__"):
        raise ValueError(
            "--runner beam needs a model path (workers load it), not an in-memory model"
        )
    batches = [
        (index, alleles[k : k + batch_size])
        for index, k in enumerate(range(0, len(alleles), batch_size))
    ]
    threads = None  # TensorFlow's default pools, as locally: worker_threads() changed 6 of 392,739 last digits

    def build(pipeline, prefix):
        return (
            pipeline
            | "alleles" >> beam.Create(batches, reshuffle=True)
            | "score"
            >> RunInference(
                VariantModelHandler(str(model_path), paths, both_strands, threads, target_class)
            )
            | "lines"
            >> beam.MapTuple(lambda index, results: (index, [json.dumps(r) for r in results]))
            | "write" >> beam.ParDo(WriteTaskFile(prefix))
        )

    prefix = _run(build, beam_options)
    return (json.loads(line) for line in read_task_files(prefix, len(batches)))
