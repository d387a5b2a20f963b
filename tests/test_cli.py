"""The `attngen` command line, run as a user would.

Start-up, kill and resume, and one train/evaluate round trip run in
subprocesses; the other commands run the console script's `main` in this
process (`helpers.run_cli`), which spares each TensorFlow's start-up.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings

import pandas as pd
import pytest
from helpers import run_cli, start_in_background

from attngen_keras.synthetic import planted_motif_data


def attngen(*args, timeout=600, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "attngen_keras.cli", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, **kwargs,
    )  # fmt: skip


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "motifs.csv"
    planted_motif_data(n=600, length=60, motifs=("TGACTCA",), seed=2).to_frame().to_csv(
        path, index=False
    )
    return path


def test_help_lists_commands():
    result = attngen("--help")
    assert result.returncode == 0
    for command in ("train", "evaluate", "explain", "perturb", "sweep", "demo"):
        assert command in result.stdout


def _own_cache(root):
    """The environment with a cache of its own (a background job outlives each test's)."""
    return {**os.environ, "ATTNGEN_CACHE": str(root / "attngen_cache")}


def _train_then_evaluate(data_csv, root):
    run, env = root / "run", _own_cache(root)
    trained = attngen(
        "train", "--data", data_csv, "--model", "gb-cnn", "--epochs", "2", "--out", run, env=env
    )
    if trained.returncode != 0:
        return run, trained, None
    evaluated = attngen(
        "evaluate", run, "--data", data_csv, "--split", "test", "--out", root / "e.json", env=env
    )
    return run, trained, evaluated


@pytest.fixture(scope="module", autouse=True)
def train_then_evaluate(request, data_csv, tmp_path_factory):
    """The train/evaluate subprocesses, started before this module's first test (see helpers)."""
    root = tmp_path_factory.mktemp("train_then_evaluate")
    return start_in_background(
        request, "test_train_then_evaluate", _train_then_evaluate, data_csv, root
    )


@pytest.mark.parametrize(
    "content, expected",
    [
        ("seq,label\nACGT,a\nACXT,b\n", "invalid character 'X' at position 3"),
        ("", "empty file"),
        ("seq,y\nACGT,a\n", "missing column(s)"),
    ],
)
def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path, capsys, content, expected):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = run_cli(capsys, "train", "--data", path, "--epochs", "1", "--out", tmp_path / "run")
    assert result.returncode == 2
    assert expected in result.stderr and "bad.csv" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "option,value,expected",
    [
        ("--epochs", "0", "--epochs must be >= 1"),
        ("--dropout", "1.5", "--dropout must be in [0, 1), got 1.5"),
        ("--dropout", "nan", "--dropout must be in [0, 1), got nan"),
        ("--filters", "0", "--filters must be >= 1, got 0"),
        ("--kernel-size", "0", "--kernel-size must be >= 1, got 0"),
        ("--conv-blocks", "-1", "--conv-blocks must be >= 0, got -1"),
        ("--attention-entropy-weight", "nan", "must be a finite number >= 0, got nan"),
        ("--attention-window-weight", "x", "not a number: 'x'"),
    ],
)
def test_invalid_arguments_are_clear_errors(data_csv, tmp_path, capsys, option, value, expected):
    result = run_cli(capsys, "train", "--data", data_csv, option, value, "--out", tmp_path / "r")
    assert result.returncode == 2 and expected in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "r").exists()


def result_line(result):
    """The one error line of a failed command."""
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


