"""Masking-fraction sweep: rows, aggregation, resumability and outputs."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from attngen_keras.sweep import (
    ROW_FILE,
    SweepConfig,
    first_epoch_reaching,
    markdown_table,
    run_sweep,
    summarize,
)
from attngen_keras.synthetic import planted_motif_data
from attngen_keras.training import RunError


def test_first_epoch_reaching_target():
    assert first_epoch_reaching([0.5, 0.8, 0.95, 0.9], 0.9) == 3
    assert first_epoch_reaching([0.5, 0.6], 0.9) is None
    # 152 of 160 correct, as float32 accuracy and as history.csv stores it, reaches 0.95
    assert first_epoch_reaching([0.9, float(np.float32(152 / 160))], 0.95) == 2
    assert first_epoch_reaching([0.9, 151 / 160], 0.95) is None


def test_summary_means_and_seed_to_seed_std():
    rows = pd.DataFrame(
        {
            "mask_fraction": [0.0, 0.0, 0.2, 0.2],
            "seed": [0, 1, 0, 1],
            "val_accuracy": [0.9, 0.8, 0.95, 0.95],
            "test_accuracy": [0.9, 0.7, 0.9, 0.9],
            "test_auroc": [0.9] * 4,
            "epochs_to_target": [2, None, 1, 3],
            "val_acc_epoch_std": [0.01] * 4,
            "gini": [0.1, 0.2, 0.3, 0.5],
            "top10_mass": [0.2] * 4,
            "perturb_drop_top": [0.1, 0.3, 0.4, 0.4],
            "perturb_drop_random": [0.0] * 4,
        }
    )
    summary = summarize(rows).set_index("mask_fraction")
    assert summary.loc[0.0, "test_accuracy_mean"] == pytest.approx(0.8)
    assert summary.loc[0.0, "test_accuracy_std"] == pytest.approx(0.1)
    assert summary.loc[0.2, "gini_std"] == pytest.approx(0.1)
    assert (
        summary.loc[0.0, "converged_runs"] == 1 and summary.loc[0.2, "epochs_to_target_mean"] == 2
    )
    table = markdown_table(
        summary.reset_index(), SweepConfig(data=["x"], out="o", target_accuracy=0.9)
    )
    assert (
        "| 0.00 | 2 | 0.8000 ± 0.1000 |" in table and "2.0 (1/1)" not in table and "(1/2)" in table
    )
    # one seed: the value alone (a "± 0.0000" would claim a spread that was not measured)
    single = markdown_table(
        summarize(rows[rows["seed"] == 0]), SweepConfig(data=["x"], out="o", target_accuracy=0.9)
    )
    assert "| 0.00 | 1 | 0.9000 | 0.9000 |" in single and "±" not in single.split("\n", 2)[2]
    # two runs, one figure missing in one: that figure is one value, shown alone
    gap = rows.assign(gini=[0.1, float("nan"), 0.3, 0.5])
    table = markdown_table(summarize(gap), SweepConfig(data=["x"], out="o", target_accuracy=0.9))
    first = next(line for line in table.splitlines() if line.startswith("| 0.00 |"))
    assert "| 0.100 |" in first and "0.8000 ± 0.1000" in first


def test_invalid_sweep_settings_are_rejected():
    for kwargs, message in (
        ({"fractions": [0.0, 1.0]}, "fractions"),
        ({"fractions": [0.1, 0.1]}, "duplicates"),
        ({"seeds": []}, "seeds"),
        ({"method": "lime"}, "unknown method"),
        ({"perturb_fraction": 0.0}, "perturb-fraction"),
        ({"epochs": 2, "warmup_epochs": 2}, "must exceed --warmup-epochs"),
        ({"seeds": [0, -1]}, re.escape("--seeds must be in [0, 2**32)")),
        # the training options, checked as `attngen train` checks them, before anything is written
        ({"batch_size": 0}, "--batch-size must be >= 1, got 0"),
        ({"learning_rate": -1.0}, "--learning-rate must be > 0"),
        ({"warmup_epochs": -1}, "--warmup-epochs and --start-epoch must be >= 0"),
        ({"max_train": 0}, "--max-train must be >= 2, got 0"),
    ):
        with pytest.raises(ValueError, match=message):
            SweepConfig(data=["x"], out="o", **kwargs)


def test_sweep_settings_hold_absolute_data_paths(tmp_path, monkeypatch):
    """The sweep resumes from another working directory (a job scheduler's), also one stored
    before the paths were absolute (read relative to where it ran)."""
    from attngen_keras.sweep import _check_settings, _write_settings

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_text("seq,label\nACGT,a\n")
    out = tmp_path / "sweep"
    monkeypatch.chdir(tmp_path / "data")
    here = SweepConfig(data=["d.csv"], out=str(out), fractions=[0.1], seeds=[0])
    assert here.data == [str(tmp_path / "data" / "d.csv")]
    _write_settings(here, _check_settings(here))
    monkeypatch.chdir(tmp_path)
    _check_settings(SweepConfig(data=["data/d.csv"], out=str(out), fractions=[0.1], seeds=[0]))
    stored = json.loads((out / "sweep.json").read_text())
    stored["data"] = ["d.csv"]
    (out / "sweep.json").write_text(json.dumps(stored))
    monkeypatch.chdir(tmp_path / "data")
    _check_settings(SweepConfig(data=["d.csv"], out=str(out), fractions=[0.1], seeds=[0]))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunError, match="different settings \\(data: "):
        _check_settings(SweepConfig(data=["other.csv"], out=str(out), fractions=[0.1], seeds=[0]))


@pytest.fixture(scope="module")
def motif_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "motifs.csv"
    planted_motif_data(n=400, length=60, motifs=("TGACTCA",), seed=3).to_frame().to_csv(
        path, index=False
    )
    return path


@pytest.mark.slow
def test_sweep_writes_tables_plots_and_resumes(motif_csv, tmp_path, capsys):
    out = tmp_path / "sweep"
    config = SweepConfig(
        data=[str(motif_csv)], out=str(out), fractions=[0.0, 0.3], seeds=[0], epochs=3,
        warmup_epochs=1, batch_size=32, target_accuracy=0.8, eval_n=60,
    )  # fmt: skip
    frame = run_sweep(config, verbose=0)
    assert sorted(frame["mask_fraction"]) == [0.0, 0.3] and len(frame) == 2
    for _, row in frame.iterrows():
        history = pd.read_csv(config.run_dir(row["mask_fraction"], 0) / "history.csv")
        assert row["epochs_to_target"] == first_epoch_reaching(history["val_accuracy"], 0.8) or (
            np.isnan(row["epochs_to_target"]) and history["val_accuracy"].max() < 0.8
        )
        assert history["mask_fraction"].iloc[-1] == pytest.approx(row["mask_fraction"])
        assert 0 <= row["gini"] <= 1 and -1 <= row["perturb_drop_top"] <= 1
        assert 0 <= row["test_accuracy"] <= 1
    saved = pd.read_csv(out / "sweep.csv")
    assert len(saved) == 2 and "perturb_drop_top" in saved
    assert (out / "sweep.md").read_text().count("\n") == 4  # header, rule, two fractions
    for name in ("accuracy_vs_fraction.png", "tradeoff.png", "convergence.png"):
        assert (out / name).stat().st_size > 10_000, name

    # a second invocation with one more seed trains only the new runs
    capsys.readouterr()
    before = {p: p.stat().st_mtime for p in out.glob("runs/*/model.keras")}
    config.seeds = [0, 1]
    frame = run_sweep(config, verbose=0)
    printed = capsys.readouterr().out
    assert printed.count("done before, kept") == 2 and printed.count(": training") == 2
    assert {p: p.stat().st_mtime for p in before} == before and len(frame) == 4
    assert len(pd.read_csv(out / "sweep.csv")) == 4
    assert json.loads((out / "sweep.json").read_text())["seeds"] == [0, 1]

    # asking for fewer runs trains nothing and keeps the earlier runs in the tables
    config.fractions, config.seeds = [0.3], [1]
    frame = run_sweep(config, verbose=0)
    printed = capsys.readouterr().out
    assert printed.count("done before, kept") == 1 and ": training" not in printed
    assert "the tables also hold 3 earlier runs" in printed
    assert len(frame) == 4 and len(pd.read_csv(out / "sweep.csv")) == 4
    assert (out / "sweep.md").read_text().count("\n") == 4
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["fractions"] == [0.0, 0.3] and saved["seeds"] == [0, 1]

    # killed after a run's training but before its row was written: scored, not trained again,
    # and no word of an --overwrite that sweep does not have
    row, model = config.run_dir(0.3, 1) / ROW_FILE, config.run_dir(0.3, 1) / "model.keras"
    trained_at = model.stat().st_mtime
    row.unlink()
    run_sweep(config, verbose=0)
    printed = capsys.readouterr().out
    assert "[1/1] mask fraction 0.30, seed 1: trained before, scoring" in printed
    assert ": training" not in printed and "--overwrite" not in printed
    assert row.exists() and model.stat().st_mtime == trained_at

    # changing the budget of an existing sweep is refused, not mixed in
    with pytest.raises(RunError, match="different settings.*epochs"):
        run_sweep(
            SweepConfig(data=[str(motif_csv)], out=str(out), fractions=[0.0], seeds=[0], epochs=5)
        )


def test_fractions_sharing_a_run_directory_are_refused():
    with pytest.raises(ValueError, match="first two decimals"):
        SweepConfig(data=["x"], out="o", fractions=[0.12, 0.123])


def test_a_sweep_its_data_cannot_score_leaves_no_out_directory(tmp_path):
    """No test split (a full-sequence layout without test/): refused before anything is written."""
    from helpers import write_full_sequence_dir

    rng = np.random.default_rng(0)
    rows = [(f"r{i}", "ab"[i % 2], "".join(rng.choice(list("ACGT"), 40))) for i in range(40)]
    data = write_full_sequence_dir(tmp_path / "data", {"train": rows})
    out = tmp_path / "sweep"
    config = SweepConfig(data=[str(data)], out=str(out), fractions=[0.1], seeds=[0], epochs=1,
                         warmup_epochs=0, cache_dir=str(tmp_path / "cache"))  # fmt: skip
    with pytest.raises(ValueError, match="has no test split to score the sweep on"):
        run_sweep(config)
    assert not out.exists()
    # the loader's warning says what happened, in words that fit every command that loads the data
    from attngen_keras.data import load_dataset

    with pytest.warns(UserWarning) as caught:
        load_dataset(str(data), cache_dir=None)
    assert any(
        "no test split (the splits are train, val; a test split is carved only from a source "
        "without splits of its own)" in str(w.message)
        for w in caught
    )
