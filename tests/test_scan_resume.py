"""`attngen scan` checkpoints: an interrupted or killed scan, run again, resumes and writes the same bytes.

The model is `test_genome_scan`'s hand-set motif detector; the scans use a
small batch and save their progress after every batch, so that an
interruption lands in the middle of a record.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from test_genome_scan import L, S, class_names, genome, motif_model, write_genome

from attngen_keras.cli import main
from attngen_keras.files import FileError, process_tag
from attngen_keras.genome.checkpoint import checkpoint_dir
from attngen_keras.genome.scan import scan_genome
from attngen_keras.genome.scoring import Scorer

BATCH = 4


@pytest.fixture(scope="module")
def scorer():
    return Scorer.from_model(motif_model(), class_names(), L)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from attngen_keras.export import export_model

    return export_model(motif_model(), tmp_path_factory.mktemp("model") / "motif", class_names(), L)


def counting(scorer, stop_after=None):
    """`scorer` that counts the windows it scores, raising KeyboardInterrupt (a Ctrl-C) on call
    `stop_after + 1` (the first call is the checkpoint's model probe)."""
    counts = {"calls": 0, "windows": 0}

    class Counting(Scorer):
        def probabilities(self, sequences, both_strands=False):
            counts["calls"] += 1
            if stop_after is not None and counts["calls"] > stop_after:
                raise KeyboardInterrupt
            counts["windows"] += len(sequences)
            return super().probabilities(sequences, both_strands)

    wrapped = Counting(scorer._predict, scorer._importance, scorer.facts,
                       scorer._predict_with_saliency)  # fmt: skip
    return wrapped, counts


def outputs(folder, stem="t"):
    return {
        "--out": folder / f"{stem}.bedGraph",
        "--tsv": folder / f"{stem}.tsv.gz",
        "--bigwig": folder / f"{stem}.bw",
    }


def scan(scorer, fasta, paths, **options):
    return scan_genome(scorer, fasta, paths["--out"], bigwig=paths["--bigwig"], tsv=paths["--tsv"],
                       stride=S, batch_size=BATCH, show_progress=False, chunk_bases=97,
                       checkpoint_seconds=0, **options)  # fmt: skip


def interrupted_scan(scorer, fasta, paths, batches=25, **options):
    """A scan stopped by a Ctrl-C after `batches` batches; returns its saved progress."""
    stopping, _ = counting(scorer, stop_after=1 + batches)
    with pytest.raises(KeyboardInterrupt):
        scan(stopping, fasta, paths, **options)
    assert not any(path.exists() for path in paths.values())
    return json.loads((checkpoint_dir(paths["--out"]) / "progress.json").read_text())


def stopped_scan(tmp_path, scorer, batches=5):
    """`genome()` scanned into `tmp_path` and stopped after `batches` batches: `(fasta, paths,
    checkpoint directory)`."""
    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa", records)
    paths = outputs(tmp_path)
    interrupted_scan(scorer, fasta, paths, batches=batches)
    return fasta, paths, checkpoint_dir(paths["--out"])


def test_an_interrupted_scan_resumes_where_it_stopped_and_writes_the_same_bytes(tmp_path, scorer):
    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa.gz", records, 60, "gzip")
    reference = outputs(tmp_path / "reference")
    (tmp_path / "reference").mkdir()
    expected = scan(scorer, fasta, reference)
    paths = outputs(tmp_path)
    progress = interrupted_scan(scorer, fasta, paths)
    assert progress["lines"] == 25 * BATCH and progress["last"][0] == "chr1"  # inside a record
    checkpoint = checkpoint_dir(paths["--out"])
    # what a kill after the last save leaves: rows past the saved sizes, a part file made since
    with open(checkpoint / "0.1", "a") as part:
        part.write("chr1\t999\t1009\t0.5\n")
    with open(checkpoint / "windows.tsv", "a") as part:
        part.write("chr1\t999\t1059\t0.5\t0.5\n")
    (checkpoint / "1.1").write_text("chr2\t25\t35\t0.1\n")
    resuming, counts = counting(scorer)
    summary = scan(resuming, fasta, paths)
    for option, path in paths.items():
        assert path.read_bytes() == reference[option].read_bytes(), option
    assert counts["windows"] == expected["windows"] - progress["lines"] + 8  # + the probe's 8
    assert summary["resumed_windows"] == progress["lines"]
    assert {k: v for k, v in summary.items() if k not in ("outputs", "resumed_windows")} == {
        k: v for k, v in expected.items() if k not in ("outputs", "resumed_windows")
    }
    assert not checkpoint.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["g.fa.gz", "reference", *(p.name for p in paths.values())]
    )


