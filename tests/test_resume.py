"""Exact resume: a run interrupted anywhere and resumed ends where the uninterrupted run ends."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pandas as pd
import pytest
from helpers import StopAtStep

from attngen_keras.synthetic import planted_motif_data
from attngen_keras.training import STATE_FILE, TrainConfig, train


@pytest.fixture(scope="module")
def motif_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "motifs.csv"
    planted_motif_data(n=400, length=50, motifs=("TGACTCA",), seed=5).to_frame().to_csv(
        path, index=False
    )
    return str(path)


def _config(data, out, **overrides):
    options = dict(data=[data], out=str(out), model="attngen", epochs=4, batch_size=32, warmup_epochs=1,
                   patience=2, jit_compile=False, seed=3, reverse_complement=True, checkpoint_every=4)  # fmt: skip
    options.update(overrides)
    return TrainConfig(**options)


def _weights(run):
    model = keras.saving.load_model(run / "model.keras")
    return [
        np.asarray(v) for v in model.weights
    ]  # (random-generator states are not saved in .keras)


@pytest.mark.parametrize(
    "model, epochs",
    [
        ("cnn", 2),
        pytest.param("attngen", 4, marks=pytest.mark.slow),
    ],  # AttnGen: masking ramp, BN recalibration
)
def test_interrupted_mid_epoch_and_resumed_matches_the_uninterrupted_run(
    motif_csv, tmp_path, model, epochs
):
    """Weights, Adam moments and iteration, metric accumulators, data order, augmentation and dropout RNG."""
    # 288 training sequences / 32 = 9 steps per epoch; checkpoints at steps 4, 8, 12 (epoch 1, batch 3), ...
    config = dict(model=model, epochs=epochs)
    reference = train(_config(motif_csv, tmp_path / "ref", **config), verbose=0)
    run = tmp_path / "run"

    class SlowFirstBatches(keras.callbacks.Callback):
        """Sleeps before batches 0-2 of epoch 1 (steps 10-12; the checkpoint is after step 12)."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 1 and batch < 3:
                time.sleep(0.3)

    with pytest.raises(KeyboardInterrupt):
        train(_config(motif_csv, run, **config), verbose=0,
              callbacks=[SlowFirstBatches(), StopAtStep(15)])  # epoch 1, batch 6  # fmt: skip
    saved = json.loads(str(np.load(run / STATE_FILE)["meta"]))
    assert (saved["epoch"], saved["step"]) == (
        1,
        3,
    )  # the last checkpoint: mid-epoch, steps 13-15 are redone
    assert (
        saved["epoch_seconds"] >= 0.9
    )  # the epoch's seconds so far, the three slow batches in them
    resumed = train(_config(motif_csv, run, **config), verbose=0)
    expected, got = pd.read_csv(tmp_path / "ref" / "history.csv"), pd.read_csv(run / "history.csv")
    # the resumed epoch's epoch_seconds counts its part before the interruption too
    assert got[got["epoch"] == 1]["epoch_seconds"].iloc[-1] >= saved["epoch_seconds"]
    assert got["epoch"].tolist() == expected["epoch"].tolist()
    np.testing.assert_allclose(got["val_loss"], expected["val_loss"], atol=1e-4)
    np.testing.assert_allclose(
        got["loss"], expected["loss"], atol=1e-4
    )  # the full epoch's mean, not the tail's
    assert resumed["best_epoch"] == reference["best_epoch"]
    assert resumed["test"]["loss"] == pytest.approx(reference["test"]["loss"], abs=1e-4)
    for a, b in zip(_weights(run), _weights(tmp_path / "ref")):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_early_stopping_state_survives_a_resume(motif_csv, tmp_path):
    """The patience counter is part of the state: a resumed run stops where the uninterrupted one stops."""
    overrides = dict(model="cnn", epochs=12, patience=1, learning_rate=0.05, checkpoint_every=None)
    reference = train(_config(motif_csv, tmp_path / "ref", **overrides), verbose=0)
    assert reference["epochs_trained"] < 12  # it did stop early (measured: after 6 epochs)

    class _StopAtEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == reference["epochs_trained"] - 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            _config(motif_csv, tmp_path / "run", **overrides),
            verbose=0,
            callbacks=[_StopAtEpochEnd()],
        )
    resumed = train(_config(motif_csv, tmp_path / "run", **overrides), verbose=0)
    assert resumed["epochs_trained"] == reference["epochs_trained"]
    assert resumed["test"]["loss"] == pytest.approx(reference["test"]["loss"], abs=1e-4)


