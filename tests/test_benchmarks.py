"""The benchmark scripts' own logic: aggregation, selection, references and counters."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared_path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


paper = _load("paper")
speed = _load("speed")


def _rows():
    """Two seeds of four models; mask 0.30 has the best validation but worse test accuracy."""
    figures = {
        "attngen_m0.15": (0.95, 0.96),
        "attngen_m0.30": (0.97, 0.94),
        "cnn": (0.94, 0.95),
        "gb_cnn": (0.90, 0.91),
    }
    rows = []
    for model, (val, test) in figures.items():
        for seed, jitter in ((0, -0.005), (1, 0.005)):
            rows.append({
                "dataset": "toy", "model": model, "seed": seed, "val_accuracy": val + jitter,
                "test_accuracy": test + jitter, "test_auroc": 0.99, "epochs_to_target": 2 if model != "gb_cnn" else None,
                "seconds_to_target": 10.0 if model != "gb_cnn" else None, "val_acc_epoch_std": 0.01, "val_acc_fluctuation": 0.01, "gini": 0.2,
                "perturb_drop_top": 0.3, "perturb_drop_random": 0.05, "mean_epoch_seconds": 5.0, "val_curve": [0.9, val],
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_paper_best_fraction_is_chosen_on_validation_not_test():
    summary = paper.summarize(_rows())
    assert paper.best_attngen(summary, "toy") == "attngen_m0.30"
    bench = paper.Benchmark("toy", ["x"], goal=0.95)
    results, details = paper.paper_json(summary, [bench])
    entry = results["toy"]
    assert entry["attngen_best"]["mask_fraction"] == 0.30
    assert entry["attngen"]["mask_fraction"] == 0.15
    # the verdict uses the validation-chosen model's test accuracy (0.94), not the better test (0.96)
    verdict = details["toy"]["verdict"]
    assert verdict["attngen_best_minus_better_cnn"] == pytest.approx(0.94 - 0.95)
    assert verdict["attngen_best_ahead_of_both_cnns"] is False
    assert verdict["attngen_default_minus_better_cnn"] == pytest.approx(0.01)
    assert verdict["goal_met"] is False


def test_paper_json_has_the_promised_shape_and_seed_statistics():
    summary = paper.summarize(_rows())
    results, _ = paper.paper_json(summary, [paper.Benchmark("toy", ["x"])])
    json.dumps(results)  # serializable
    for key in ("attngen", "cnn", "gb_cnn"):
        entry = results["toy"][key]
        for field in (
            "test_accuracy_mean",
            "test_accuracy_std",
            "val_accuracy_mean",
            "epochs_to_target_mean",
            "seeds",
        ):
            assert field in entry
        assert entry["seeds"] == 2
    assert results["toy"]["cnn"]["test_accuracy_mean"] == pytest.approx(0.95)
    # sample std over the two seeds (0.945, 0.955)
    assert results["toy"]["cnn"]["test_accuracy_std"] == pytest.approx(0.005 * np.sqrt(2))
    # a model that never reached the target has no mean, and 0 converged seeds
    assert results["toy"]["gb_cnn"]["epochs_to_target_mean"] is None
    assert results["toy"]["gb_cnn"]["converged_seeds"] == 0


def test_paper_markdown_and_learning_curves(tmp_path):
    frame = _rows()
    summary = paper.summarize(frame)
    results, details = paper.paper_json(summary, [paper.Benchmark("toy", ["x"], goal=0.9)])
    table = paper.markdown(summary, results, details)
    assert "| attngen_m0.30 | 0.9400 ± 0.0071 |" in table
    assert "| gb_cnn |" in table and "never" in table
    assert "Goal AttnGen ≥ 0.90: met" in table
    path = tmp_path / "curves.png"
    paper.plot_learning_curves(frame, results, details, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_paper_convergence_is_recomputed_from_the_history(tmp_path):
    pd.DataFrame({
        "epoch": [0, 1, 2, 3], "val_accuracy": [0.80, 0.90, 0.86, 0.95], "epoch_seconds": [9.0, 4.0, 4.0, 4.0],
    }).to_csv(tmp_path / "history.csv", index=False)  # fmt: skip
    row = paper.convergence({"model": "cnn"}, tmp_path, 0.9)
    assert (row["epochs_to_target"], row["seconds_to_target"]) == (2, 13.0)
    assert row["val_acc_fluctuation"] == pytest.approx((0.04 + 0.09) / 2)
    never = paper.convergence({"model": "cnn"}, tmp_path, 0.99)
    assert never["epochs_to_target"] is None and never["seconds_to_target"] is None


def test_paper_run_keys_map_to_models_and_fractions(tmp_path):
    bench = paper.Benchmark("toy", ["data.csv"], epochs=3, max_train=100)
    keys = paper.model_keys([0.15, 0.3])
    assert keys == ["attngen_m0.15", "attngen_m0.30", "cnn", "gb_cnn"]
    configs = {key: paper.train_config(bench, key, 1, tmp_path, 64) for key in keys}
    assert (configs["attngen_m0.30"].model, configs["attngen_m0.30"].mask_fraction) == (
        "attngen",
        0.3,
    )
    assert configs["gb_cnn"].model == "gb-cnn"
    assert all(
        c.patience == 0 and c.epochs == 3 and c.seed == 1 and c.max_train == 100
        for c in configs.values()
    )
    assert len({c.out for c in configs.values()}) == len(keys)


def test_reference_pipeline_reads_every_file_and_one_hot_encodes(tmp_path):
    rng = np.random.default_rng(0)
    texts = {}
    for label in ("negative", "positive"):
        (tmp_path / label).mkdir()
        for i in range(25):
            text = "".join(rng.choice(list("ACGT"), 40))
            (tmp_path / label / f"{i}.txt").write_text(text)
            texts[text.lower()] = label
    pipeline, vocabulary, _ = speed.reference_pipeline(tmp_path, ["negative", "positive"])
    assert sorted(vocabulary) == list("acgt")
    seen = 0
    for x, y in pipeline:
        x, y = x.numpy(), y.numpy()
        assert x.shape[1:] == (40, 4) and np.all(x.sum(axis=-1) == 1)
        for row, label in zip(x, y):
            decoded = "".join(vocabulary[i] for i in row.argmax(axis=-1))
            assert ["negative", "positive"][label] == texts[decoded]
            seen += 1
    assert seen == 50
    assert speed.reference_pipeline_epoch(tmp_path, ["negative", "positive"], repeats=1)[1] == 50


def test_train_step_flops_counts_the_convolutions():
    model = speed.build_compiled("cnn", 200)
    flops = speed.train_step_flops(model, 200)
    # forward multiply-adds of the three convolutions (stem, two blocks), x2 for FLOPs
    forward = 2 * speed.BATCH * (200 * 4 * 9 * 64 + 100 * 64 * 5 * 64 + 50 * 64 * 5 * 64)
    # forward + backward (input and weight gradients) is about 3x the forward pass
    assert 2.5 * forward < flops < 4 * forward


def test_genome_windows_are_real_n_free_and_of_both_classes(tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "REFERENCES", shared_path("references"))
    files = {label: tmp_path / f"{label}.fa" for label in ("fungus", "human")}
    speed.write_genome_windows(files, 30, length=50, seed=1)
    for label, path in files.items():
        lines = path.read_text().splitlines()
        headers, sequences = lines[0::2], lines[1::2]
        assert len(sequences) == 30 and all(h.startswith(f">{label}_") for h in headers)
        assert all(len(s) == 50 and set(s) <= set("ACGT") for s in sequences)
        assert len(set(sequences)) == 30


def test_scale_fasta_files_hold_the_csv_rows_by_class_and_the_report_reads_them(tmp_path):
    speed.write_scale_csv(tmp_path / "rows.csv", 300, length=40, seed=5)
    rows = pd.read_csv(tmp_path / "rows.csv")
    files = speed.write_scale_fasta(tmp_path, 300, length=40, seed=5)
    assert not (tmp_path / "rows.csv").exists()  # the intermediate CSV is removed
    for path, label in zip(files, ("pos", "neg")):
        lines = Path(path).read_text().splitlines()
        assert lines[0] == f">{label}1" and lines[2] == f">{label}2"
        assert lines[1::2] == rows.loc[rows["label"] == label, "seq"].tolist()
    machine = {"cpu": "x", "cores": 2, "memory_gib": 1, "tensorflow": "t", "keras": "k"}
    section = {"length": 40, "in_memory_max": 10, "sizes": [
        {"sequences": 10, "fasta_gib": 0.5, "streamed": {"seconds": 1.0, "peak_rss_gib": 0.9},
         "in_memory": {"seconds": 2.0, "peak_rss_gib": 3.0}},
        {"sequences": 20, "fasta_gib": 1.0, "streamed": {"seconds": 2.0, "peak_rss_gib": 1.0}},
    ]}  # fmt: skip
    table = speed.report_scale_fasta({"machine": machine, "scale_fasta": section})
    assert "| 10 | 0.50 GiB | 1.0 s / **0.90 GiB** | 2.0 s / 3.00 GiB |" in table
    assert "| 20 | 1.00 GiB | 2.0 s / **1.00 GiB** | not run |" in table


def test_time_to_accuracy_warm_up_leaves_the_model_untrained():
    import tensorflow as tf

    model = speed.build_compiled("attngen", 50, mask_fraction=0.0)
    x = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (256, 50))]
    data = tf.data.Dataset.from_tensor_slices((x, np.ones(256, "float32"))).batch(128)
    before = [v.numpy().copy() for v in model.weights]
    speed._trace_then_reset(model, data, data)
    assert model.train_function is not None  # traced
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))
    state = [v for v in model.optimizer.variables if not v.path.endswith("learning_rate")]
    assert len(state) > 2 and all(
        not np.any(v.numpy()) for v in state
    )  # step count and Adam moments


def test_speed_report_and_plots_handle_unreached_targets_and_projections(tmp_path):
    model_entry = {"step_ms_median": 80.0, "sequences_per_second": 1600.0, "achieved_gflops": 30.0,
                   "fraction_of_matmul_peak": 0.3}  # fmt: skip
    results = {
        "machine": {"cpu": "test cpu", "cores": 2, "memory_gib": 8, "tensorflow": "2.x", "keras": "3.x", "gpu": []},
        "pipeline": {"epoch_sequences": 100, "reference_epoch_seconds": 2.0, "reference_examples_per_second": 50.0,
                     "files": 1000, "cache_build_seconds": 1.0, "cache_build_peak_rss_gib": 0.5,
                     "pipeline_epoch_seconds": 0.1, "pipeline_examples_per_second": 1000.0,
                     "pipeline_speedup_vs_reference": 20.0},
        "pipeline_over_training_rate": 40.0,
        "step_time": {"models": {k: model_entry for k in speed.MODELS}, "matmul_peak_gflops": 100.0,
                      "attngen_over_cnn_step_time": 1.2, "attngen_over_gb_cnn_step_time": 2.0,
                      "saliency_layer_profile": {"a": 1.0, "b": 2.0, "c": 3.0}},
        "time_to_accuracy": {
            "attngen": {"seconds_to_target": 30.0, "sequences_to_target": 6400, "curve_seconds_accuracy": [[10, 0.9], [30, 0.98]]},
            "cnn": {"seconds_to_target": None, "sequences_to_target": None, "curve_seconds_accuracy": [[10, 0.9]]},
            "gb-cnn": {"seconds_to_target": None, "sequences_to_target": None, "curve_seconds_accuracy": [[10, 0.5]]},
        },
        "serving": {"serving_latency_ms_p50_batch1": 1.0, "serving_latency_ms_p99_batch1": 3.0,
                    "serving_sequences_per_second_batch256": 5000.0,
                    "inprocess_predict_sequences_per_second_batch256": 4000.0, "serving_over_inprocess_throughput": 1.25},
        "memory": {"train_sequences": 67500, "peak_rss_gib": 1.5},
        "scale": {
            "sizes": [
                {"sequences": 10, "cache_build_seconds": 1.0, "cache_build_peak_rss_gib": 0.4, "train_sequences": 7,
                 "epoch_seconds": 2.0, "projected": False, "steps_run": 1, "steps_per_epoch": 1, "peak_rss_gib": 0.6},
                {"sequences": 100, "cache_build_seconds": 2.0, "cache_build_peak_rss_gib": 0.5, "train_sequences": 70,
                 "epoch_seconds": 20.0, "projected": True, "steps_run": 3, "steps_per_epoch": 10, "peak_rss_gib": 0.7},
            ],
            "predict": {"sequences": 100, "seconds": 1.0, "sequences_per_second": 100.0, "rss_gib_after_first_10pct": 0.5,
                        "rss_gib_end": 0.52, "rss_growth_gib_after_first_10pct": 0.02, "rss_gib_samples": [[0, 0.4], [1, 0.52]]},
        },
    }  # fmt: skip
    table = speed.report(results)
    assert "| cnn: training seconds to 97% val acc | not reached |" in table
    assert "**1.20x** | ≤ 1.15x |" in table
    assert "(projected from 3 of 10 steps)" in table
    assert "growth +20 MiB" in table
    speed.plot(results, tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "predict_memory.png",
        "scale.png",
        "time_to_accuracy.png",
    ]


faithfulness = _load("faithfulness")


def test_faithfulness_summary_table_and_planted_set(tmp_path):
    rows = [
        {"dataset": "d", "variant": v, "seed": s, "test_accuracy": acc, "deletion_top": top,
         "deletion_random": 0.95, "sufficiency_top": 0.9, "sufficiency_random": 0.6}
        for v, acc, top in (("paper", 0.98, 0.95), ("faithful", 0.97, 0.55))
        for s in (0, 1)
    ]  # fmt: skip
    rows[3]["deletion_top"] = 0.65  # faithful, seed 1
    summary = faithfulness.summarize(pd.DataFrame(rows))
    faithful = summary[summary["variant"] == "faithful"].iloc[0]
    assert faithful["runs"] == 2
    assert faithful["deletion_top_mean"] == pytest.approx(0.60)
    assert faithful["deletion_top_std"] == pytest.approx(np.std([0.55, 0.65], ddof=1))
    table = faithfulness.markdown(summary)
    assert "| d | faithful | 2 | 0.9700 ± 0.0000 | 0.600 ± 0.071 |" in table
    assert table.count("\n") == 4  # header, rule, two rows
    sequences, truth = faithfulness.planted_dataset(tmp_path / "planted", n=40, length=50)
    frame, intervals = pd.read_csv(sequences), pd.read_csv(truth)
    assert len(frame) == 40 and frame["seq"].str.len().eq(50).all()
    # every positive carries one 10-bp motif instance; decoys have none in the ground truth
    positives = set(frame.loc[frame["label"] == "pos", "id"])
    assert (
        set(intervals["id"]) == positives and (intervals["end"] - intervals["start"]).eq(10).all()
    )
    assert set(faithfulness.VARIANTS) >= {"paper", "faithful", "cnn"}


def test_faithfulness_finished_only_summarizes_without_training(tmp_path, monkeypatch):
    row = {"dataset": "d", "variant": "paper", "seed": 0, "test_accuracy": 0.9}
    (tmp_path / "d" / "paper_s0").mkdir(parents=True)
    (tmp_path / "d" / "paper_s0" / faithfulness.ROW_FILE).write_text(json.dumps(row))

    def no_training(*args, **kwargs):
        raise AssertionError("--finished-only must not train")

    monkeypatch.setattr(faithfulness, "train_run", no_training)
    dataset = faithfulness.Dataset("d", ["unused.csv"], epochs=1)
    frame = faithfulness.run_all([dataset], ["paper", "cnn"], [0, 1], tmp_path, 10, True)
    assert frame.to_dict("records") == [row]
    with pytest.raises(AssertionError, match="must not train"):
        faithfulness.run_all([dataset], ["paper"], [0, 1], tmp_path, 10)


def test_faithfulness_runs_a_reserved_planted_set_only_when_named(tmp_path, monkeypatch):
    names = ["planted95", "heldout95", "heldout95b", "heldout95c", "heldout95d", "heldout95e"]
    monkeypatch.setattr(
        faithfulness, "datasets",
        lambda work, quick: [faithfulness.Dataset(n, ["unused.csv"]) for n in names],
    )  # fmt: skip
    chosen = []

    variants = []

    def stop(selected, chosen_variants, *args, **kwargs):
        chosen.append([d.name for d in selected])
        variants.append(chosen_variants)
        raise KeyboardInterrupt

    monkeypatch.setattr(faithfulness, "run_all", stop)
    assert {"heldout95b", "heldout95c", "heldout95d", "heldout95e"} <= set(
        faithfulness.RESERVED_SETS
    )
    for argv in ([], ["--datasets", "heldout95c"], ["--datasets", "heldout95d"]):
        with pytest.raises(KeyboardInterrupt):
            faithfulness.main([*argv, "--work", str(tmp_path), "--out", str(tmp_path)])
    assert chosen == [["planted95", "heldout95"], ["heldout95c"], ["heldout95d"]]
    # a full run trains each configuration once: the aliases are the same options
    assert "faithful_gate_sharp2" not in variants[0] and "faithful" in variants[0]
    assert "faithful_w15" not in variants[0] and "faithful_mean" in variants[0]
    for alias, name in faithfulness.ALIASES.items():
        assert faithfulness.variant_options(alias) == faithfulness.variant_options(name)


def test_faithfulness_refuses_a_finished_run_trained_under_an_older_default(tmp_path):
    import re
    import zipfile

    from attngen_keras.models.classifiers import PRESETS

    run = tmp_path / "d" / "faithful_s0"
    run.mkdir(parents=True)
    row = {"dataset": "d", "variant": "faithful", "seed": 0, "test_accuracy": 0.9}
    (run / faithfulness.ROW_FILE).write_text(json.dumps(row))
    dataset = faithfulness.Dataset("d", ["unused.csv"], epochs=1)

    def write_model(drop=(), **options):
        config = {**PRESETS["faithful"], **options}
        config = {key: value for key, value in config.items() if key not in drop}
        with zipfile.ZipFile(run / "model.keras", "w") as archive:
            archive.writestr("config.json", json.dumps({"class_name": "AttnGen", "config": config}))

    def summarized(variant="faithful"):
        return faithfulness.run_all([dataset], [variant], [0], tmp_path, 10, finished_only=True)

    assert summarized().to_dict("records") == [row]  # no model.keras (a row by hand): reused
    write_model(seed=0)  # today's default: reused
    assert summarized().to_dict("records") == [row]
    today = PRESETS["faithful"]["faithfulness_weight"]
    old = today + 0.5
    write_model(faithfulness_weight=old)
    with pytest.raises(SystemExit, match=re.escape(f"faithfulness_weight: {old} -> {today}")):
        summarized()
    # runs made before the learned gate did not store it, nor the sharpness: the constructor's
    # defaults (no gate, sharpness 1) applied then
    before_gate = ("attention_window_gate", "attention_window_sharpness")
    # the default of 2026-11-28 before the gate is its own variant, and not today's default
    write_model(drop=before_gate)
    assert faithfulness.stale_options("faithful_lme_w2", run) == []
    with pytest.raises(SystemExit, match=re.escape("attention_window_gate: False -> True")):
        summarized()
    # the default until 2026-11-28 (the window's mean) is its own variant, and a run of it is
    # not filed under today's default
    write_model(drop=before_gate, attention_window_pooling="mean", faithfulness_weight=1.5)
    assert faithfulness.stale_options("faithful_mean", run) == []
    with pytest.raises(
        SystemExit, match=re.escape("attention_window_pooling: 'mean' -> 'log_mean_exp'")
    ):
        summarized()
    assert "inference: 'soft' -> 'hard'" in faithfulness.stale_options("faithful_hard", run)
    # so are the default until 2026-11-27 and the variants measured against it
    write_model(drop=before_gate, attention_window_pooling="mean", faithfulness_weight=2.0)
    assert faithfulness.stale_options("faithful_w2", run) == []
    assert faithfulness.stale_options("faithful_lme_w2", run) == [
        "attention_window_pooling: 'mean' -> 'log_mean_exp'"
    ]
    assert faithfulness.stale_options("cnn", run) == []  # a CNN has no variant options
    # an option older runs did not store: the constructor's default applied then (no window)
    write_model(
        drop=("attention_window", "attention_window_weight", "attention_window_pooling")
        + before_gate,
        faithfulness_weight=2.0,
    )
    assert faithfulness.stale_options("faithful_nowindow", run) == []
    assert "attention_window: 1 -> 9" in faithfulness.stale_options("faithful_w2", run)
    (run / "model.keras").write_text("not a zip")
    with pytest.raises(SystemExit, match="not a readable Keras model file"):
        summarized()


rank_profile = _load("planted_rank_profile")


def test_planted_rank_profile_by_offset(tmp_path, capsys):
    scores = np.array([[0.0, 1.0, 3.0, 2.0, 0.5], [4.0, 3.0, 2.0, 1.0, 0.0], [9.0] * 5])
    ids = np.array(["a", "b", "unplanted"])
    intervals = pd.DataFrame({"id": ["a", "b"], "start": [1, 0], "end": [3, 2]})
    offsets, means, counts = rank_profile.rank_profile(scores, ids, intervals, flank=1)
    # a: positions 0..3 rank 0, 0.4, 0.8, 0.6; b: position -1 is outside, 0..2 rank 0.8, 0.6, 0.4
    assert offsets.tolist() == [-1, 0, 1, 2]
    np.testing.assert_allclose(means, [0.0, 0.6, 0.7, 0.5])
    assert counts.tolist() == [1, 2, 2, 2]
    with pytest.raises(ValueError, match="several widths"):
        rank_profile.rank_profile(
            scores, ids, pd.DataFrame({"id": ["a", "b"], "start": [0, 0], "end": [1, 2]})
        )
    explain = tmp_path / "explain"
    explain.mkdir()
    np.savez(explain / "importance.npz", scores=scores, ids=ids)
    intervals.to_csv(tmp_path / "planted.csv", index=False)
    out = tmp_path / "profile.json"
    assert (
        rank_profile.main(
            [str(explain), str(tmp_path / "planted.csv"), "--flank", "1", "--out", str(out)]
        )
        == 0
    )
    assert "| 1 | yes | 0.700 | 2 |" in capsys.readouterr().out
    assert json.loads(out.read_text())["mean_rank_percentile"] == pytest.approx(
        [0.0, 0.6, 0.7, 0.5]
    )
    assert rank_profile.main([str(tmp_path / "nothing"), str(tmp_path / "planted.csv")]) == 2


faithfulness_cost = _load("faithfulness_cost")


def test_faithfulness_cost_table_and_variants():
    result = {
        "cnn": {"step_ms_median": 10.0, "step_ms_p10_p90": [9.0, 11.0], "over_cnn": 1.0, "over_paper": 0.5},
        "paper": {"step_ms_median": 20.0, "step_ms_p10_p90": [19.0, 22.0], "over_cnn": 2.0, "over_paper": 1.0},
    }  # fmt: skip
    table = faithfulness_cost.markdown(result)
    assert "| paper | 20.0 | 19.0-22.0 | 2.00x | 1.00x |" in table and table.count("\n") == 4
    options = {name: opts for name, (_, opts) in faithfulness_cost.VARIANTS.items()}
    assert options["faithful F=1/3"] == {"faithfulness_batch_fraction": 1 / 3}
    assert {"cnn", "paper", "faithful (F=1, default)"} <= set(options)


def test_backends_report_names_each_variant_against_the_same_cnn():
    backends = _load("backends")

    def row(model, preset, fraction, seconds):
        return {"batch_size": 256, "model": model, "preset": preset,
                "faithfulness_batch_fraction": fraction, "epoch_seconds": seconds,
                "epoch_cpu_seconds": seconds, "predict_sequences_per_second": 1000.0,
                "val_accuracy": 0.99}  # fmt: skip

    results = {
        "machine": {"cpu": "cpu", "cores": 2, "gpu": None}, "sequences": 100, "length": 200,
        "epochs": 2, "repeat": 10,
        "backends": {"jax": {"versions": {"keras": "3"}, "rows": [
            row("attngen", "faithful", 1.0, 3.0), row("attngen", "faithful", 0.5, 2.0),
            row("cnn", None, None, 2.0),
        ]}},
    }  # fmt: skip
    table = backends.report(results)
    assert "the training split repeated 10 times" in table
    assert "| faithful | 3.00 (3.0) | 2.00 (2.0) | **1.50x**" in table
    assert (
        "| faithful, faithfulness batch fraction 0.5 | 2.00 (2.0) | 2.00 (2.0) | **1.00x**" in table
    )


def test_planted_errors_on_hand_built_maps(tmp_path, capsys, monkeypatch):
    planted_errors = _load("planted_errors")
    motif = "ACGTACGTAC"
    background = "T" * 30
    # two sequences of 30 nt, the motif planted at 10-19; sequence b also holds a copy of
    # its first 7 bases at 0-6, far from the interval
    a = background[:10] + motif + background[20:]
    b = motif[:7] + background[7:10] + motif + background[20:]
    scores = np.zeros((3, 30), "float32")
    scores[0, 10:20] = np.linspace(2.0, 1.0, 10)  # a: the planted bases first
    scores[1, 10:20] = np.linspace(2.0, 1.0, 10)
    scores[1, 3] = 3.0  # b: one far false positive above them all
    importance = {
        "ids": np.array(["a", "b", "unplanted"]),
        "scores": scores,
        "sequences": np.array([a, b, background]),
        "probs": np.array([[0.95], [0.3], [0.1]], "float32"),
    }
    planted = pd.DataFrame({"id": ["a", "b"], "start": [10, 10], "end": [20, 20]})
    result = planted_errors.analyse(importance, planted, [motif])
    b_auprc = np.mean([i / (i + 1) for i in range(1, 11)])  # each planted base one rank late
    assert result["sequences"] == 2
    np.testing.assert_allclose(result["auprc"], (1.0 + b_auprc) / 2)
    low, middle, high = result["by_confidence"]
    assert (low["n"], middle["n"], high["n"]) == (1, 0, 1) and middle["auprc"] is None
    np.testing.assert_allclose([low["auprc"], high["auprc"]], [b_auprc, 1.0])
    assert result["false_positives_in_top_k_per_sequence"] == 0.5  # one in b's top 10
    assert result["false_positive_share_at_least_10_nt_away"] == 0.0  # position 3: 7 nt away
    assert result["median_rank_edge"] == np.median([0, 9, 1, 10])
    match = result["motif_match"]
    assert match["bases_needed"] == 7 and match["far_false_positives"] == 0
    assert match["far_false_positive_share"] is None
    # a far false positive at 0 (10 nt away) inside the copy: b[0:10] matches 8 motif bases
    scores[1, 3], scores[1, 0] = 0.0, 3.0
    result = planted_errors.analyse(importance, planted, [motif])
    assert result["false_positive_share_at_least_10_nt_away"] == 1.0
    assert result["motif_match"]["far_false_positive_share"] == 1.0
    assert result["motif_match"]["far_false_positive_mean_match"] == 8.0
    assert planted_errors.best_match("GGACGAGG", 2, ["ACGA"]) == 4
    assert planted_errors.best_match("GGACGAGG", 0, ["ACGA"]) == 0  # only GGAC covers 0
    assert planted_errors.best_match("GGACGAGG", 5, ["TTTT", "ACGA"]) == 4
    planted_errors.print_table(result)
    assert "AUPRC" in capsys.readouterr().out
    # a perfect map (no false positive at all) and padding past a shorter sequence
    scores[1] = scores[0]
    importance["sequences"] = np.array([a, b[:25], background])
    scores[1, 25:] = 9.0  # padding: not a position of the sequence
    result = planted_errors.analyse(importance, planted, [motif])
    assert result["auprc"] == pytest.approx(1.0)
    assert result["false_positives_in_top_k_per_sequence"] == 0.0
    assert result["false_positive_share_at_least_10_nt_away"] is None
    planted_errors.print_table(result)
    assert "of them >= 10 nt" in capsys.readouterr().out
    # through the command line, with the ground truth as BED (read like explain reads it)
    path = tmp_path / "importance.npz"
    np.savez(path, **importance)
    bed = tmp_path / "planted.bed"
    bed.write_text("a\t10\t20\nb\t10\t20\n")
    assert planted_errors.main([str(path), str(bed), "--out", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["auprc"] == pytest.approx(1.0)
    # figures that cannot be written leave the earlier ones as they were (an open-and-dump
    # truncated them first), and no partial file beside them
    before = (tmp_path / "e.json").read_text()
    monkeypatch.setattr(planted_errors, "analyse", lambda *a: {"auprc": 1.0, "bad": object()})
    with pytest.raises(TypeError):
        planted_errors.main([str(path), str(bed), "--out", str(tmp_path / "e.json")])
    assert (tmp_path / "e.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.json", "importance.npz", "planted.bed"]


def test_window_pooling_cost_summary_and_models():
    cost = _load("window_pooling_cost")
    times = {"default": [0.3, 0.1, 0.2], "mean_window": [0.1, 0.1, 0.2], "cnn": [0.05, 0.04, 0.06]}
    result = cost.summarize(times)
    assert result["median_step_seconds"] == {"default": 0.2, "mean_window": 0.1, "cnn": 0.05}
    assert result["ratio_to_mean_window"]["default"] == pytest.approx(2.0)
    assert result["ratio_to_cnn"]["mean_window"] == pytest.approx(2.0)
    # the reference is the default until 2026-11-28, and `default` is today's preset
    from attngen_keras.models.classifiers import MEAN_WINDOW_PRESET, PRESETS

    assert {**PRESETS["faithful"], **cost.MODELS["mean_window"][1]} == MEAN_WINDOW_PRESET
    assert faithfulness.variant_options("faithful_mean") == MEAN_WINDOW_PRESET
    assert cost.MODELS["default"] == ("attngen", {})


def test_window_gate_values_reads_each_positions_weight(tmp_path, capsys):
    """The gate benchmark reports the layer's own per-position window weights over real positions:
    exactly `window_weight` for a fixed window, and the gate's values for a gated one."""
    from attngen_keras.models import build_attngen

    gates = _load("window_gate_values")
    sequences = ["ACGTTGCA" * 5, "GGATCC" * 4]  # 40 and 24 nt: padding is left out
    pd.DataFrame({"seq": sequences}).to_csv(tmp_path / "s.csv", index=False)
    runs = {}
    for name, gate in (("fixed", None), ("gated", True)):
        model = build_attngen(40, 2, attention_window_gate=gate, seed=0)
        if gate:  # a learned gate that differs between positions
            layer = model.get_layer("saliency_mask")
            layer.gate_kernel.assign(np.linspace(-3, 3, 32, dtype="float32")[:, None])
        runs[name] = tmp_path / name
        runs[name].mkdir()
        model.save(runs[name] / "model.keras")
    out = tmp_path / "g.json"
    argv = [str(runs["fixed"]), str(runs["gated"]), "--sequences", str(tmp_path / "s.csv")]
    assert gates.main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())["runs"]
    fixed, gated = result[str(runs["fixed"])], result[str(runs["gated"])]
    assert fixed["positions"] == gated["positions"] == 64
    assert fixed["mean"] == fixed["p10"] == fixed["p90"] == pytest.approx(0.75)
    assert gated["window_gate"] and gated["p10"] < gated["p90"]
    assert "gated" in capsys.readouterr().out