def test_a_resume_with_other_settings_is_refused_and_force_starts_afresh(
    tmp_path, scorer, exported, capsys
):
    records, _ = genome(3)
    fasta = write_genome(tmp_path / "g.fa", records)
    paths = outputs(tmp_path)
    interrupted_scan(scorer, fasta, paths, batches=10)

    def argv(fasta, stride=S, tsv=True):
        args = ["scan", str(exported), "--fasta", str(fasta), "--stride", str(stride),
                "--batch-size", str(BATCH)]  # fmt: skip
        for option, path in paths.items():
            if tsv or option != "--tsv":
                args += [option, str(path)]
        return args

    checkpoint = checkpoint_dir(paths["--out"])
    assert main(argv(fasta, stride=20, tsv=False)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1] == (
        f"attngen scan: error: {paths['--out']}: an interrupted scan left its checkpoint here "
        f"({checkpoint}), but --stride, --tsv differ; run it again as it was to resume it, or add "
        "--force to discard it and start afresh"
    )
    assert checkpoint.is_dir() and not paths["--out"].exists()
    # the same scan through the exported model, from a copy of the FASTA elsewhere: resumed
    moved = tmp_path / "moved" / "genome.fa"
    moved.parent.mkdir()
    moved.write_bytes(fasta.read_bytes())
    assert main(argv(moved)) == 0
    assert "resuming the interrupted scan of" in capsys.readouterr().err
    assert not checkpoint.exists()
    resumed = {option: path.read_bytes() for option, path in paths.items()}
    for path in paths.values():
        path.unlink()
    assert main(argv(fasta)) == 0
    assert {option: path.read_bytes() for option, path in paths.items()} == resumed
    # another model: refused, then discarded with --force (which also replaces the outputs)
    for path in paths.values():
        path.unlink()
    interrupted_scan(scorer, fasta, paths, batches=10)
    other = motif_model()
    dense = other.layers[-1]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, bias + 1.0])
    other_scorer = Scorer.from_model(other, class_names(), L)
    with pytest.raises(FileError, match="but the model differs"):
        scan(other_scorer, fasta, paths)
    summary = scan(other_scorer, fasta, paths, force=True)
    assert summary["resumed_windows"] == 0 and not checkpoint.exists()


def test_a_checkpoint_that_a_running_scan_holds_is_not_taken(tmp_path, scorer):
    fasta, paths, checkpoint = stopped_scan(tmp_path, scorer)
    running = process_tag().rsplit("-", 1)[0] + f"-{os.getppid()}"  # a live process of this host
    (checkpoint / "owner").write_text(running + "\n")
    with pytest.raises(
        FileError, match=f"another attngen scan \\({running}\\) is writing this output"
    ):
        scan(scorer, fasta, paths)
    # a killed scan's: taken over, and resumed
    (checkpoint / "owner").write_text(process_tag().rsplit("-", 1)[0] + "-999999999\n")
    assert scan(scorer, fasta, paths)["resumed_windows"] == 5 * BATCH


