"""`--runner beam`: the scan and the variant scoring as Apache Beam pipelines (RunInference).

Locally the pipeline runs on Beam's `FnApiRunner` (DirectRunner would first
try to download the Prism runner binary, which fails offline) with
`--direct_num_workers=2 --direct_running_mode=multi_threading` unless other
options are given: two worker threads in this process, which share its
TensorFlow (whose own thread pools use the cores) and one loaded model, where
worker processes would each start Python, import TensorFlow and load the
model (about 5 s a run on 2 cores, and a TensorFlow's memory each); any
runner is chosen with
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

import collections
import contextlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import uuid

from attngen_keras.genome.reference import random_access_path
from attngen_keras.genome.windows import (
    fasta_records,
    missing_chromosomes,
    regions_past_the_end,
    window_starts,
)

INSTALL_HINT = 'pip install -e ".[beam]"'


def require_beam():
    """Raises a one-line error naming the extra when Apache Beam is not installed."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(
        logging.ERROR
    )  # its import warns that the optional Google Cloud clients are missing
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        raise ValueError(
            f"--runner beam needs Apache Beam, which is not installed: {INSTALL_HINT}"
        ) from None
    finally:
        root.setLevel(level)


def _options(beam_options):
    """`(PipelineOptions, runner)`: FnApiRunner with 2 worker threads unless a runner is named."""
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
            options.append("--direct_running_mode=multi_threading")
    if not any(o.startswith("--default_sdk_harness_log_level") for o in options):
        options.append(
            "--default_sdk_harness_log_level=WARNING"
        )  # workers' INFO lines are noise here
    parsed = PipelineOptions(options)
    return parsed, runner


def check_beam_options(beam_options):
    """Raises a one-line `ValueError` for `--beam-option`s that no Beam options class knows (Beam
    itself only logs "Discarding unparseable args" and runs on, e.g. on a paid Dataflow launch)."""
    from apache_beam.options import pipeline_options

    flags = list(beam_options or ())
    for k, flag in enumerate(flags):
        # a value may follow its option as the next item: --beam-option=--project --beam-option=p
        follows_option = k > 0 and flags[k - 1].startswith("--") and "=" not in flags[k - 1]
        if not flag.startswith("--") and not follows_option:
            raise ValueError(
                f"--beam-option {flag!r}: a Beam pipeline option starts with --, e.g. "
                "--beam-option=--direct_num_workers=4"
            )
        if flag in ("--help", "-h"):
            raise ValueError(
                "--beam-option --help: Beam's pipeline options are listed at "
                "https://beam.apache.org/releases/pydoc/current/"
                "apache_beam.options.pipeline_options.html"
            )
    runners = [o.split("=", 1)[1] for o in flags if o.startswith("--runner=")]
    if runners:
        # some runners' options classes (Dask's, say) exist only once the runner is imported
        from apache_beam.runners import create_runner

        try:
            create_runner(runners[-1])
        except Exception:  # noqa: BLE001 (its extra is not installed, say): Beam reports that
            return
    messages = io.StringIO()
    try:  # Beam's own parser of every options class (private API: skipped if it changes)
        parser = pipeline_options._BeamArgumentParser(allow_abbrev=False)
        for cls in {str(c): c for c in pipeline_options.PipelineOptions.__subclasses__()}.values():
            cls._add_argparse_args(parser)
        with contextlib.redirect_stderr(messages):  # a bad value: its usage text, then an exit
            _, unknown = parser.parse_known_args(flags)
    except SystemExit:
        lines = messages.getvalue().strip().splitlines()
        problem = lines[-1].split("error: ", 1)[-1] if lines else "not a valid value"
        raise ValueError(f"--beam-option: {problem}") from None
    except Exception:  # noqa: BLE001
        return
    unknown = [u for u in unknown if u.startswith("-")]
    if unknown:
        raise ValueError(
            f"--beam-option: Apache Beam knows no option {', '.join(unknown)} "
            "(the options are those of Beam's PipelineOptions, e.g. --runner=DataflowRunner)"
        )


# The launcher's temporary directories (when no --temp_location is given) are named after it,
# so that the next launch removes those of killed launchers.
_TEMP_PREFIX = "attngen-beam-"


def _temp_prefix(parsed):
    """`(prefix of the task files, [directories to remove when done])`."""
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    from attngen_keras.files import process_tag, remove_stale

    base = parsed.view_as(GoogleCloudOptions).temp_location
    created = []
    if base and "://" not in base and not (os.path.isdir(base) and os.access(base, os.W_OK)):
        # a local path (a shared file system): checked here, not once a worker fails to write
        raise ValueError(
            f"--beam-option --temp_location={base}: not a directory this process can write to"
        )
    if not base:
        remove_stale(tempfile.gettempdir(), _TEMP_PREFIX)
        base = os.path.join(tempfile.gettempdir(), _TEMP_PREFIX + process_tag())
        os.makedirs(base, exist_ok=True)
        created.append(base)
    run_dir = FileSystems.join(base, f"attngen-{uuid.uuid4().hex}")
    if "://" not in run_dir:
        # made now: a worker thread still running after an interrupt finds it removed and
        # writes nothing (`WriteTaskFile`), where creating the file would make it anew
        os.makedirs(run_dir)
    return FileSystems.join(run_dir, "part"), [run_dir, *created]