def test_unknown_dataset_and_missing_run(tmp_path, capsys):
    result = run_cli(capsys, "train", "--data", "human_or_dolphin", "--out", tmp_path / "r")
    assert result.returncode == 2 and "not a Genomic Benchmarks dataset name" in result.stderr
    result = run_cli(capsys, "evaluate", tmp_path / "nothing")
    assert result.returncode == 2 and "not a finished attngen run" in result.stderr
    unfinished = tmp_path / "unfinished"  # training killed before the model was written
    unfinished.mkdir()
    (unfinished / "dataset.json").write_text("{}")
    result = run_cli(capsys, "evaluate", unfinished)
    assert (
        result.returncode == 2 and "not a finished attngen run (no model.keras);" in result.stderr
    )
    # what to do instead depends on what the directory holds
    (unfinished / "config.json").write_text('{"model_type": "bert"}')  # another tool's
    assert result_line(run_cli(capsys, "evaluate", unfinished)).endswith(
        "train one there first with `attngen train --out` this directory"
    )
    (unfinished / "config.json").write_text('{"data": ["d.csv"], "model": "cnn", "epochs": 3}')
    assert result_line(run_cli(capsys, "evaluate", unfinished)).endswith(
        "resume its training with the `attngen train` command that started it"
    )
    # a finished run less its dataset.json (which `train` would not write again)
    (unfinished / "dataset.json").unlink()
    (unfinished / "model.keras").write_bytes(b"")
    (unfinished / "metrics.json").write_text("{}")
    assert result_line(run_cli(capsys, "evaluate", unfinished)).endswith(
        "not a finished attngen run (no dataset.json); its training finished, but a file of it "
        "was removed: restore it, or train the run again with `attngen train ... --overwrite`"
    )
    for name in ("model.keras", "metrics.json"):
        (unfinished / name).unlink()
    (unfinished / "dataset.json").write_text("{}")
    (tmp_path / "export" / "1").mkdir(parents=True)
    (tmp_path / "export" / "1" / "saved_model.pb").write_bytes(b"")
    assert "it is an exported SavedModel: `attngen predict` serves it" in result_line(
        run_cli(capsys, "evaluate", tmp_path / "export")
    )
    sweep_run = tmp_path / "sweep" / "runs" / "mask0.10_seed0"
    sweep_run.mkdir(parents=True)
    (sweep_run / "model.keras").write_bytes(b"")
    (tmp_path / "sweep" / "runs" / "mask0.20_seed0").mkdir()  # begun, no model yet
    assert result_line(run_cli(capsys, "evaluate", tmp_path / "sweep")).endswith(
        "it holds runs (runs/mask0.10_seed0): give one of them"
    )


def _kill_then_rerun(data_csv, run):
    args = [sys.executable, "-m", "attngen_keras.cli", "train", "--data", str(data_csv),
            "--epochs", "6", "--patience", "0", "--batch-size", "32", "--out", str(run)]  # fmt: skip
    env = _own_cache(run.parent)
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    history = run / "history.csv"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            if history.exists() and len(history.read_text().splitlines()) >= 4:  # 3 epochs done
                break
            if process.poll() is not None:
                pytest.fail("training finished before it could be killed")
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    done_before = len(pd.read_csv(history))
    finished_before = (run / "metrics.json").exists()
    resumed = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    return done_before, finished_before, resumed, history


@pytest.fixture(scope="module", autouse=True)
def kill_then_rerun(request, data_csv, tmp_path_factory):
    """The kill/rerun subprocesses, started before this module's first test (see helpers)."""
    run = tmp_path_factory.mktemp("killed") / "run"
    return start_in_background(
        request, "test_killed_training_resumes_when_rerun", _kill_then_rerun, data_csv, run
    )


@pytest.fixture(scope="module")
def attngen_run(data_csv, tmp_path_factory):
    from attngen_keras.cli import main

    run = tmp_path_factory.mktemp("explain") / "run"
    args = ["train", "--data", data_csv, "--model", "attngen", "--epochs", "3", "--out", run]
    assert main([str(a) for a in args]) == 0
    return run


