"""Integration tests on the real data in ../shared/data (skipped when absent).

Tests marked `slow` train on the full 100,000-sequence human_or_fungus set
(minutes on 2 CPU cores); `.ci/run` runs them after the fast suite.
"""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path

from attngen_keras.data import DataError, load_dataset


def test_nontata_promoters_full_sequence_layout(tmp_path):
    root = shared_path("genomic_benchmarks_seq", "human_nontata_promoters_resplit")
    ds = load_dataset(str(root), cache_dir=str(tmp_path), val_fraction=0.1, seed=0)
    assert ds.kind == "full_sequence_dir" and ds.length == 251
    assert ds.class_names == ["negative", "positive"]
    counts = ds.summary()
    # counts from ../shared/data/README.md: train 3,089 / 3,686, test 1,030 / 1,229
    assert counts["test"] == {"negative": 1030, "positive": 1229}
    assert counts["train"]["negative"] + counts["val"]["negative"] == 3089
    assert counts["train"]["positive"] + counts["val"]["positive"] == 3686
    assert np.all(ds["test"].lengths == 251)


def test_enhancers_cohn_full_sequence_layout(tmp_path):
    root = shared_path("genomic_benchmarks_seq", "human_enhancers_cohn_resplit")
    ds = load_dataset(str(root), cache_dir=str(tmp_path), val_fraction=0.0)
    assert ds.length == 500
    assert ds.summary() == {
        "train": {"negative": 2606, "positive": 2606},
        "test": {"negative": 868, "positive": 868},
    }


@pytest.mark.slow
def test_human_or_fungus_interval_list_with_references(tmp_path):
    root = shared_path("genomic_benchmarks", "human_or_fungus")
    refs = shared_path("references")
    ds = load_dataset(str(root), str(refs), cache_dir=str(tmp_path), val_fraction=0.1)
    assert ds.kind == "interval_list" and ds.length == 200
    assert ds.summary()["test"] == {"fungus": 12500, "human": 12500}
    assert len(ds["train"]) + len(ds["val"]) == 75000
    # the cut sequences are real genome windows without N (README: windows never contain N)
    assert not np.any(ds["test"].tokens == 4)
    frame = pd.read_csv(root / "test" / "human.csv.gz")
    assert set(frame.columns) == {"id", "region", "start", "end", "strand"}
    # second load comes from the compact cache
    import time

    start = time.perf_counter()
    again = load_dataset(str(root), str(refs), cache_dir=str(tmp_path), val_fraction=0.1)
    assert time.perf_counter() - start < 10
    np.testing.assert_array_equal(again["test"].tokens, ds["test"].tokens)


def test_demo_human_or_worm_without_genomes_names_missing_reference(tmp_path):
    root = shared_path("genomic_benchmarks", "demo_human_or_worm")
    with pytest.raises(DataError) as info:
        load_dataset(str(root), str(shared_path("references")), cache_dir=str(tmp_path))
    message = str(info.value)
    assert "missing reference genome" in message
    assert "Caenorhabditis_elegans.WBcel235.dna.toplevel.fa.gz" in message or (
        "Homo_sapiens.GRCh38.dna.toplevel.fa.gz" in message
    )


@pytest.mark.slow
@pytest.mark.parametrize("model", ["attngen", "cnn", "gb-cnn"])
def test_train_on_human_or_fungus_reaches_097(model, tmp_path):
    """The foundation issue's acceptance run: 3 epochs, test accuracy >= 0.97."""
    root = shared_path("genomic_benchmarks", "human_or_fungus")
    refs = shared_path("references")
    run = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "attngen_keras.cli", "train", "--data", str(root),
         "--references", str(refs), "--model", model, "--epochs", "3", "--out", str(run)],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["n"] == 25000
    assert metrics["test"]["accuracy"] >= 0.97, metrics
    history = pd.read_csv(run / "history.csv")
    if model == "attngen":
        np.testing.assert_allclose(history["mask_fraction"], [0.0, 0.075, 0.15])


@pytest.mark.slow
def test_demo_command_runs_offline(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "attngen_keras.cli", "demo", "--out", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| attngen |" in result.stdout and "| cnn |" in result.stdout
    for model in ("attngen", "cnn"):
        metrics = json.loads((tmp_path / "demo" / model / "metrics.json").read_text())
        assert metrics["test"]["n"] == 1000
        assert metrics["test"]["accuracy"] >= 0.9  # measured ~0.98 for both
        assert (tmp_path / "demo" / model / "training_curves.png").stat().st_size > 10_000
