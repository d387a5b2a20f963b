"""KerasTuner search: the search space, trials with masking, resume, retrain, distributed mode."""

import dataclasses
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest
from helpers import run_cli, start_in_background

from attngen_keras.synthetic import planted_motif_data
from attngen_keras.training import RunError
from attngen_keras.tuning import AttnGenHyperModel, TuneConfig, retrain_best, run_search


@pytest.mark.parametrize("model", ["attngen", "cnn"])
def test_hypermodel_builds_valid_models_across_its_space(model):
    hypermodel = AttnGenHyperModel(40, 3, model)
    hp = kt.HyperParameters()
    hypermodel.build(hp)  # registers the space
    assert ("mask_fraction" in hp.values) == (model == "attngen")
    x = np.random.default_rng(0).random((2, 40, 4)).astype("float32")
    corners = itertools.product([1, 3], [2, 3], [1, 2], [7, 15], [0, 128])
    for blocks, pool, dilation, kernel, dense in corners:
        hp.values.update(
            conv_blocks=blocks,
            pool_size=pool,
            dilation_rate=dilation,
            kernel_size=kernel,
            dense_units=dense,
        )
        built = hypermodel.build(hp)
        # a direct call, not predict: the same output without tracing a predict function per corner
        assert tuple(built(x, training=False).shape) == (2, 3)
        assert built.get_layer("stem_conv").kernel_size == (kernel,)
        assert len([layer for layer in built.layers if layer.name.startswith("conv_")]) == blocks
    with pytest.raises(ValueError, match="attngen or cnn"):
        AttnGenHyperModel(40, 2, "gb-cnn")


def test_the_masking_ramp_is_searched_below_the_trials_epochs():
    for max_epochs, longest in ((None, 3), (10, 3), (3, 2), (2, 1), (1, 0)):
        hp = kt.HyperParameters()
        AttnGenHyperModel(40, 2, max_epochs=max_epochs).declare(hp)
        ramp = {p.name: p for p in hp.space}["warmup_epochs"]
        assert ramp.min_value == 0 and ramp.max_value == longest


def test_under_hyperband_the_ramp_ends_within_the_shortest_trials():
    """Hyperband's first rounds train a few epochs: the ramp is searched below those."""
    from attngen_keras.tuning import hyperband_shortest_epochs

    for max_epochs, factor in ((10, 3), (30, 3), (2, 3), (27, 3), (50, 2), (81, 3), (5, 4)):
        oracle = kt.oracles.HyperbandOracle(
            objective="val_loss", max_epochs=max_epochs, factor=factor
        )
        # what KerasTuner trains in the first round of its most aggressive bracket
        expected = oracle._get_epochs(oracle._get_num_brackets() - 1, 0)
        assert hyperband_shortest_epochs(max_epochs, factor) == expected, (max_epochs, factor)
    hp = kt.HyperParameters()
    AttnGenHyperModel(40, 2, max_epochs=10, shortest_epochs=2).declare(hp)
    assert {p.name: p for p in hp.space}["warmup_epochs"].max_value == 1


def test_every_attngen_trial_trains_with_the_masking_schedule():
    hypermodel = AttnGenHyperModel(40, 2)
    hp = kt.HyperParameters()
    hypermodel.build(hp)
    hp.values.update(mask_fraction=0.3, warmup_epochs=1)
    model = hypermodel.build(hp)
    data = planted_motif_data(n=64, length=40, seed=0)
    from attngen_keras.data import encode, one_hot

    x = one_hot(np.stack([encode(s) for s in data.sequences]))
    history = hypermodel.fit(hp, model, x, data.labels, epochs=3, batch_size=32, verbose=0)
    assert history.history["mask_fraction"] == pytest.approx([0.0, 0.3, 0.3])
    assert float(model.get_layer("saliency_mask").mask_fraction.numpy()) == pytest.approx(0.3)