def test_a_run_interrupted_after_its_last_epoch_says_it_only_writes_the_run(
    motif_csv, tmp_path, capsys
):
    overrides = dict(model="cnn", epochs=2, checkpoint_every=None)

    class _StopAfterTheLastEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # the state of epoch 2 is saved: only the run's files are missing
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(motif_csv, tmp_path / "run", **overrides), verbose=0,
              callbacks=[_StopAfterTheLastEpoch()])  # fmt: skip
    capsys.readouterr()
    metrics = train(_config(motif_csv, tmp_path / "run", **overrides), verbose=0)
    out = capsys.readouterr().out
    assert f"{tmp_path / 'run'}: training had ended (all 2 epochs done); writing the run" in out
    assert "resuming epoch" not in out and metrics["epochs_trained"] == 2


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import keras
    from attngen_keras.training import TrainConfig, train

    data, out, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])

    class Kill(keras.callbacks.Callback):
        done = 0
        def on_train_batch_end(self, batch, logs=None):
            Kill.done += 1
            if Kill.done == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    config = TrainConfig(data=[data], out=out, model="attngen", epochs=3, batch_size=32, warmup_epochs=1,
                         patience=2, jit_compile=False, seed=3, reverse_complement=True, checkpoint_every=4,
                         deterministic=True)
    train(config, verbose=0, callbacks=[Kill()] if kill_at else [])
    """
)


@pytest.mark.slow
def test_deterministic_run_killed_mid_epoch_resumes_exactly_from_the_cli(motif_csv, tmp_path):
    """SIGKILL in the middle of an epoch, then `attngen train --deterministic` with the same arguments."""

    def run(out, kill_at):
        return subprocess.run([sys.executable, "-c", KILL_SCRIPT, motif_csv, str(out), str(kill_at)],
                              capture_output=True, text=True, timeout=600)  # fmt: skip

    reference = run(tmp_path / "ref", 0)
    assert reference.returncode == 0, reference.stderr[-3000:]
    killed = run(
        tmp_path / "run", 14
    )  # epoch 1, batch 5 (9 steps per epoch), after the checkpoint at step 12
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "run" / "metrics.json").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "attngen_keras.cli", "train", "--data", motif_csv, "--model", "attngen",
         "--epochs", "3", "--batch-size", "32", "--warmup-epochs", "1", "--patience", "2", "--no-jit",
         "--seed", "3", "--reverse-complement", "--checkpoint-every", "4", "--deterministic",
         "--out", tmp_path / "run"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming epoch 2 of 3 after batch 3 of 9" in resumed.stdout
    # the finished interrupted epoch is counted out of the run's 3
    assert "Epoch 2/3" in resumed.stdout and "Epoch 2/2" not in resumed.stdout
    expected, got = (
        pd.read_csv(tmp_path / "ref" / "history.csv"),
        pd.read_csv(tmp_path / "run" / "history.csv"),
    )
    np.testing.assert_allclose(got["val_loss"], expected["val_loss"], atol=1e-4)
    np.testing.assert_allclose(got["loss"], expected["loss"], atol=1e-4)
    for a, b in zip(_weights(tmp_path / "run"), _weights(tmp_path / "ref")):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert not os.path.exists(tmp_path / "run" / "backup")


def test_run_progbar_counts_epochs_out_of_the_whole_run(capsys):
    from attngen_keras.training import RunProgbar

    bar = RunProgbar(total_epochs=3)
    bar.set_params({"verbose": 2, "epochs": 2, "steps": 5})  # the fit that finishes epoch 2
    bar.on_epoch_begin(1)
    assert "Epoch 2/3" in capsys.readouterr().out
    assert RunProgbar(3).total_epochs == 3


def test_run_progbar_counts_the_resumed_epochs_batches_from_where_it_resumes(capsys):
    """Resumed after 3 of 9 batches: the fit of the 6 left shows 4/9 ... 9/9, not 1/6 ... 6/6."""
    from attngen_keras.training import RunProgbar

    bar = RunProgbar(total_epochs=3, batches_done=3)
    bar.set_params({"verbose": 1, "epochs": 2, "steps": 6})
    bar.on_epoch_begin(1)
    bar.on_train_batch_end(0, {"loss": 0.5})
    assert bar.progbar.target == 9 and bar.seen == 4
    out = capsys.readouterr().out
    assert "4/9" in out and "1/6" not in out
    # the time per step is estimated from this process's batches only: one so far
    assert bar.progbar._estimate_step_duration(4, bar.progbar._start + 2.0) == pytest.approx(2.0)
    for batch in range(1, 6):
        bar.on_train_batch_end(batch, {"loss": 0.5})
    bar.on_epoch_end(1, {"loss": 0.5})
    assert "9/9" in capsys.readouterr().out


def test_epoch_timer_adds_the_carried_seconds_to_the_resumed_epoch_only(monkeypatch):
    from attngen_keras import training

    clock = iter([100.0, 103.0, 200.0, 204.0])
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))
    timer = training.EpochTimer()
    timer.carried = 5.0  # the interrupted epoch's seconds up to its checkpoint
    logs = {}
    timer.on_epoch_begin(1)
    timer.on_epoch_end(1, logs)
    assert logs["epoch_seconds"] == 8.0 and timer.carried == 0.0
    timer.on_epoch_begin(2)
    timer.on_epoch_end(2, logs)
    assert logs["epoch_seconds"] == 4.0
    assert timer.elapsed() == 0.0  # outside an epoch