def test_a_scan_that_stops_before_its_first_save_or_on_bad_input_leaves_no_checkpoint(
    tmp_path, scorer
):
    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa", records)
    paths = outputs(tmp_path)
    stopping, _ = counting(scorer, stop_after=1)  # stopped in its first batch
    with pytest.raises(KeyboardInterrupt):
        scan(stopping, fasta, paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa"]
    interrupted_scan(scorer, fasta, paths, batches=5)
    bad = tmp_path / "bad.fa"
    bad.write_text(">a\n" + "ACGT" * 400 + "\n>a\nACGT\n")  # a duplicate record, met mid-scan
    with pytest.raises(ValueError, match="duplicate record name"):
        scan(scorer, bad, paths, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.fa", "g.fa"]


@pytest.mark.slow
def test_a_scan_killed_with_sigkill_resumes(tmp_path, exported):
    """A separate process, killed (SIGKILL) after a few progress saves: the same scan resumes."""
    import numpy as np

    rng = np.random.default_rng(9)
    records = {f"chr{i}": "".join(rng.choice(list("ACGT"), 30_000)) for i in range(1, 4)}
    fasta = write_genome(tmp_path / "g.fa", records)
    reference = outputs(tmp_path / "reference")
    (tmp_path / "reference").mkdir()
    model = Scorer.load(exported)
    scan(model, fasta, reference)
    paths = outputs(tmp_path)
    script = (
        "import sys, time\n"
        "from attngen_keras.genome.scan import scan_genome\n"
        "from attngen_keras.genome.scoring import Scorer\n"
        "class Slow(Scorer):\n"
        "    def probabilities(self, sequences, both_strands=False):\n"
        "        time.sleep(0.01)\n"
        "        return super().probabilities(sequences, both_strands)\n"
        "s = Scorer.load(sys.argv[1])\n"
        "s = Slow(s._predict, s._importance, s.facts, s._predict_with_saliency)\n"
        f"scan_genome(s, sys.argv[2], sys.argv[3], bigwig=sys.argv[4], tsv=sys.argv[5], stride={S},"
        f" batch_size={BATCH}, show_progress=False, chunk_bases=97, checkpoint_seconds=0)\n"
    )
    argv = [sys.executable, "-c", script, str(exported), str(fasta),
            *(str(paths[o]) for o in ("--out", "--bigwig", "--tsv"))]  # fmt: skip
    process = subprocess.Popen(argv)
    progress = checkpoint_dir(paths["--out"]) / "progress.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if progress.exists() and json.loads(progress.read_text())["last"][0] == "chr2":
            break
        time.sleep(0.05)
    assert process.poll() is None, "the scan ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not paths["--out"].exists()
    summary = scan(model, fasta, paths)
    assert summary["resumed_windows"] > 0
    for option, path in paths.items():
        assert path.read_bytes() == reference[option].read_bytes(), option
    assert not checkpoint_dir(paths["--out"]).exists()


def test_temporary_reference_directories_of_killed_processes_are_removed(tmp_path):
    import socket

    from attngen_keras.genome.reference import remove_stale_temp_dirs

    host = socket.gethostname()
    killed = tmp_path / f"attngen-reference-{host}-999999999.k1"  # no such process
    running = tmp_path / f"attngen-reference-{host}-{os.getppid()}.r1"
    elsewhere = tmp_path / "attngen-reference-otherhost-1.e1"  # another host's: kept
    older = tmp_path / "attngen-reference-abc123"  # made before the tag: cannot be judged, kept
    for directory in (killed, running, elsewhere, older):
        directory.mkdir()
        (directory / "genome.fa").write_text(">chr1\nACGT\n")
    remove_stale_temp_dirs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (running, elsewhere, older)
    )


@pytest.mark.slow
def test_sigterm_stops_a_scan_as_ctrl_c_does_and_it_resumes(tmp_path, exported):
    """A job scheduler's SIGTERM: the scan saves its progress (exit 143, one line saying so), the
    same command resumes it, and its temporary files are gone."""
    import numpy as np

    rng = np.random.default_rng(11)
    records = {f"chr{i}": "".join(rng.choice(list("ACGT"), 60_000)) for i in range(1, 4)}
    fasta = write_genome(tmp_path / "g.fa", records)
    paths = outputs(tmp_path)
    args = ["scan", str(exported), "--fasta", str(fasta), "--stride", "1", "--batch-size", "64"]
    for option, path in paths.items():
        args += [option, str(path)]
    command = [sys.executable, "-c", "from attngen_keras.cli import console_main; console_main()"]
    process = subprocess.Popen([*command, *args], stderr=subprocess.PIPE, text=True)
    checkpoint = checkpoint_dir(paths["--out"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        parts = list(checkpoint.glob("0.*")) if checkpoint.is_dir() else []
        if parts and parts[0].stat().st_size > 0:  # (buffered: a few batches in)
            break
        time.sleep(0.05)
    assert process.poll() is None, "the scan ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1] == (
        "attngen scan: terminated (SIGTERM); re-run the same command to resume"
    )
    assert "Traceback" not in err
    saved = json.loads((checkpoint / "progress.json").read_text())
    assert saved["lines"] > 0 and not paths["--out"].exists()
    finished = subprocess.run([*command, *args], stderr=subprocess.PIPE, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert f"after {saved['last'][0]}:{saved['last'][1]:,} ({saved['lines']:,} windows" in (
        finished.stderr
    )
    reference = outputs(tmp_path / "reference")
    (tmp_path / "reference").mkdir()
    scan_genome(str(exported), fasta, reference["--out"], bigwig=reference["--bigwig"],
                tsv=reference["--tsv"], stride=1, batch_size=64, show_progress=False)  # fmt: skip
    for option, path in paths.items():
        assert path.read_bytes() == reference[option].read_bytes(), option
    assert not checkpoint.exists()


def test_a_stopped_scan_releases_its_checkpoint_for_another_host(tmp_path, scorer):
    """A job requeued on another node of a shared file system resumes: the stopped scan leaves no
    owner; a killed one's owner, from another host, is refused with advice that keeps the progress."""
    fasta, paths, checkpoint = stopped_scan(tmp_path, scorer)
    assert not (checkpoint / "owner").exists() and (checkpoint / "progress.json").exists()
    (checkpoint / "owner").write_text("node-b-4242\n")  # killed there: cannot be judged from here
    with pytest.raises(FileError) as error:
        scan(scorer, fasta, paths)
    assert f"remove {checkpoint / 'owner'} (the progress it saved is kept)" in str(error.value)
    (checkpoint / "owner").unlink()
    assert scan(scorer, fasta, paths)["resumed_windows"] == 5 * BATCH


def test_force_discards_a_damaged_checkpoint(tmp_path, scorer):
    fasta, paths, checkpoint = stopped_scan(tmp_path, scorer)
    (checkpoint / "0.1").write_text("")  # shorter than saved
    with pytest.raises(FileError, match="damaged scan checkpoint .0.1 is missing or shorter"):
        scan(scorer, fasta, paths)
    assert scan(scorer, fasta, paths, force=True)["resumed_windows"] == 0
    assert not checkpoint.exists()


def test_a_scan_that_fails_after_its_last_window_keeps_its_checkpoint(
    tmp_path, scorer, monkeypatch
):
    """Every window scored, then the bigWig cannot be written: the run again only writes the files."""
    from attngen_keras.genome import tracks

    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa", records)
    (tmp_path / "reference").mkdir()
    expected = scan(scorer, fasta, outputs(tmp_path / "reference"))
    paths = outputs(tmp_path)

    def fails(bedgraph, out, sizes):
        raise FileError(out, "cannot create the bigWig file")

    monkeypatch.setattr(tracks, "_write_bigwig", fails)
    with pytest.raises(FileError, match="cannot create the bigWig"):
        scan(scorer, fasta, paths)
    monkeypatch.undo()
    assert not any(path.exists() for path in paths.values())
    resuming, counts = counting(scorer)
    assert scan(resuming, fasta, paths)["resumed_windows"] == expected["windows"]
    assert counts["windows"] == 8  # the model probe's only
    for option, path in paths.items():
        assert path.read_bytes() == outputs(tmp_path / "reference")[option].read_bytes(), option


def test_a_checkpoint_without_progress_does_not_hold_back_other_options(tmp_path, scorer):
    """A scan killed before its first save leaves only its identity: nothing to resume, so a scan
    with other options starts afresh."""
    from attngen_keras.genome.checkpoint import Checkpoint

    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa", records)
    paths = outputs(tmp_path)
    Checkpoint(paths["--out"], {"format": 1, "stride": 99}).open()  # what the kill left
    assert checkpoint_dir(paths["--out"]).is_dir()
    assert scan(scorer, fasta, paths)["resumed_windows"] == 0


def test_a_bigwig_without_pybigwig_is_an_error_before_any_window(tmp_path, scorer, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pybigwig(name, *args, **kwargs):
        if name == "pyBigWig":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pybigwig)
    records, _ = genome()
    fasta = write_genome(tmp_path / "g.fa", records)
    counted, counts = counting(scorer)
    with pytest.raises(ValueError, match="--bigwig needs pyBigWig"):
        scan(counted, fasta, outputs(tmp_path))
    assert counts["calls"] <= 1  # the model probe at most: no window scored
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.fa"]


def test_the_file_fingerprint_sees_an_edit_anywhere(tmp_path):
    import numpy as np

    from attngen_keras.genome.checkpoint import file_fingerprint

    rng = np.random.default_rng(0)
    data = bytearray(rng.choice(list(b"ACGT"), 3 << 20).astype(np.uint8).tobytes())
    original = tmp_path / "g.fa"
    original.write_bytes(bytes(data))
    copy = tmp_path / "elsewhere" / "copy.fa"
    copy.parent.mkdir()
    copy.write_bytes(bytes(data))
    assert file_fingerprint(copy) == file_fingerprint(original)
    data[(3 << 20) // 2 : (3 << 20) // 2 + 10] = b"N" * 10  # hard-masked mid-file, same size
    copy.write_bytes(bytes(data))
    assert file_fingerprint(copy) != file_fingerprint(original)
    assert file_fingerprint(copy)["size"] == file_fingerprint(original)["size"]


def test_a_beam_run_does_not_leave_a_local_checkpoint_behind(tmp_path, scorer, exported, capsys):
    """`--runner beam` does not checkpoint: a stopped local scan's checkpoint for the same output is
    refused (its progress would be left unused, and a later local run would resume it over the
    Beam run's outputs), discarded with `--force`; a live local scan's is always refused."""
    pytest.importorskip(
        "apache_beam", reason='the beam extra is not installed: pip install -e ".[beam]"'
    )
    fasta, paths, checkpoint = stopped_scan(tmp_path, scorer)
    argv = ["scan", str(exported), "--fasta", str(fasta), "--out", str(paths["--out"]),
            "--stride", str(S), "--batch-size", str(BATCH), "--runner", "beam",
            "--beam-option=--direct_running_mode=in_memory", "--beam-option=--direct_num_workers=1"]  # fmt: skip
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith(
        f"an interrupted local scan's checkpoint is beside it ({checkpoint.name}), which --runner "
        "beam cannot resume: run with --runner local to resume it, or add --force to discard it"
    )
    assert (checkpoint / "progress.json").exists() and not paths["--out"].exists()
    running = process_tag().rsplit("-", 1)[0] + f"-{os.getppid()}"  # a live process of this host
    (checkpoint / "owner").write_text(running + "\n")
    assert main([*argv, "--force"]) == 2
    assert f"another attngen scan ({running}) is writing this output" in capsys.readouterr().err
    (checkpoint / "owner").unlink()
    assert main([*argv, "--force"]) == 0
    assert not checkpoint.exists() and paths["--out"].exists()
    # nothing to resume (no progress saved): removed without --force; a file there is an error
    empty = checkpoint_dir(tmp_path / "t2.bedGraph")
    empty.mkdir()
    (empty / "identity.json").write_text("{}")
    assert main([*argv, "--out", str(tmp_path / "t2.bedGraph")]) == 0  # (the last --out counts)
    assert not empty.exists() and (tmp_path / "t2.bedGraph").exists()
    checkpoint_dir(tmp_path / "t3.bedGraph").write_text("")
    assert main([*argv, "--out", str(tmp_path / "t3.bedGraph")]) == 2
    assert "is a file, not a scan checkpoint; remove it" in capsys.readouterr().err