@pytest.fixture(scope="module")
def motif_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("tune") / "motifs.csv"
    planted_motif_data(n=500, length=40, motifs=("TGACTCA",), seed=3).to_frame().to_csv(
        path, index=False
    )
    return str(path)


def _config(motif_csv, directory, **kwargs):
    settings = dict(
        tuner="random", max_trials=2, max_epochs=2, batch_size=32, directory=str(directory)
    )
    return TuneConfig(data=[motif_csv], project_name="search", **{**settings, **kwargs})


@pytest.mark.slow
def test_search_writes_summary_resumes_and_retrains_the_best(motif_csv, tmp_path):
    config = _config(motif_csv, tmp_path)
    run_search(config, verbose=0)
    project = tmp_path / "search"
    trials = pd.read_csv(project / "trials.csv")
    assert len(trials) == 2 and trials["score"].notna().all()
    best = json.loads((project / "best_hyperparameters.json").read_text())
    assert best["score"] == pytest.approx(trials["score"].max())
    assert {"mask_fraction", "warmup_epochs", "filters", "learning_rate"} <= set(
        best["hyperparameters"]
    )
    assert (project / "summary.md").read_text().count("\n| ") == 3  # header + 2 trials

    # a search stopped after its first trial and resumed runs its second as the uninterrupted
    # search did: each trial seeds itself and gets new datasets, whatever ran before it
    stopped = dataclasses.replace(config, project_name="stopped", max_trials=1)
    run_search(stopped, verbose=0)
    run_search(dataclasses.replace(stopped, max_trials=2), verbose=0)
    resumed = pd.read_csv(tmp_path / "stopped" / "trials.csv")
    pd.testing.assert_frame_equal(resumed, trials)

    # resuming with one more trial runs only that trial; finished ones are kept
    before = {t: (project / f"trial_{t}" / "trial.json").stat().st_mtime for t in ("0", "1")}
    config.max_trials = 3
    run_search(config, verbose=0)
    assert len(pd.read_csv(project / "trials.csv")) == 3
    assert {
        t: (project / f"trial_{t}" / "trial.json").stat().st_mtime for t in ("0", "1")
    } == before

    # other settings in the same project are refused
    with pytest.raises(RunError, match="other settings.*max_epochs"):
        run_search(_config(motif_csv, tmp_path, max_trials=3, max_epochs=5), verbose=0)
    # --max-trials may grow, not shrink below the trials the search counts
    with pytest.raises(RunError, match="search of --max-trials 3; it may be raised to add "
                       "trials, not lowered to 2"):  # fmt: skip
        run_search(_config(motif_csv, tmp_path, max_trials=2), verbose=0)
    assert json.loads((project / "attngen_tune.json").read_text())["max_trials"] == 3

    config.max_train = 300  # the search's subset: the retrained run takes all of train+val
    out, metrics, retrained = retrain_best(config, verbose=0)
    record = json.loads((out / "config.json").read_text())
    assert retrained and record["max_train"] is None
    # the same retrain again reports the run there; another asks for another --retrain-out
    assert retrain_best(config, verbose=0) == (out, metrics, False)
    with pytest.raises(RunError, match=r"different configuration \(epochs: .*use another "
                       r"--retrain-out, or delete it"):  # fmt: skip
        retrain_best(config, epochs=7, verbose=0)
    hps = json.loads((project / "best_hyperparameters.json").read_text())["hyperparameters"]
    assert record["val_fraction"] == 0.0 and record["mask_fraction"] == pytest.approx(
        hps["mask_fraction"]
    )
    assert record["backbone"]["filters"] == hps["filters"] and (out / "model.keras").exists()
    assert (
        metrics["test"]["n"] == 100 and "val" not in metrics
    )  # trained on train+val, scored on test


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tune_args(motif_csv, directory, *extra):
    return [sys.executable, "-m", "attngen_keras.cli", "tune", "--data", motif_csv, "--project-name", "cli",
            "--directory", str(directory), "--batch-size", "32", *map(str, extra)]  # fmt: skip


