"""`--runner beam`: the same scan and variant scoring as an Apache Beam pipeline (FnApiRunner: 2 worker
threads by default, or 2 worker processes, or in-process), outputs byte-identical to `--runner local`."""

import gzip
import os
from pathlib import Path

import pytest
from test_genome_scan import class_names, genome, motif_model, write_genome
from test_genome_variants import L, reference, write_vcf

from attngen_keras.cli import main

pytest.importorskip(
    "apache_beam",
    reason='the beam extra is not installed: pip install -e ".[beam]" (CI installs it)',
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from attngen_keras.export import export_model

    return export_model(motif_model(), tmp_path_factory.mktemp("model") / "motif", class_names(), L)


IN_PROCESS = [
    "--beam-option=--direct_running_mode=in_memory",
    "--beam-option=--direct_num_workers=1",
]


def check_beam_equals_local(tmp_path, exported, capsys, beam_options):
    records, _ = genome()
    fasta = write_genome(
        tmp_path / "g.fa.gz", records, compression="gzip"
    )  # decompressed for the workers
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t0\t1200\nchr2\t600\t1500\n")
    outputs = {}
    for runner in ("local", "beam"):
        out = tmp_path / runner
        argv = [
            "scan",
            str(exported),
            "--fasta",
            str(fasta),
            "--out",
            str(out / "t.bedGraph"),
            "--stride",
            "7",
        ]
        argv += [
            "--tsv",
            str(out / "w.tsv.gz"),
            "--regions",
            str(bed),
            "--both-strands",
            "--runner",
            runner,
        ]
        argv += ["--batch-size", "50", *(beam_options if runner == "beam" else [])]
        assert main(argv) == 0, capsys.readouterr().err
        with gzip.open(out / "w.tsv.gz", "rt") as handle:
            outputs[runner] = ((out / "t.bedGraph").read_text(), handle.read())
    assert outputs["beam"] == outputs["local"]
    # chr1: windows 0..1134 (163); chr2: 600..1440 (121) less 15 over the N run
    assert len(outputs["local"][0].splitlines()) == 163 + 121 - 15
    assert capsys.readouterr().err.count("15 windows skipped for N's") == 2

    effects, count = variants_local_and_beam(tmp_path, exported, range(31, 780, 3), beam_options,
                                             ["--batch-size", "40"], multi=True)  # fmt: skip
    assert effects["beam"] == effects["local"]
    assert len(effects["local"].splitlines()) == 1 + count + 1


def variants_local_and_beam(tmp_path, exported, positions, beam_options, extra=(), multi=False):
    """`({runner: effects.tsv text}, variant count)`: SNVs at `positions` of chr1 (and, with `multi`,
    a multi-allelic record) scored by `attngen variants` locally and on Beam with `extra` options."""
    genome_ = reference()
    ref = write_genome(tmp_path / "ref.fa", genome_)
    chr1 = genome_["chr1"]
    variants = [
        ("chr1", p, f"v{p}", chr1[p - 1], "A" if chr1[p - 1] != "A" else "C") for p in positions
    ]
    if multi:
        variants.append(("chr1", 404, "multi", chr1[403], "C,T"))
    vcf = write_vcf(tmp_path / "v.vcf", variants, {"chr1": 800, "chr2": 300})
    effects = {}
    for runner in ("local", "beam"):
        out = tmp_path / f"{runner}.tsv"
        argv = [
            "variants",
            str(exported),
            "--vcf",
            str(vcf),
            "--fasta",
            str(ref),
            "--out",
            str(out),
        ]
        argv += ["--runner", runner, *extra, *(beam_options if runner == "beam" else [])]
        assert main(argv) == 0
        effects[runner] = out.read_text()
    return effects, len(variants)


def test_beam_in_process_equals_local(tmp_path, exported, capsys):
    check_beam_equals_local(tmp_path, exported, capsys, IN_PROCESS)


def test_beam_leaves_mostly_n_windows_unscored_as_local(tmp_path, exported, monkeypatch):
    """The workers apply `--max-n-fraction` as the local runner does."""
    import sys

    from attngen_keras.genome.variants import NOTE_N

    genome = reference()
    genome["chr1"] = genome["chr1"][:100] + "N" * 40 + genome["chr1"][140:]  # a gap at 100..139
    monkeypatch.setattr(sys.modules[__name__], "reference", lambda: genome)
    effects, _ = variants_local_and_beam(tmp_path, exported, [77, 78, 121, 404], IN_PROCESS)
    assert effects["beam"] == effects["local"]
    assert effects["local"].count(NOTE_N) == 2  # positions 78 and 121


def test_beam_default_two_worker_threads_equal_local(tmp_path, exported, capsys):
    """The default: FnApiRunner with 2 worker threads sharing the model (and each its own FASTA handle)."""
    from attngen_keras.genome.beam import _options

    parsed, runner = _options([])
    assert runner is not None
    local = parsed.get_all_options()
    assert (local["direct_num_workers"], local["direct_running_mode"]) == (2, "multi_threading")
    check_beam_equals_local(tmp_path, exported, capsys, [])


@pytest.mark.slow
def test_beam_two_worker_processes_equal_local(tmp_path, exported, capsys):
    """FnApiRunner with 2 worker processes (each loads TensorFlow: about a minute here), as a cluster's
    workers would: the elements and the handlers cross process boundaries."""
    check_beam_equals_local(
        tmp_path, exported, capsys, ["--beam-option=--direct_running_mode=multi_processing"]
    )


def test_variant_model_opens_a_reference_per_thread(tmp_path):
    """RunInference shares one loaded model among a process's worker threads; pysam handles are not
    thread-safe, so each thread reads the reference through its own."""
    import threading

    from attngen_keras.genome.beam_handlers import _VariantModel
    from attngen_keras.genome.reference import random_access_path

    paths = random_access_path(write_genome(tmp_path / "ref.fa", reference()))
    model = _VariantModel(scorer=None, paths=paths)
    assert model.sizes == {"chr1": 800, "chr2": 300}
    mine = model.fasta
    assert model.fasta is mine  # one per thread, kept
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(model.fasta))
    thread.start()
    thread.join()
    assert theirs[0] is not mine
    assert theirs[0].fetch("chr1", 0, 50) == mine.fetch("chr1", 0, 50)