@pytest.mark.parametrize("method", ["attention", "saliency"])
def test_explain_writes_arrays_summary_and_plots(attngen_run, tmp_path, capsys, method):
    import numpy as np

    out = tmp_path / "explain"
    result = run_cli(capsys, "explain", attngen_run, "--method", method, "--n", "50", "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    with np.load(out / "importance.npz") as arrays:
        assert arrays["scores"].shape == (50, 60) and arrays["labels"].shape == (50,)
        assert arrays["probs"].shape == (50, 1) and arrays["sequences"].shape == (50,)
        assert len(arrays["sequences"][0]) == 60 and arrays["ids"].shape == (50,)
        assert np.all(arrays["scores"] >= 0) and np.any(arrays["scores"] > 0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == method and summary["n"] == 50
    assert 0 <= summary["concentration"]["gini"] <= 1
    assert set(summary["per_class"]) == {"neg", "pos"}
    for name in ("saliency_tracks.png", "mean_profile.png", "enriched_kmers.png"):
        assert (out / name).stat().st_size > 5_000, name


def test_explain_and_perturb_take_sequences_without_labels(
    attngen_run, tmp_path, capsys, monkeypatch
):
    import keras
    import numpy as np

    from attngen_keras.data import EncodedSplit
    from attngen_keras.explain.report import select_subset

    data = planted_motif_data(n=40, length=60, motifs=("TGACTCA",), seed=8)
    fasta = tmp_path / "new.fa"  # one FASTA file, no classes: what a user wants explained
    fasta.write_text("".join(f">q{i}\n{s.lower()}\n" for i, s in enumerate(data.sequences)))
    model = keras.saving.load_model(attngen_run / "model.keras")
    subset = select_subset(40, 30, 0)
    chosen = [data.sequences[i] for i in subset]
    encoded = EncodedSplit.from_sequences(chosen, np.zeros(30, int), 60).one_hot()
    expected = (np.asarray(model.predict(encoded, verbose=0))[:, 0] >= 0.5).astype(int)
    assert 0 < expected.sum() < 30  # both classes predicted: the labels are not a constant

    out = tmp_path / "explain"
    result = run_cli(
        capsys, "explain", attngen_run, "--sequences", fasta, "--n", "30", "--out", out
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        f"{fasta}: labels (if any) not read; each sequence is explained for the class the model "
        "predicts" in result.stdout
    )
    with np.load(out / "importance.npz") as arrays:
        assert arrays["ids"].tolist() == [f"q{i}" for i in subset]  # explain's subset of the file
        assert arrays["labels"].tolist() == expected.tolist()  # the model's own predictions
        assert arrays["scores"].shape == (30, 60)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labels"] == "predicted" and summary["request"]["sequences"] == str(fasta)
    # another request is refused before the sequences are run through the model
    from attngen_keras import training

    def no_prediction(*args, **kwargs):
        raise AssertionError("predicted before the refusal")

    monkeypatch.setattr(training, "label_with_predictions", no_prediction)
    refused = run_cli(
        capsys, "explain", attngen_run, "--sequences", fasta, "--n", "20", "--out", out
    )
    assert refused.returncode == 2 and "use --force to replace them" in refused.stderr
    monkeypatch.undo()

    perturbed = tmp_path / "perturb"
    result = run_cli(
        capsys, "perturb", attngen_run, "--sequences", fasta, "--n", "30", "--out", perturbed
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads((perturbed / "perturb.json").read_text())
    assert written["labels"] == "predicted" and written["split"] == "unlabeled"
    assert written["n"] == 30
    # nothing removed: every prediction is the intact one's
    assert all(curve[0] == 1.0 for curve in written["accuracy"].values())
    assert "share of sequences whose prediction is the model's prediction" in result.stdout
    # --sequences replaces --data and --split
    refused = run_cli(capsys, "perturb", attngen_run, "--sequences", fasta, "--split", "test",
                      "--out", tmp_path / "p2")  # fmt: skip
    assert refused.returncode == 2
    assert "--sequences takes the place of --data: drop --split" in refused.stderr
    # a sequence longer than the run's 60 nt is cut to its first 60, as predict cuts it, and said
    longer = tmp_path / "longer.fa"
    longer.write_text(f">long\n{data.sequences[0]}ACGTACGT\n>short\n{data.sequences[1][:50]}\n")
    result = run_cli(capsys, "explain", attngen_run, "--sequences", longer, "--out", tmp_path / "l")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{longer}: 1 sequence longer than the run's 60 nt, cut to their first 60 nt" in (
        result.stderr
    )
    # and one shorter than any it was trained on is padded, as predict pads it, and said
    assert (
        f"{longer}: 1 sequence shorter than any the model was trained on (60 nt), padded to 60 nt"
    ) in result.stderr
    with np.load(tmp_path / "l" / "importance.npz") as arrays:
        assert arrays["sequences"].tolist() == [data.sequences[0], data.sequences[1][:50]]
    # a table without ids (rows are named by line) and with an empty sequence (left out, said)
    table = tmp_path / "new.csv"
    table.write_text(f"seq,label\n{data.sequences[2]},pos\n,neg\n{data.sequences[3]},neg\n")
    result = run_cli(capsys, "explain", attngen_run, "--sequences", table, "--out", tmp_path / "t")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{table}: 1 empty sequence left out" in result.stderr
    with np.load(tmp_path / "t" / "importance.npz") as arrays:
        assert arrays["ids"].tolist() == ["line 2", "line 4"]
    refused = run_cli(capsys, "explain", attngen_run, "--sequences", table, "--data", table,
                      "--out", tmp_path / "t2")  # fmt: skip
    assert refused.returncode == 2 and "drop --data" in refused.stderr


def test_explain_and_perturb_keep_the_previous_results_until_the_new_ones_are_complete(
    attngen_run, tmp_path, capsys, monkeypatch
):
    import attngen_keras.explain.report as report

    out = tmp_path / "explain"
    assert run_cli(capsys, "explain", attngen_run, "--n", "20", "--out", out).returncode == 0
    (out / "notes.txt").write_text("mine")  # a file of the user's own
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken_plot(*args, **kwargs):
        raise OSError(28, "No space left on device")

    # another method's results are not replaced without --force (checked before the slow part)
    refused = run_cli(
        capsys, "explain", attngen_run, "--method", "saliency", "--n", "30", "--out", out
    )
    assert refused.returncode == 2 and refused.stderr.strip().endswith(
        "summary.json: holds results made with --method attention, --n 20 (now --method saliency, "
        "--n 30); use --force to replace them, or choose another --out"
    ), refused.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.setattr(report, "plot_kmers", broken_plot)  # fails after npz, json and two plots
    failed = run_cli(
        capsys, "explain", attngen_run, "--method", "saliency", "--n", "30", "--out", out, "--force"
    )
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "No space left" in failed.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing replaced, no staging
    monkeypatch.undo()
    result = run_cli(
        capsys, "explain", attngen_run, "--method", "saliency", "--n", "30", "--out", out, "--force"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["method"] == "saliency"
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    perturbed = tmp_path / "perturb"
    stale = perturbed / f".attngen-partial-{socket.gethostname()}-999999999"  # a killed run's
    stale.mkdir(parents=True)
    (stale / "perturb.json").write_text("{")
    assert run_cli(capsys, "perturb", attngen_run, "--n", "20", "--out", perturbed).returncode == 0
    assert sorted(p.name for p in perturbed.iterdir()) == ["perturb.json", "perturbation_curve.png"]
    # the same settings again replace their own result (the same computation)
    first = (perturbed / "perturb.json").read_bytes()
    assert run_cli(capsys, "perturb", attngen_run, "--n", "20", "--out", perturbed).returncode == 0
    assert (perturbed / "perturb.json").read_bytes() == first
    # fewer sequences, or another --replacement, would lose a different result: --force
    refused = run_cli(capsys, "perturb", attngen_run, "--n", "10", "--out", perturbed)
    assert refused.returncode == 2 and refused.stderr.strip().endswith(
        "perturb.json: holds results made with --n 20 (now --n 10); use --force to replace them, "
        "or choose another --out"
    ), refused.stderr
    assert (perturbed / "perturb.json").read_bytes() == first
    args = ["perturb", attngen_run, "--n", "10", "--replacement", "random", "--out", perturbed]
    refused = run_cli(capsys, *args)
    assert (
        refused.returncode == 2
        and "--n 20, --replacement N (now --n 10, --replacement random)" in refused.stderr
    )
    assert run_cli(capsys, *args, "--force").returncode == 0
    written = json.loads((perturbed / "perturb.json").read_text())
    assert written["replacement"] == "random" and written["n"] == 10
    assert written["request"] == {
        "run": str(attngen_run.absolute()), "method": "attention", "n": 10, "data": None, "references": None, "sequences": None,
        "split": "test", "fractions": [0.0, 0.05, 0.1, 0.2, 0.3, 0.5], "replacement": "random",
        "seed": 0,
    }  # fmt: skip
    # another run's results (a copy of this one, say) are not replaced without --force either
    other = tmp_path / "other_run"
    shutil.copytree(attngen_run, other)
    refused = run_cli(capsys, "perturb", other, "--n", "10", "--replacement", "random",
                      "--out", perturbed)  # fmt: skip
    assert refused.returncode == 2 and (
        f"holds results made with the run {attngen_run.absolute()} (now the run {other.absolute()})"
        in refused.stderr
    ), refused.stderr
    # a directory where a result file goes is refused before the slow part, and nothing moves in
    blocked = tmp_path / "blocked"
    (blocked / "summary.json").mkdir(parents=True)
    refused = run_cli(capsys, "explain", attngen_run, "--n", "10", "--out", blocked)
    assert refused.returncode == 2 and refused.stderr.strip().endswith(
        f"{blocked / 'summary.json'}: is a directory, not a result file; move it away or choose "
        "another --out"
    ), refused.stderr
    assert [p.name for p in blocked.iterdir()] == ["summary.json"]
    # one computation asked for in another way is the same request: the run's own data named
    # explicitly (a relative path), its test split named, more sequences than the split has
    data = json.loads((attngen_run / "config.json").read_text())["data"]
    relative = [os.path.relpath(d) for d in data]
    same = ["perturb", attngen_run, "--data", *relative, "--split", "test", "--n", "10",
            "--replacement", "random", "--out", perturbed]  # fmt: skip
    assert run_cli(capsys, *same).returncode == 0
    assert json.loads((perturbed / "perturb.json").read_text())["request"] == written["request"]
    whole = ["perturb", attngen_run, "--n", "5000", "--replacement", "random", "--out", perturbed]
    refused = run_cli(capsys, *whole)  # 5000 means all 120 test sequences: another n than 10
    assert refused.returncode == 2 and "--n 10 (now --n 120)" in refused.stderr


def test_results_written_before_their_options_were_recorded_are_compared_by_method(tmp_path):
    from attngen_keras.cli import _keep_other_results
    from attngen_keras.files import FileError

    (tmp_path / "summary.json").write_text(json.dumps({"method": "attention", "n": 20}))
    _keep_other_results(tmp_path, "summary.json", {"method": "attention", "n": 50}, force=False)
    with pytest.raises(FileError, match=r"--method attention \(now --method saliency\)"):
        _keep_other_results(tmp_path, "summary.json", {"method": "saliency", "n": 20}, force=False)
    _keep_other_results(tmp_path, "summary.json", {"method": "saliency"}, force=True)


def test_explain_attention_of_a_cnn_is_a_clear_error_and_its_default_is_gradient_x_input(
    data_csv, tmp_path, capsys
):
    run = tmp_path / "cnn"
    assert (
        run_cli(
            capsys, "train", "--data", data_csv, "--model", "cnn", "--epochs", "1", "--out", run
        ).returncode
        == 0
    )
    result = run_cli(
        capsys, "explain", run, "--method", "attention", "--n", "10", "--out", tmp_path / "e"
    )
    assert (
        result.returncode == 2
        and "no SaliencyMask" in result.stderr
        and "(use another method: saliency, input_x_gradient, smoothgrad, ism or gradcam)"
        in result.stderr
        and "Traceback" not in result.stderr
    )
    # without --method, a model without attention is explained by |gradient x input|, said so
    result = run_cli(capsys, "explain", run, "--n", "10", "--out", tmp_path / "e")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{run}'s model 'cnn' has no attention; using --method input_x_gradient" in result.stderr
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert (
        summary["method"] == "input_x_gradient"
        and summary["request"]["method"] == "input_x_gradient"
    )


def test_uniform_attention_line_reads_an_unchanged_accuracy_for_the_user():
    from attngen_keras.cli import _uniform_attention_line

    assert _uniform_attention_line({"accuracy": 0.49, "baseline_accuracy": 0.99}) == (
        "uniform attention: accuracy 0.4900 (learned attention 0.9900)"
    )
    line = _uniform_attention_line({"accuracy": 0.9567, "baseline_accuracy": 0.9600})
    assert line.startswith(
        "uniform attention: accuracy 0.9567 (learned attention 0.9600); about the same"
    )
    line = _uniform_attention_line({"accuracy": 0.9700, "baseline_accuracy": 0.9533})
    assert line.startswith(
        "uniform attention: accuracy 0.9700 (learned attention 0.9533); higher: the accuracy does "
        "not rest on the soft attention weights, uniform weights do better"
    )


def test_perturb_writes_curves_json_and_plot(attngen_run, tmp_path, capsys):
    out = tmp_path / "perturb"
    result = run_cli(
        capsys, "perturb", attngen_run, "--n", "80", "--fractions", "0", "0.2", "0.5",
        "--replacement", "random", "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.loads((out / "perturb.json").read_text())
    assert saved["method"] == "attention" and saved["n"] == 80 and saved["replacement"] == "random"
    assert saved["fractions"] == [0.0, 0.2, 0.5]
    for ranking in ("top", "random", "bottom"):
        curve = saved["accuracy"][ranking]
        assert (
            len(curve) == 3
            and all(0 <= a <= 1 for a in curve)
            and curve[0] == saved["accuracy"]["top"][0]
        )
        assert 0 <= saved["deletion_auc"][ranking] <= 1
    assert (out / "perturbation_curve.png").stat().st_size > 10_000
    assert "deletion AUC" in result.stdout
    bad = run_cli(
        capsys, "perturb", attngen_run, "--method", "ism", "--fractions", "0.5", "0.1",
        "--out", tmp_path / "bad",
    )  # fmt: skip
    # refused before the slow part (the ISM's progress bar never shows), in one line
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "attngen perturb: error: --fractions must be sorted values in [0, 1], got [0.5, 0.1]"
    ]
    # no curve: a "deletion AUC" would be one accuracy (`sweep` refuses duplicates too)
    for fractions, message in (
        (["0.2", "0.2"], "--fractions has duplicates: [0.2, 0.2]"),
        (
            ["1.0"],
            "--fractions needs at least two values (a curve and its deletion AUC), got [1.0]",
        ),
    ):
        bad = run_cli(capsys, "perturb", attngen_run, "--method", "ism", "--fractions", *fractions,
                      "--out", tmp_path / "bad")  # fmt: skip
        assert bad.returncode == 2
        assert bad.stderr.strip().splitlines() == [f"attngen perturb: error: {message}"]
    assert not (tmp_path / "bad").exists()


def test_synthetic_ground_truth_flows_into_explain(tmp_path, capsys):
    import numpy as np

    data_dir = tmp_path / "synthetic"
    made = run_cli(
        capsys,
        "synthetic",
        "--n",
        "800",
        "--length",
        "60",
        "--motifs",
        "TGACTCA",
        "--seed",
        "4",
        "--out",
        data_dir,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    planted = pd.read_csv(data_dir / "planted.csv")
    assert len(planted) == 400 and (planted["end"] - planted["start"] == 7).all()
    run = tmp_path / "run"
    trained = run_cli(
        capsys,
        "train",
        "--data",
        data_dir / "sequences.csv",
        "--model",
        "cnn",  # the flow under test does not depend on the model; a CNN trains fastest
        "--epochs",
        "6",
        "--batch-size",
        "32",
        "--out",
        run,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    out = tmp_path / "explain"
    result = run_cli(
        capsys,
        "explain",
        run,
        "--n",
        "160",
        "--method",
        "saliency",
        "--ground-truth",
        data_dir / "planted.csv",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    localization = json.loads((out / "summary.json").read_text())["localization"]
    found, random = localization["importance"], localization["random"]
    # every explained positive has a motif; negatives have none and are skipped
    with np.load(out / "importance.npz") as arrays:
        assert found["n"] == random["n"] == int((arrays["labels"] == 1).sum()) > 50
    # measured: the CNN's saliency AUROC 0.997 vs random 0.513
    assert found["auroc"] > random["auroc"] + 0.25 and abs(random["auroc"] - 0.5) < 0.1, (
        localization
    )
    assert "AUROC" in result.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("id,start,end\nsyn1,9,3\n")
    result = run_cli(
        capsys, "explain", run, "--n", "20", "--ground-truth", bad, "--out", tmp_path / "e2"
    )
    assert (
        result.returncode == 2
        and "bad.csv: record 'syn1': line 2" in result.stderr
        and "Traceback" not in result.stderr
    )
    result = run_cli(capsys, "synthetic", "--motifs", "TGAXTCA", "--out", tmp_path / "s2")
    assert result.returncode == 2 and "TGAXTCA" in result.stderr


# The subprocess tests last: their processes run in the background meanwhile (fixtures above).


def test_train_then_evaluate(train_then_evaluate):
    run, result, evaluate = train_then_evaluate.result()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test: accuracy=" in result.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    result = evaluate
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated = json.loads((run.parent / "e.json").read_text())
    assert evaluated["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert evaluated["n"] == metrics["test"]["n"] == 120


def test_killed_training_resumes_when_rerun(kill_then_rerun):
    """SIGKILL mid-run, then the same command continues from the last epoch."""
    done_before, finished_before, resumed, history = kill_then_rerun.result()
    assert 3 <= done_before < 6 and not finished_before
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    first_epoch_line = next(
        line for line in resumed.stdout.splitlines() if line.startswith("Epoch ")
    )
    resumed_from = int(first_epoch_line.split()[1].split("/")[0])
    # Keras counts epochs from 1: resuming after k saved epochs prints "Epoch k+1/6"
    assert resumed_from >= done_before  # nothing finished was redone (at most the epoch in flight)
    final = pd.read_csv(history)
    assert final["epoch"].tolist() == list(range(6))


def test_interrupt_message_promises_a_resume_only_where_there_is_one(capsys, monkeypatch, tmp_path):
    import attngen_keras.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    (tmp_path / "started").mkdir()  # a run directory that training has checkpointed into
    for command, out, fragment in (
        ("train", tmp_path / "started", "re-run the same command to resume"),
        ("train", tmp_path / "none", "nothing was trained yet, and no --out directory was left"),
        ("synthetic", tmp_path / "s", "to start again"),
    ):
        monkeypatch.setitem(cli.COMMANDS, command, interrupted)
        data = ["--data", "x.csv"] if command == "train" else []
        result = run_cli(capsys, command, *data, "--out", out)
        assert result.returncode == 130 and fragment in result.stderr, result.stderr


def test_every_option_with_a_default_shows_it_in_help():
    from attngen_keras.cli import _parser

    parser = _parser()
    commands = parser._subparsers._group_actions[0].choices
    train, explain = commands["train"].format_help(), commands["explain"].format_help()
    flat = " ".join(train.split())
    assert "--epochs EPOCHS default: 10" in flat and "--batch-size BATCH_SIZE default: 128" in flat
    assert "(default: 0.15)" in flat and "(default: 0)" in flat  # a zero default is shown too
    assert "default: attention" in " ".join(explain.split())
    for name, command in commands.items():
        formatter = command._get_formatter()
        for action in command._actions:
            if action.option_strings and action.default not in (None, False, "==SUPPRESS==", []):
                shown = formatter._get_help_string(action)
                assert "default" in shown.lower(), (name, action.dest, shown)


def test_synthetic_runs_without_tensorflow(tmp_path):
    """`attngen synthetic` skips TensorFlow's import (and its start-up log lines)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from attngen_keras.cli import main\n"
        f"code = main(['synthetic', '--n', '10', '--length', '20', '--out', {str(tmp_path / 's')!r}])\n"
        "assert code == 0 and 'tensorflow' not in sys.modules, sorted(sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "absl" not in result.stderr and "oneDNN" not in result.stderr, result.stderr


def test_rerunning_a_finished_train_says_nothing_was_retrained(data_csv, tmp_path, capsys):
    args = ["train", "--data", data_csv, "--model", "cnn", "--epochs", "1", "--out", tmp_path / "r"]
    first = run_cli(capsys, *args)
    assert first.returncode == 0 and f"run written to {tmp_path / 'r'}" in first.stdout
    model_time = (tmp_path / "r" / "model.keras").stat().st_mtime_ns
    again = run_cli(capsys, *args)
    assert again.returncode == 0 and "run already finished, nothing retrained" in again.stdout
    assert f"run unchanged in {tmp_path / 'r'}" in again.stdout and "written" not in again.stdout
    assert (tmp_path / "r" / "model.keras").stat().st_mtime_ns == model_time


def test_masking_options_for_a_model_without_saliency_mask_are_refused(data_csv, tmp_path, capsys):
    result = run_cli(capsys, "train", "--data", data_csv, "--model", "cnn", "--mask-fraction", "0.3",
                     "--warmup-epochs", "1", "--out", tmp_path / "r")  # fmt: skip
    assert result.returncode == 2 and not (tmp_path / "r").exists()
    assert (
        "--mask-fraction, --warmup-epochs: the masking schedule applies to --model attngen only "
        "(a cnn has no SaliencyMask)" in result.stderr
    )


@pytest.mark.parametrize("code, ignored", [(0, True), (2, False), (130, False)])
def test_console_script_ignores_ctrl_c_once_the_command_has_succeeded(monkeypatch, code, ignored):
    """A Ctrl-C during the interpreter's shutdown must not turn a finished command into exit 130."""
    import signal

    from attngen_keras import cli

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(cli, "main", lambda argv=None: code)
    try:
        with pytest.raises(SystemExit) as exited:
            cli.console_main()
        assert exited.value.code == code
        handler = signal.getsignal(signal.SIGINT)
        assert (handler is cli._ignore_once) == ignored
        if ignored:  # the first Ctrl-C is swallowed; the second gets the default (stop)
            handler(signal.SIGINT, None)
            assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "x.csv", "--out", "r", "--checkpoint-every", "0"],
         "attngen train: error: argument --checkpoint-every: must be >= 1, got 0 "
         "(see attngen train --help)"),
        (["explain", "r", "--out", "e", "--n", "-5"],
         "attngen explain: error: argument --n: must be >= 1, got -5 (see attngen explain --help)"),
        (["explain", "r"],
         "attngen explain: error: the following arguments are required: --out "
         "(see attngen explain --help)"),
    ],
)  # fmt: skip
def test_argument_errors_are_one_line_without_the_usage_block(argv, message, capsys):
    result = run_cli(capsys, *argv)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [message]


def test_demo_passes_overwrite_and_fits_its_masking_ramp_into_short_trainings(
    tmp_path, capsys, monkeypatch
):
    """`demo` accepts the `--overwrite` its messages suggest; `--epochs 1` or 2 still ends the
    masking ramp (2 epochs by default) within the training, so no warning asks for options
    `demo` does not have. (The training itself: the slow `test_demo_command_runs_offline`.)"""
    import attngen_keras.demo as demo

    calls = []

    def fake_train(config, overwrite=False, verbose=None, dataset=None):
        calls.append((config.model, config.epochs, config.warmup_epochs, overwrite))
        # the small-set warning asks for the CNN comparison the demo makes: not shown
        warnings.warn(
            "2,880 training sequences: on sets this small the faithful AttnGen ...", stacklevel=2
        )
        metrics = {"accuracy": 0.5, "auroc": 0.5}
        return {"val": metrics, "test": metrics, "epochs_trained": config.epochs}

    monkeypatch.setattr(demo, "train", fake_train)
    out = tmp_path / "demo"
    for epochs, warmup in ((1, 0), (2, 1), (8, 2)):
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # over the test configuration's filter of it
            result = run_cli(capsys, "demo", "--out", out, "--epochs", epochs, "--overwrite")
        assert result.returncode == 0 and "training sequences" not in result.stderr
        assert calls[-2:] == [(m, epochs, warmup, True) for m in demo.DEMO_MODELS]
    assert run_cli(capsys, "demo", "--out", out, "--epochs", 8).returncode == 0
    assert calls[-1][3] is False


@pytest.mark.parametrize(
    "signum, code, said",
    [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_signal_whose_exception_python_drops_still_stops_the_command(
    tmp_path, capsys, monkeypatch, signum, code, said
):
    """A signal handled inside a weakref or garbage-collection callback raises where Python only
    prints the exception ("Exception ignored in ...") and goes on: the command still ends as
    stopped (never status 0), without a traceback, and the handlers are put back."""
    import weakref

    import attngen_keras.cli as cli

    class Thing:
        pass

    def command(args):
        thing = Thing()
        # the process's own handler, run where the signal would arrive: in the callback
        watch = weakref.ref(thing, lambda ref: signal.getsignal(signum)(signum, None))
        del thing  # the callback runs (its exception is dropped), and the command goes on
        assert watch() is None

    monkeypatch.setitem(cli.COMMANDS, "synthetic", command)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), sys.unraisablehook
    assert cli.main(["synthetic", "--out", str(tmp_path / "s")]) == code
    err = capsys.readouterr().err
    assert f"attngen synthetic: {said}; it had finished: its results were written" in err
    assert "Traceback" not in err and "ignored" not in err
    assert (
        signal.getsignal(signal.SIGTERM),
        signal.getsignal(signal.SIGINT),
        sys.unraisablehook,
    ) == before


def test_more_sequences_asked_than_the_split_has_is_said(attngen_run, tmp_path, capsys):
    result = run_cli(capsys, "perturb", attngen_run, "--split", "val", "--n", "100000",
                     "--fractions", "0", "0.2", "--out", tmp_path / "p")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    n = json.loads((tmp_path / "p" / "perturb.json").read_text())["n"]
    assert (
        f"attngen: note: --n 100000 is more than the {n} sequences of the val split: all of them are used"
        in result.stderr
    )


def test_a_signal_the_process_was_started_ignoring_stays_ignored(tmp_path, capsys, monkeypatch):
    """A background job of a script starts with SIGINT ignored: the launcher's Ctrl-C does not
    stop it (the command does not install its own SIGINT handler then)."""
    import attngen_keras.cli as cli

    done = []

    def command(args):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # (a signal is handled between bytecodes)
        done.append(True)

    monkeypatch.setitem(cli.COMMANDS, "synthetic", command)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert cli.main(["synthetic", "--out", str(tmp_path / "s")]) == 0 and done
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_unknown_option_is_named_by_its_command(tmp_path, capsys):
    """An option the command does not have points to that command's --help (which lists the
    options it has), not to attngen's; nothing is written."""
    result = run_cli(
        capsys, "sweep", "--data", "x.csv", "--out", tmp_path / "s", "--preset", "motif"
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "attngen sweep: error: unrecognized arguments: --preset motif (see attngen sweep --help)"
    ]
    assert not (tmp_path / "s").exists()
    # after a positional argument and a list-valued option too
    for argv, unknown in (
        (["explain", "runs/x", "--bogus", "v", "--out", tmp_path / "e"], "--bogus v"),
        (["perturb", "runs/x", "--fractions", "0.1", "0.2", "--foo", "--out", tmp_path / "p"],
         "--foo"),
    ):  # fmt: skip
        result = run_cli(capsys, *argv)
        assert result.returncode == 2 and result.stderr.strip().splitlines() == [
            f"attngen {argv[0]}: error: unrecognized arguments: {unknown} "
            f"(see attngen {argv[0]} --help)"
        ]