def _own_cache(root):
    """The environment with a cache of its own (a background job outlives each test's)."""
    return {**os.environ, "ATTNGEN_CACHE": str(root / "attngen_cache")}


@pytest.mark.slow
def test_killed_search_resumes_without_redoing_finished_trials(motif_csv, tmp_path):
    args = _tune_args(
        motif_csv, tmp_path, "--tuner", "random", "--max-trials", "3", "--max-epochs", "2"
    )
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "cli" / "trial_0" / "trial.json"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            if first.exists() and json.loads(first.read_text()).get("status") == "COMPLETED":
                break
            if process.poll() is not None:
                pytest.fail("search finished before it could be killed")
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    score = json.loads(first.read_text())["score"]
    resumed = subprocess.run([*args, "--retrain-best"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    trials = pd.read_csv(tmp_path / "cli" / "trials.csv")
    assert len(trials) == 3 and trials["status"].eq("COMPLETED").all()
    assert json.loads(first.read_text())["score"] == score  # trial 0 was not rerun
    assert (
        tmp_path / "cli" / "best_run" / "model.keras"
    ).exists() and "retrained on train+val" in resumed.stdout


@pytest.mark.slow
def test_distributed_search_with_a_chief_and_two_workers_on_localhost(motif_csv, tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    args = _tune_args(motif_csv, tmp_path, "--tuner", "random", "--max-trials", "4", "--max-epochs", "1",
                      "--oracle-address", address)  # fmt: skip
    chief = subprocess.Popen(
        [*args, "--distributed", "chief"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(3)
    workers = [
        subprocess.Popen(
            [*args, "--distributed", "worker", "--worker-id", str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    try:
        outputs = [w.communicate(timeout=600) for w in workers]
        chief_out, chief_err = chief.communicate(timeout=300)
    finally:
        for process in (chief, *workers):
            process.kill()
    assert chief.returncode == 0, chief_err[-3000:]
    for i, (worker, (out, err)) in enumerate(zip(workers, outputs)):
        assert worker.returncode == 0 and "no trials left" in out, err[-3000:]
        # a worker says whom it waits for (KerasTuner's says nothing until the chief answers)
        assert out.startswith(f"worker {i}: asking the chief at {address} for trials"), out[:300]
    trials = pd.read_csv(tmp_path / "cli" / "trials.csv")
    assert len(trials) == 4 and trials["status"].eq("COMPLETED").all()
    assert {"tuner0.json", "tuner1.json"} <= {p.name for p in (tmp_path / "cli").iterdir()}


MIRRORED_SEARCH = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from attngen_keras.tuning import TuneConfig, run_search
config = TuneConfig(data=[sys.argv[1]], project_name="mirrored", directory=sys.argv[2], tuner="random",
                    max_trials=1, max_epochs=2, batch_size=32, strategy="mirrored")
tuner = run_search(config, verbose=0)
trial = list(tuner.oracle.trials.values())[0]
print("RESULT" + json.dumps({"replicas": tuner.distribution_strategy.num_replicas_in_sync,
                             "status": str(trial.status), "score": trial.score}))
"""


def _mirrored_search(motif_csv, directory):
    return subprocess.run([sys.executable, "-c", MIRRORED_SEARCH, motif_csv, str(directory)],
                          capture_output=True, text=True, timeout=600, env=_own_cache(directory))  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def mirrored_search(request, motif_csv, tmp_path_factory):
    """The MirroredStrategy subprocess, started before this module's first test (see helpers)."""
    return start_in_background(
        request, "test_trials_train_under_mirrored_strategy_on_two_logical_cpus",
        _mirrored_search, motif_csv, tmp_path_factory.mktemp("mirrored"),
    )  # fmt: skip


def test_trials_train_under_mirrored_strategy_on_two_logical_cpus(mirrored_search):
    result = mirrored_search.result()
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(
        next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))[
            len("RESULT") :
        ]
    )
    assert (
        summary["replicas"] == 2 and summary["status"] == "COMPLETED" and 0 <= summary["score"] <= 1
    )


def test_hyperband_best_epoch_counts_from_the_continued_trials_start():
    from types import SimpleNamespace

    from attngen_keras.tuning import trial_rows

    def trial(best_step, initial):
        values = {"filters": 32, "tuner/epochs": 6, "tuner/initial_epoch": initial}
        return SimpleNamespace(hyperparameters=SimpleNamespace(values=values), status="COMPLETED",
                               score=0.9, best_step=best_step)  # fmt: skip

    tuner = SimpleNamespace(
        oracle=SimpleNamespace(trials={"0": trial(1, 0), "1": trial(1, 3), "2": trial(None, 0)})
    )
    rows = trial_rows(tuner)
    # a continued trial (from epoch 3) that peaked in its second epoch peaked at absolute epoch 5
    assert [r["best_epoch"] for r in rows] == [2, 5, None]


@pytest.mark.parametrize("model", ["attngen", "cnn"])
@pytest.mark.parametrize("saved", ["own", "none"])
def test_hyperband_continuation_loads_a_parent_trials_weights_in_a_fresh_process(
    model, saved, tmp_path
):
    """What Hyperband does for a trial that continues another (also after a resume): build,
    `build_from_config(<the parent's saved build config>)`, load the parent's weights. In a
    fresh process the first `AttnGen` built failed there ("Undefined shapes") when the saved
    build config had no shape (`saved="none"`: as saved before the fix)."""
    script = f"""
import json, sys
import keras_tuner as kt, numpy as np
from attngen_keras.tuning import AttnGenHyperModel
hypermodel = AttnGenHyperModel(40, 2, model={model!r})
child = hypermodel.build(kt.HyperParameters())  # the first model of the process
config = child.get_build_config() if {saved!r} == "own" else {{"input_shape": None}}
child.build_from_config(json.loads(json.dumps(config)))  # as saved in build_config.json
parent = hypermodel.build(kt.HyperParameters())
parent.save_weights(sys.argv[1] + "/parent.weights.h5")
child.load_weights(sys.argv[1] + "/parent.weights.h5")
x = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (3, 40))]
assert np.allclose(child.predict(x, verbose=0), parent.predict(x, verbose=0), atol=1e-6)
print("continued", config)
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "continued {'input_shape'" in result.stdout


def test_failed_trials_are_named_in_a_warning_and_the_summary(tmp_path):
    from types import SimpleNamespace

    from attngen_keras.tuning import write_summary

    def trial(status, score):
        values = {"filters": 32, "learning_rate": 1e-3}
        return SimpleNamespace(hyperparameters=SimpleNamespace(values=values), status=status,
                               score=score, best_step=0)  # fmt: skip

    trials = {"0000": trial("COMPLETED", 0.7), "0001": trial("FAILED", None),
              "0002": trial("COMPLETED", 0.8)}  # fmt: skip
    tuner = SimpleNamespace(oracle=SimpleNamespace(trials=trials))
    config = SimpleNamespace(project_dir=tmp_path, objective="val_accuracy", tuner="hyperband",
                             model="attngen", data=["d.csv"])  # fmt: skip
    with pytest.warns(UserWarning, match=r"^1 trial failed \(0001; the tracebacks are printed"):
        best = write_summary(tuner, config)
    assert best["trial"] == "0002"
    assert "3 trials (2 finished, 1 failed)" in (tmp_path / "summary.md").read_text()


def test_tuner_state_files_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A kill while KerasTuner saves `oracle.json` used to leave it empty (the resume then failed)."""
    from keras_tuner.src import utils as kt_utils

    from attngen_keras import tuning

    tuning._use_atomic_state_files()
    assert kt_utils.save_json is tuning._atomic_save_json
    path = tmp_path / "oracle.json"
    kt_utils.save_json(str(path), {"trials": 1})

    def killed(fd):
        raise KeyboardInterrupt  # as if the process died before the new state was on disk

    monkeypatch.setattr(tuning.os, "fsync", killed)
    with pytest.raises(KeyboardInterrupt):
        kt_utils.save_json(str(path), {"trials": 2})
    assert json.loads(path.read_text()) == {"trials": 1}  # the previous state, whole
    assert [p.name for p in tmp_path.iterdir()] == ["oracle.json"]  # no partial file left


def test_empty_state_file_is_a_one_line_error_naming_it(tmp_path):
    from attngen_keras.data.errors import DataError
    from attngen_keras.tuning import _check_state_files

    (tmp_path / "trial_0000").mkdir()
    (tmp_path / "trial_0000" / "trial.json").write_text('{"trial_id": "0000"}')
    _check_state_files(tmp_path)  # valid files pass
    (tmp_path / "oracle.json").write_text("")
    with pytest.raises(
        DataError, match=r"oracle.json: KerasTuner state file is empty or truncated"
    ):
        _check_state_files(tmp_path)


def test_a_search_started_under_another_attngen_default_is_refused(tmp_path):
    """The AttnGen variant the trials build is part of the settings: an AttnGen search started
    before the default changed (its checkpoints hold another model) is not resumed."""
    from attngen_keras.models.classifiers import PRESETS
    from attngen_keras.tuning import _check_settings, _write_settings

    config = TuneConfig(data=["x.csv"], project_name="p", directory=str(tmp_path))
    _write_settings(config, _check_settings(config))
    stored = json.loads((tmp_path / "p" / "attngen_tune.json").read_text())
    assert stored["model_options"] == PRESETS["faithful"]
    _check_settings(config)  # the same settings resume
    del stored["model_options"]  # written before the settings held it
    (tmp_path / "p" / "attngen_tune.json").write_text(json.dumps(stored))
    with pytest.raises(RunError, match="other settings.*model_options"):
        _check_settings(config)
    cnn = TuneConfig(data=["x.csv"], project_name="c", directory=str(tmp_path), model="cnn")
    _write_settings(cnn, _check_settings(cnn))
    assert "model_options" not in json.loads((tmp_path / "c" / "attngen_tune.json").read_text())


def test_a_refused_search_writes_nothing_and_resumes_from_any_directory(
    motif_csv, tmp_path, capsys, monkeypatch
):
    """Bad options or data leave no settings behind that would block the corrected command; the
    settings hold absolute data paths, so the search resumes from another working directory."""
    from helpers import run_cli

    from attngen_keras.data import DataError
    from attngen_keras.tuning import _check_settings, _write_settings

    project = tmp_path / "search"
    for option, message in [("--batch-size=0", "--batch-size must be >= 1, got 0"),
                            ("--max-train=0", "--max-train must be >= 2, got 0"),
                            ("--length=0", "--length must be >= 1, got 0"),
                            ("--seed=-1", "--seed: must be an integer in [0, 2**32), got -1")]:  # fmt: skip
        result = run_cli(capsys, "tune", "--data", motif_csv, "--project-name", "search",
                         "--directory", tmp_path, "--tuner", "random", option)  # fmt: skip
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and not project.exists()
    bad = tmp_path / "bad.csv"
    bad.write_text("seq,label\nACGT,a\nACXT,b\n")
    with pytest.raises(DataError, match="invalid character 'X'"):
        run_search(_config(str(bad), tmp_path))
    assert not (project / "attngen_tune.json").exists()
    with pytest.raises(ValueError, match="--objective val_f1 is not computed"):
        run_search(_config(motif_csv, tmp_path, objective="val_f1"))
    assert not (project / "attngen_tune.json").exists()
    # stored absolute; a search stored before (relative to where it ran) is read the same way
    monkeypatch.chdir(os.path.dirname(motif_csv))
    here = _config(os.path.basename(motif_csv), tmp_path)
    assert here.data == [os.path.abspath(motif_csv)]
    _write_settings(here, _check_settings(here))
    monkeypatch.chdir(tmp_path)
    _check_settings(_config(os.path.relpath(motif_csv), tmp_path))  # the same data: resumes
    stored = json.loads((project / "attngen_tune.json").read_text())
    assert stored["data"] == [os.path.abspath(motif_csv)]
    monkeypatch.chdir(os.path.dirname(motif_csv))
    stored["data"] = [os.path.basename(motif_csv)]
    (project / "attngen_tune.json").write_text(json.dumps(stored))
    _check_settings(_config(motif_csv, tmp_path))
    with pytest.raises(RunError, match="other settings \\(data: "):
        _check_settings(_config(str(bad), tmp_path))


@pytest.mark.parametrize(
    "objective, values, best_value, best_step",
    [
        ("val_accuracy", [0.9, 0.6, 0.7], 0.7, 2),  # the warm-up epoch's 0.9 does not count
        ("val_loss", [0.1, 0.5, 0.4], 0.4, 2),
        ("val_accuracy", [0.9, 0.8, 0.7], 0.8, 1),
    ],
)
def test_trials_are_scored_on_epochs_at_their_full_mask_fraction(
    objective, values, best_value, best_step
):
    """KerasTuner scores a trial by the best epoch of its History: epochs inside the masking
    ramp (here epoch 0) are not eligible, as `attngen train` does not select them."""
    from keras_tuner.src.engine import tuner_utils

    from attngen_keras.tuning import objective_of, score_after_ramp

    history = keras.callbacks.History()
    history.epoch = [0, 1, 2]
    history.history = {objective: list(values), "loss": [1.0, 0.9, 0.8]}
    scored = score_after_ramp(history, 1, objective)
    target = objective_of(objective)
    assert tuner_utils.convert_to_metrics_dict(scored, target)[objective] == best_value
    assert tuner_utils.get_best_step(scored, target) == best_step
    assert scored.history["loss"] == [1.0, 0.9, 0.8]
    # a Hyperband continuation counts its epochs from its initial epoch: all past the ramp
    history.epoch, history.history = [2, 3], {objective: [0.5, 0.6]}
    assert score_after_ramp(history, 1, objective).history[objective] == [0.5, 0.6]


def test_the_hypermodel_hides_the_ramp_from_kerastuners_callbacks_and_score():
    """In `fit`, KerasTuner's own callbacks (its best-epoch checkpoint) see the warm-up epoch's
    objective as the worst value, later callbacks (the log) the real one, and the History
    KerasTuner scores has the worst value there."""
    hypermodel = AttnGenHyperModel(40, 2, max_epochs=3, objective="val_accuracy")
    hp = kt.HyperParameters()
    hypermodel.declare(hp)
    hp.values.update({"warmup_epochs": 1, "mask_fraction": 0.2, "filters": 32, "conv_blocks": 1})
    model = hypermodel.build(hp)
    seen = {"tuner": []}

    class Record(keras.callbacks.Callback):
        def __init__(self, key):
            super().__init__()
            self.key = key

        def on_epoch_end(self, epoch, logs=None):
            seen[self.key].append(logs["val_accuracy"])

    x = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (64, 40))]
    y = np.arange(64) % 2
    history = hypermodel.fit(hp, model, x, y, validation_data=(x[:16], y[:16]), epochs=3,
                             batch_size=32, verbose=0, callbacks=[Record("tuner")])  # fmt: skip
    assert seen["tuner"][0] == -np.inf and np.isfinite(seen["tuner"][1:]).all()
    assert history.history["val_accuracy"][0] == -np.inf
    assert np.isfinite(history.history["val_accuracy"][1:]).all()


def test_hyperband_ignores_max_trials_so_its_resume_does_not_check_it(motif_csv, tmp_path):
    from attngen_keras.tuning import _check_settings, _write_settings

    config = _config(motif_csv, tmp_path, tuner="hyperband", max_trials=20)
    _write_settings(config, _check_settings(config))
    _check_settings(_config(motif_csv, tmp_path, tuner="hyperband"))  # the default 10: accepted


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--retrain-best", "--retrain-epochs", "0"], "--retrain-epochs must be >= 1, got 0"),
        (["--retrain-best", "--retrain-epochs", "-1"], "--retrain-epochs must be >= 1, got -1"),
        (["--retrain-epochs", "3"], "--retrain-epochs needs --retrain-best"),
        (
            ["--retrain-out", "r", "--retrain-epochs", "3"],
            "--retrain-out and --retrain-epochs need",
        ),
        (["--retrain-best", "--retrain-out", "afile"], "--retrain-out afile is a file, not a run"),
        (
            ["--retrain-best", "--retrain-out", "notes"],
            "--retrain-out notes exists and is not an attngen run directory; choose another",
        ),
    ],
)
def test_retrain_options_are_checked_before_the_search(
    motif_csv, tmp_path, capsys, monkeypatch, extra, message
):
    """A typo in the retraining's options ends the command before the search (which can take
    hours) and before anything is written; a 0 is not taken for "not given"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    args = ["tune", "--data", str(motif_csv), "--project-name", "p", "--directory", "tun"]
    result = run_cli(capsys, *args, *extra)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"attngen tune: error: {message}"), lines
    assert not (tmp_path / "tun").exists()


def test_a_trial_trains_the_same_after_other_trials(motif_csv):
    """With a `seed` and a `train_data` factory each trial seeds itself from its hyperparameters
    and gets new datasets: run after another trial in the same process it trains to the weights
    it gets when run first, as a resumed search re-runs its interrupted trial first. (The CNN's
    search, the cheaper one: the seeding and the datasets are the same for AttnGen, whose resumed
    search the slow `test_search_writes_summary_resumes_and_retrains_the_best` compares.)"""
    from attngen_keras.data import load_dataset, make_tf_dataset

    dataset = load_dataset(str(motif_csv), seed=0, cache_dir=None)
    train = dataset["train"]
    hypermodel = AttnGenHyperModel(
        dataset.length, 2, model="cnn", max_epochs=1, seed=5,
        train_data=lambda: make_tf_dataset(train, 64, shuffle=True, seed=5),
    )  # fmt: skip

    def trial(**values):
        hp = kt.HyperParameters()
        hypermodel.declare(hp)
        hp.values.update(conv_blocks=1, filters=32, dense_units=0, **values)
        model = hypermodel.build(hp)
        hypermodel.fit(hp, model, epochs=1, verbose=0, shuffle=False)
        return model.get_weights()

    first = trial(dropout=0.1)
    other = trial(dropout=0.3)
    again = trial(dropout=0.1)
    assert all(np.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(first, again))
    assert not all(np.allclose(a, b) for a, b in zip(first, other))  # (not one fixed seed)
    assert not all(np.allclose(a, b) for a, b in zip(first, other))


def test_a_worker_whose_chief_never_answers_ends_with_one_line(motif_csv, tmp_path, capsys,
                                                              monkeypatch):  # fmt: skip
    """KerasTuner's worker gives up on an unreachable chief after an hour with a gRPC error: it
    ends the command in one line naming the address, not a traceback."""
    import grpc

    import attngen_keras.tuning as tuning

    class Unanswered(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.DEADLINE_EXCEEDED

    def search(config, verbose=None):
        raise Unanswered()

    monkeypatch.setattr(tuning, "run_search", search)
    monkeypatch.chdir(tmp_path)
    result = run_cli(capsys, "tune", "--data", motif_csv, "--project-name", "p", "--distributed",
                     "worker", "--oracle-address", "10.0.0.9:8000")  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "attngen tune: error: --distributed worker: the oracle at 10.0.0.9:8000 did not answer "
        "(DEADLINE_EXCEEDED): is the chief running there?"
    ]
    assert result.stdout.startswith("worker 0: asking the chief at 10.0.0.9:8000 for trials")