def test_missing_beam_is_a_one_line_error(tmp_path, exported, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "apache_beam", None)  # as if not installed
    fasta = write_genome(tmp_path / "g.fa", genome()[0])
    argv = ["scan", str(exported), "--fasta", str(fasta), "--out", str(tmp_path / "t.bedGraph")]
    assert main([*argv, "--runner", "beam"]) == 2
    assert capsys.readouterr().err.strip() == (
        'attngen scan: error: --runner beam needs Apache Beam, which is not installed: pip install -e ".[beam]"'
    )


def test_task_files_are_read_in_task_order_and_deleted(tmp_path):
    """Tasks finish in any order; the launcher reads their files back in task order, one at a time."""
    from attngen_keras.genome.beam import read_task_files, task_file

    prefix = str(tmp_path / "part")
    for index in (2, 0, 1):  # as workers might finish them
        with open(task_file(prefix, index), "w") as handle:
            handle.write(f"task{index}-a\ntask{index}-b\n" if index != 1 else "")
    lines = read_task_files(prefix, 3)
    assert next(lines) == "task0-a"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "part-0000000000",
        "part-0000000001",
        "part-0000000002",
    ]  # nothing read ahead: task 0's file is deleted only once its lines are consumed
    assert list(lines) == ["task0-b", "task2-a", "task2-b"]
    assert list(tmp_path.iterdir()) == []