def remove_task_dirs(paths):
    """Removes the run's task-file directory (local or remote: on object stores such as `gs://`
    everything under it) and then, if empty, this launcher's local base directory; errors are
    ignored (the base directory may hold another launch of the same process)."""
    from apache_beam.io.filesystems import FileSystems

    run_dir, *local_bases = paths
    with contextlib.suppress(Exception):
        if os.path.isdir(run_dir):
            shutil.rmtree(run_dir)
        elif "://" in run_dir:
            # object stores delete recursively only a path that ends with "/"
            FileSystems.delete([run_dir.rstrip("/") + "/"])
    for base in local_bases:
        with contextlib.suppress(OSError):
            os.rmdir(base)


def task_file(prefix, index):
    """The file a task's output lines go to (zero-padded: they list in task order)."""
    return f"{prefix}-{index:010d}"


def read_task_files(prefix, count):
    """Yields the output lines of tasks `0 .. count-1`, in that order, deleting each file once read.

    Raises `PipelineError` naming the first missing file (a task whose output never arrived).
    """
    from apache_beam.io.filesystems import FileSystems

    for index in range(count):
        path = task_file(prefix, index)
        if not FileSystems.exists(path):
            raise PipelineError(
                f"{path}: the Beam pipeline finished without task {index}'s output (can the "
                "workers write to --temp_location, and this machine read it?)"
            )
        with FileSystems.open(path) as handle:
            lines = handle.read().decode().splitlines()
        yield from lines
        FileSystems.delete([path])


class PipelineError(RuntimeError):
    """The Beam pipeline failed (a worker's error, or a runner that cannot be reached): one line."""


_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Timeout)\b")


def _pipeline_error(error):
    """A one-line `PipelineError` of `error`: Beam wraps a worker's traceback in its message, so
    the text from its last `SomeError...` line on (else all of it), joined; a gRPC error's
    `details()`; the type's name when there is no text."""
    text = str(error)
    details = getattr(error, "details", None)
    if callable(details):
        with contextlib.suppress(Exception):
            text = details() or text
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if _ERROR_LINE.match(line)]
    problem = " ".join(lines[starts[-1] :] if starts else lines)
    if len(problem.strip("<>{}[]() ")) < 3:
        problem = type(error).__name__ + (f": {problem}" if problem else "")
    if len(problem) > 400:
        problem = problem[:397] + "..."
    return PipelineError(f"the Apache Beam pipeline failed: {problem}")


def _check_finished(state):
    """Raises `PipelineError` unless `state` (what `wait_until_finish` returned) is DONE: a
    runner may end a cancelled or failed run (Ctrl-C in its workers, say) without raising,
    and its task files are then incomplete. `None` (a runner that does not say) passes."""
    if state is None:
        return
    name = str(getattr(state, "name", state)).rsplit(".", 1)[-1].upper()
    if name != "DONE":
        raise PipelineError(
            f"the Apache Beam pipeline ended {name}, not DONE: its results are incomplete "
            "and were not written"
        )


def _run(build, beam_options):
    """Runs the pipeline `build(pipeline, prefix)` makes; returns `(prefix of its task files,
    directories to remove once they are read)` (removed here if the run fails)."""
    import logging

    import apache_beam as beam

    logging.getLogger("apache_beam").setLevel(logging.WARNING)

    parsed, runner = _options(beam_options)
    prefix, directories = _temp_prefix(parsed)
    # the local runner's chatter goes to a log file; a remote runner's (its job's id and
    # address, say) stays on stderr
    log_locally = runner is not None
    try:
        with _beam_log() if log_locally else contextlib.nullcontext() as log:
            pipeline = beam.Pipeline(runner=runner, options=parsed)
            try:
                build(pipeline, prefix)
                try:
                    state = pipeline.run().wait_until_finish()
                except Exception as error:  # noqa: BLE001 (whatever a worker or runner raises)
                    raise _pipeline_error(error) from error
                _check_finished(state)
            finally:  # Beam removes its own temporary directory only after a run
                shutil.rmtree(getattr(pipeline, "local_tempdir", ""), ignore_errors=True)
        if log is not None:
            with contextlib.suppress(OSError):
                os.unlink(log)
    except BaseException:
        remove_task_dirs(directories)
        raise
    return prefix, directories


@contextlib.contextmanager
def _beam_log():
    """Sends what Beam, its workers and TensorFlow in them write to stderr (dozens of INFO
    lines, and tracebacks of the workers on Ctrl-C) to a log file; yields its path. If the run fails
    or is interrupted, the file is kept and its path and last lines are shown. With ATTNGEN_DEBUG
    set, nothing is redirected (yields None)."""
    if os.environ.get("ATTNGEN_DEBUG"):
        yield None
        return
    handle, path = tempfile.mkstemp(prefix="attngen-beam-", suffix=".log")
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a daemon): nothing to redirect
        os.close(handle)
        os.unlink(path)
        yield None
        return
    os.dup2(handle, 2)  # worker threads write to it, and worker processes started now inherit it
    os.close(handle)
    try:
        yield path
    except BaseException as error:
        _restore_stderr(saved)
        saved = None
        if not isinstance(error, (KeyboardInterrupt, PipelineError)):
            print(f"attngen: Apache Beam's log: {path}; its last lines:", file=sys.stderr)
            with open(path, errors="replace") as log:
                print("".join(collections.deque(log, 15)).rstrip(), file=sys.stderr)
        else:  # (a PipelineError's own line names the cause)
            print(f"attngen: Apache Beam's log: {path}", file=sys.stderr)
            if QUIET_INTERRUPTS and isinstance(error, KeyboardInterrupt):
                _quiet_shutdown()
        raise
    finally:
        if saved is not None:
            _restore_stderr(saved)


# Set by the `attngen` command, which exits after an interrupt: the runner's threads winding down
# are then not reported. A library user's process goes on, so it keeps its thread hooks.
QUIET_INTERRUPTS = False


def _quiet_shutdown():
    """After Ctrl-C in the `attngen` command: the runner's threads in this process report their
    stopped workers as they wind down (tracebacks, CRITICAL lines); the process is exiting, so
    they are not shown."""
    import logging
    import threading

    logging.getLogger("apache_beam").setLevel(logging.CRITICAL + 1)
    threading.excepthook = lambda args: None


def _restore_stderr(saved):
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


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
    # every record, empty ones too (a faidx index leaves them out), as the local runner sees them;
    # the FASTA's errors come first, before any note about indexing it
    sizes, unusual, invalid = fasta_records(tiler.path)
    paths = random_access_path(tiler.path)
    length, stride = tiler.length, tiler.stride
    tasks = list(scan_tasks(sizes, tiler.regions, length, stride, batch_size))
    short = _short(sizes, tiler.regions, length)

    def build(pipeline, prefix):
        return (
            pipeline
            | "tasks" >> beam.Create(tasks, reshuffle=True)
            | "windows" >> beam.ParDo(WindowTasks(paths, length, stride, tiler.max_n))
            | "score" >> RunInference(WindowModelHandler(model_path, both_strands))
            | "lines" >> beam.Map(_scan_lines)
            | "write" >> beam.ParDo(WriteTaskFile(prefix))
        )

    prefix, directories = _run(build, beam_options)
    skipped = windows = 0
    batch = []
    try:
        for line in read_task_files(prefix, len(tasks)):
            fields = line.split("\t")
            if fields[0] == "#skipped":
                skipped += int(fields[1])
                continue
            batch.append((fields[0], int(fields[1]), [float(v) for v in fields[2].split(",")]))
            if len(batch) >= batch_size:
                windows += _add(writer, batch)
        windows += _add(writer, batch)
    finally:
        remove_task_dirs(directories)
    outputs = writer.finish(sizes)
    return {
        "records": len(sizes), "bases": sum(sizes.values()), "windows": windows,
        "skipped_n": skipped, "short": short, "beyond_end": _beyond(sizes, tiler.regions),
        "past_the_end": regions_past_the_end(tiler.regions, sizes, length),
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
        if regions is None:
            count += size < length  # an empty record too, as `Tiler` counts it
            continue
        for start, end in regions.get(chrom, []):
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
    model_path,
    paths,
    alleles,
    length,
    batch_size,
    both_strands,
    beam_options,
    target_class=None,
    max_n=None,
):
    """Scores the alleles as a Beam pipeline; returns `(iterator of the result dicts in VCF order,
    cleanup)`: call `cleanup()` when done with the iterator, however that ends."""
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

    def build(pipeline, prefix):
        return (
            pipeline
            | "alleles" >> beam.Create(batches, reshuffle=True)
            | "score"
            >> RunInference(
                VariantModelHandler(str(model_path), paths, both_strands, target_class, max_n)
            )
            | "lines"
            >> beam.MapTuple(lambda index, results: (index, [json.dumps(r) for r in results]))
            | "write" >> beam.ParDo(WriteTaskFile(prefix))
        )

    prefix, directories = _run(build, beam_options)
    results = (json.loads(line) for line in read_task_files(prefix, len(batches)))
    return results, lambda: remove_task_dirs(directories)