def test_a_missing_task_file_is_an_error_naming_it(tmp_path):
    from attngen_keras.genome.beam import read_task_files, task_file

    prefix = str(tmp_path / "part")
    (tmp_path / "part-0000000000").write_text("a\n")
    with pytest.raises(RuntimeError, match=r"part-0000000001: .* without task 1's output"):
        list(read_task_files(prefix, 2))
    assert task_file(prefix, 1).endswith("part-0000000001")


def test_beam_variants_with_class_equal_local(tmp_path, exported):
    """`--class` reaches the Beam workers: their rows are the local rows of that class."""
    effects, count = variants_local_and_beam(
        tmp_path, exported, range(101, 700, 37), IN_PROCESS, ["--class", "background"]
    )
    assert effects["beam"] == effects["local"]
    assert [line.split("\t")[6] for line in effects["local"].splitlines()[1:]] == [
        "background"
    ] * count


def test_unknown_or_misplaced_beam_options_are_one_line_errors(tmp_path, exported, capsys):
    """Beam only logs "Discarding unparseable args" and runs on; a mistyped option must stop the run."""
    fasta = write_genome(tmp_path / "g.fa", genome()[0])
    argv = ["scan", str(exported), "--fasta", str(fasta), "--out", str(tmp_path / "t.bedGraph")]
    assert main([*argv, "--runner", "beam", "--beam-option=--no_such_option=1"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "attngen scan: error: --beam-option: Apache Beam knows no option --no_such_option=1 "
        "(the options are those of Beam's PipelineOptions, e.g. --runner=DataflowRunner)"
    )
    assert main([*argv, "--beam-option=--direct_num_workers=4"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "attngen scan: error: --beam-option --direct_num_workers=4 needs --runner beam"
    )
    # a bad value: Beam's parser printed its whole usage text (128 lines) before the error
    for option, error in (
        ("--direct_running_mode=multi_procesing", "--beam-option: argument --direct_running_mode: "
         "invalid choice: 'multi_procesing' (choose from 'in_memory', 'multi_threading', "
         "'multi_processing')"),
        ("--direct_num_workers=abc", "--beam-option: argument --direct_num_workers: invalid int "
         "value: 'abc'"),
        ("direct_num_workers=2", "--beam-option 'direct_num_workers=2': a Beam pipeline option "
         "starts with --, e.g. --beam-option=--direct_num_workers=4"),  # was silently ignored
    ):  # fmt: skip
        assert main([*argv, "--runner", "beam", f"--beam-option={option}"]) == 2
        assert capsys.readouterr().err.strip() == f"attngen scan: error: {error}"
    from attngen_keras.genome.beam import check_beam_options

    check_beam_options(["--project", "my-project", "--direct_num_workers=2"])  # a value as the next
    with pytest.raises(
        ValueError, match="--beam-option --help: Beam's pipeline options are listed"
    ):
        check_beam_options(["--help"])
    assert not (tmp_path / "t.bedGraph").exists()


def test_beam_leaves_no_temporary_files_and_keeps_its_chatter_in_a_log(
    tmp_path, exported, capfd, monkeypatch
):
    """The task files' directory is removed after the run; Beam's and the workers' INFO lines do not
    reach stderr (they go to a log file, removed when the run succeeds)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    fasta = write_genome(tmp_path / "g.fa", genome()[0])
    out = tmp_path / "t.bedGraph"
    argv = [
        "scan",
        str(exported),
        "--fasta",
        str(fasta),
        "--out",
        str(out),
        "--runner",
        "beam",
        *IN_PROCESS,
    ]
    assert main(argv) == 0
    err = capfd.readouterr().err
    assert "INFO:" not in err and "apache_beam" not in err, err
    assert out.stat().st_size > 0
    assert list((tmp_path / "tmp").iterdir()) == []


def test_beam_log_catches_stderr_and_restores_it(tmp_path, capfd, monkeypatch):
    """What the pipeline's processes write to fd 2 goes to the log; fd 2 is restored; a failure
    names the log and shows its last lines, and keeps it."""
    import os

    from attngen_keras.genome import beam

    monkeypatch.delenv("ATTNGEN_DEBUG", raising=False)
    before = os.fstat(2)
    with beam._beam_log() as path:
        os.write(2, b"INFO: worker chatter\n")
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
    assert Path(path).read_text() == "INFO: worker chatter\n"
    assert "worker chatter" not in capfd.readouterr().err
    os.unlink(path)
    with pytest.raises(RuntimeError, match="worker died"), beam._beam_log() as path:
        os.write(2, b"".join(b"line %d\n" % i for i in range(40)))
        raise RuntimeError("worker died")
    err = capfd.readouterr().err
    assert f"attngen: Apache Beam's log: {path}; its last lines:" in err
    assert "line 39" in err and "line 24" not in err  # the last 15
    assert os.path.exists(path)
    os.unlink(path)


def test_a_failed_beam_run_removes_its_task_directory(tmp_path, monkeypatch):
    import tempfile

    from attngen_keras.genome import beam

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def build(pipeline, prefix):
        (tmp_path / "prefix").write_text(prefix)
        raise ValueError("bad pipeline")

    with pytest.raises(ValueError, match="bad pipeline"):
        beam._run(build, IN_PROCESS)
    assert (tmp_path / "prefix").exists()
    left = sorted(p.name for p in tmp_path.iterdir())
    # no task or base directory; the log of the failed run is kept (and was named on stderr)
    assert len(left) == 2 and left[1] == "prefix"
    assert left[0].startswith("attngen-beam-") and left[0].endswith(".log")


def test_options_of_the_named_runner_are_known():
    """Options classes that exist only once their runner is imported (Render's, Dask's) are accepted."""
    from attngen_keras.genome.beam import check_beam_options

    for options in (["--runner=RenderRunner", "--render_output=p.svg"],
                    ["--runner=DataflowRunner", "--project=p", "--region=europe-west1"],
                    ["--runner=FlinkRunner", "--flink_master=localhost:8081"]):  # fmt: skip
        check_beam_options(options)
    with pytest.raises(ValueError, match="knows no option --projct=p"):
        check_beam_options(["--runner=DataflowRunner", "--projct=p"])


def test_a_failing_pipeline_or_bad_temp_location_is_one_line(
    tmp_path, exported, capsys, monkeypatch
):
    """A worker's error reached the user as Beam's 190-line traceback (exit 1), and an unwritable
    --temp_location only once the workers failed to write there."""
    from attngen_keras.genome import beam_handlers

    fasta = write_genome(tmp_path / "g.fa", genome()[0])
    argv = ["scan", str(exported), "--fasta", str(fasta), "--out", str(tmp_path / "t.bedGraph"),
            "--runner", "beam", *IN_PROCESS]  # fmt: skip
    assert main([*argv, f"--beam-option=--temp_location={tmp_path / 'absent'}"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"attngen scan: error: --beam-option --temp_location={tmp_path / 'absent'}: not a "
        "directory this process can write to"
    )

    for error in (RuntimeError("the worker's disk is full"),
                  ValueError("Input 0 of layer is incompatible:\nexpected shape=(None, 60)")):  # fmt: skip

        def failing(self, batch, model, inference_args=None, error=error):
            raise error

        monkeypatch.setattr(beam_handlers.WindowModelHandler, "run_inference", failing)
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("attngen: Apache Beam's log: ")
        assert lines[1].startswith("attngen scan: error: the Apache Beam pipeline failed: ")
        assert " ".join(str(error).splitlines()) in lines[1]  # every line of the message
        assert not (tmp_path / "t.bedGraph").exists()
        os.unlink(lines[0].split(": ", 2)[2])  # the log, kept for the user


def test_pipeline_errors_keep_their_cause():
    """Beam wraps a worker's traceback in its message; gRPC errors end in '>' without details()."""
    from attngen_keras.genome.beam import _pipeline_error

    wrapped = RuntimeError(
        'Traceback (most recent call last):\n  File "x.py", line 1, in f\n'
        "ValueError: Input 0 of layer is incompatible:\nexpected shape=(None, 60) "
        "[while running 'score']"
    )
    assert str(_pipeline_error(wrapped)) == (
        "the Apache Beam pipeline failed: ValueError: Input 0 of layer is incompatible: "
        "expected shape=(None, 60) [while running 'score']"
    )

    class Rpc(Exception):
        def details(self):
            return "failed to connect to all addresses"

    assert str(_pipeline_error(Rpc("<_InactiveRpcError of RPC that terminated with:\n>"))) == (
        "the Apache Beam pipeline failed: failed to connect to all addresses"
    )
    assert str(_pipeline_error(TimeoutError())) == "the Apache Beam pipeline failed: TimeoutError"


def test_an_empty_record_is_seen_alike_by_both_runners(tmp_path, exported, capsys):
    """faidx leaves an empty record out of its index: Beam's scan missed it (2 records instead of 3,
    no warning, a bigWig without its chromosome), where the local runner counts it."""
    records, _ = genome()
    fasta = tmp_path / "g.fa"
    first, *others = records.items()
    fasta.write_text(
        f">{first[0]}\n{first[1]}\n>empty\n" + "".join(f">{n}\n{s}\n" for n, s in others)
    )
    seen = {}
    for runner in ("local", "beam"):
        out = tmp_path / runner
        argv = ["scan", str(exported), "--fasta", str(fasta), "--out", str(out / "t.bedGraph"),
                "--bigwig", str(out / "t.bw"), "--stride", "7", "--runner", runner,
                *(IN_PROCESS if runner == "beam" else [])]  # fmt: skip
        assert main(argv) == 0
        captured = capsys.readouterr()
        seen[runner] = (
            (out / "t.bedGraph").read_bytes(), (out / "t.bw").read_bytes(),
            captured.out.replace(str(out), "OUT"),
            [line for line in captured.err.splitlines() if line.startswith("attngen scan:")],
        )  # fmt: skip
    assert seen["beam"] == seen["local"]
    assert f"a FASTA of {len(records) + 1} records" in seen["local"][2]


def test_a_task_file_is_not_written_once_its_run_is_given_up(tmp_path):
    """After a Ctrl-C the launcher removes the run's directory while worker threads may still finish
    a task: writing its file made the directory anew, left behind until the next launch."""
    from attngen_keras.genome.beam import task_file
    from attngen_keras.genome.beam_handlers import WriteTaskFile

    run = tmp_path / "attngen-run"
    run.mkdir()
    writer = WriteTaskFile(str(run / "part"))
    writer.process((3, ["a", "b"]))
    assert Path(task_file(str(run / "part"), 3)).read_text() == "a\nb\n"
    for path in run.iterdir():
        path.unlink()
    run.rmdir()
    writer.process((4, ["c"]))
    assert not run.exists()


@pytest.mark.parametrize("state", ["CANCELLED", "FAILED"])
def test_a_run_that_ends_without_error_but_not_done_is_an_error(tmp_path, monkeypatch, state):
    """A runner may end a cancelled run (Ctrl-C in its worker processes) without raising: its
    task files are then incomplete, so the run fails, keeps its log, and leaves no task files."""
    import tempfile

    import apache_beam

    from attngen_keras.genome import beam

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    class Ended:
        def __init__(self, runner=None, options=None):
            pass

        def run(self):
            return self

        def wait_until_finish(self):
            return getattr(apache_beam.runners.runner.PipelineState, state)

    monkeypatch.setattr(apache_beam, "Pipeline", Ended)
    with pytest.raises(
        beam.PipelineError, match=f"ended {state}, not DONE: its results are incomplete"
    ):
        beam._run(lambda pipeline, prefix: None, IN_PROCESS)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith("attngen-beam-") and left[0].endswith(".log")
