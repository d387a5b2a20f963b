"""Masking-fraction sweep: AttnGen trained over mask fractions x seeds.

Every run uses the same backbone, data and epoch budget (no early stopping);
only the target mask fraction and the seed change. Each finished run leaves a
`sweep_row.json` in its run directory, so an interrupted sweep resumes where
it stopped (an unfinished run resumes from its last epoch).

Per run the sweep records:

- `val_accuracy`, `test_accuracy`, `test_auroc` of the saved model;
- `epochs_to_target`: the first epoch (1-based) whose validation accuracy
  reaches `target_accuracy` (empty if never: convergence);
- `val_acc_epoch_std`: the standard deviation of validation accuracy over
  epochs 2..E (stability within a run; epoch 1 starts from random weights);
- `gini`, `top10_mass`: concentration of the importance (`method`) on a
  fixed subset of the test split;
- `perturb_drop_top`, `perturb_drop_random`: accuracy lost on that subset
  when the top-importance (or random) `perturb_fraction` of nucleotides are
  replaced by N.

The aggregate adds the seed-to-seed standard deviation of each figure.
Data with a test split of its own (Genomic Benchmarks) is scored on the same
test subset in every run; data without one gets its test split carved per
seed, like `attngen train --seed`, so the seed-to-seed spread then also
includes the test resampling.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from attngen_keras.files import json_text, plural, read_json, write_text_atomic

DEFAULT_FRACTIONS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
ROW_FILE = "sweep_row.json"
SETTINGS_FILE = "sweep.json"
_METRIC_COLUMNS = (
    "val_accuracy", "test_accuracy", "test_auroc", "epochs_to_target", "val_acc_epoch_std",
    "gini", "top10_mass", "perturb_drop_top", "perturb_drop_random",
)  # fmt: skip


@dataclasses.dataclass
class SweepConfig:
    """A masking-fraction sweep (stored as `OUT/sweep.json`).

    Args:
        data: `--data` value(s), as for `attngen train`.
        out: sweep directory.
        references: reference genomes for interval lists.
        fractions: target mask fractions.
        seeds: seeds (initialization, shuffling and validation carving).
        epochs: epoch budget of every run (no early stopping).
        warmup_epochs: masking ramp length.
        batch_size: batch size.
        learning_rate: Adam learning rate.
        length: fixed sequence length (default: the longest sequence).
        crop: crop mode for longer sequences.
        max_train: train on a stratified subset of at most this many sequences.
        backbone: backbone hyperparameter overrides.
        target_accuracy: validation accuracy that counts as converged.
        eval_n: test sequences used for importance and perturbation.
        method: importance method (see `attngen_keras.explain.METHODS`).
        perturb_fraction: share of nucleotides removed in the perturbation check.
        cache_dir: parsed-data cache (`default`, a path or `none`).

    Example:

    >>> config = SweepConfig(data=["motifs.csv"], out="sweep", fractions=(0.0, 0.15), seeds=(0,))
    """

    data: list
    out: str
    references: str = None
    fractions: tuple = DEFAULT_FRACTIONS
    seeds: tuple = (0, 1, 2)
    epochs: int = 5
    warmup_epochs: int = 2
    batch_size: int = 128
    learning_rate: float = 1e-3
    length: int = None
    crop: str = None
    max_train: int = None
    backbone: dict = dataclasses.field(default_factory=dict)
    target_accuracy: float = 0.95
    eval_n: int = 1000
    method: str = "attention"
    perturb_fraction: float = 0.2
    cache_dir: str = "default"

    def __post_init__(self):
        from attngen_keras.data.loading import resolve_sources
        from attngen_keras.explain import METHODS

        # absolute, as `attngen train` stores them: the sweep resumes from any directory
        self.data, self.references = resolve_sources(self.data, self.references)
        self.fractions = [float(f) for f in self.fractions]
        self.seeds = [int(s) for s in self.seeds]
        checks = [
            (self.fractions and all(0 <= f < 1 for f in self.fractions), f"--fractions must be in [0, 1), got {self.fractions}"),
            (len(set(self.fractions)) == len(self.fractions), f"--fractions has duplicates: {self.fractions}"),
            (self.seeds and len(set(self.seeds)) == len(self.seeds), f"--seeds must be distinct, got {self.seeds}"),
            (all(0 <= s < 2**32 for s in self.seeds), f"--seeds must be in [0, 2**32), got {self.seeds}"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.epochs > self.warmup_epochs,
             f"--epochs ({self.epochs}) must exceed --warmup-epochs ({self.warmup_epochs}): otherwise no "
             "run trains at its mask fraction and the runs differ by their ramp only"),
            (0 < self.target_accuracy <= 1, f"--target-accuracy must be in (0, 1], got {self.target_accuracy}"),
            (self.eval_n >= 1, f"--n must be >= 1, got {self.eval_n}"),
            (self.method in METHODS, f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}"),
            (0 < self.perturb_fraction < 1, f"--perturb-fraction must be in (0, 1), got {self.perturb_fraction}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        names = [self.run_dir(f, 0).name for f in self.fractions]
        if len(set(names)) != len(names):
            raise ValueError(
                f"--fractions must differ in the first two decimals (run directories), got {self.fractions}"
            )
        # the training options (--batch-size, --learning-rate, --max-train...) are checked as
        # `attngen train` checks them, before the sweep writes anything
        self.train_config(self.fractions[0], self.seeds[0])

    def run_dir(self, fraction, seed):
        return Path(self.out) / "runs" / f"mask{fraction:.2f}_seed{seed}"

    def train_config(self, fraction, seed):
        from attngen_keras.training import TrainConfig

        return TrainConfig(
            data=self.data, out=str(self.run_dir(fraction, seed)), references=self.references,
            model="attngen", epochs=self.epochs, batch_size=self.batch_size,
            learning_rate=self.learning_rate, length=self.length, crop=self.crop,
            mask_fraction=fraction, warmup_epochs=self.warmup_epochs, seed=seed, patience=0,
            backbone=dict(self.backbone), cache_dir=self.cache_dir, max_train=self.max_train,
        )  # fmt: skip


def _check_settings(config):
    """Refuses to mix runs of a different sweep into `config.out`; returns the settings to write
    (with `_write_settings`, once the data is known to be usable)."""
    from attngen_keras.data.loading import resolve_sources
    from attngen_keras.training import RunError

    path = Path(config.out) / SETTINGS_FILE
    settings = dataclasses.asdict(config)
    # fractions and seeds may grow between invocations; everything else must match
    fixed = {
        k: v for k, v in settings.items() if k not in ("fractions", "seeds", "out", "cache_dir")
    }
    if path.exists():
        previous = json.loads(path.read_text())
        previous["data"], previous["references"] = resolve_sources(
            previous.get("data") or [], previous.get("references")
        )
        changed = [k for k, v in fixed.items() if previous.get(k) != json.loads(json.dumps(v))]
        if changed:
            details = ", ".join(f"{k}: {previous.get(k)!r} -> {fixed[k]!r}" for k in changed)
            raise RunError(
                f"{config.out} holds a sweep with different settings ({details}); use a new --out"
            )
        # the fractions and seeds of every invocation, as the tables cover all their runs
        for key in ("fractions", "seeds"):
            settings[key] = sorted(set(previous.get(key, [])) | set(settings[key]))
    return settings


def _write_settings(config, settings):
    path = Path(config.out) / SETTINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(settings, indent=2))


def first_epoch_reaching(values, target):
    """1-based index of the first value >= `target`, or None.

    Compared in float32, the precision Keras computes accuracy in: 152 of 160
    correct is 0.949999988 in `history.csv`, and reaches a target of 0.95.

    Example:

    >>> first_epoch_reaching([0.9, 0.949999988079071, 0.97], 0.95)
    2
    >>> first_epoch_reaching([0.9, 0.94], 0.95) is None
    True
    """
    hits = np.flatnonzero(np.asarray(values, np.float32) >= np.float32(target))
    return int(hits[0]) + 1 if len(hits) else None


def score_run(
    run_dir, metrics, test_split, *, method, eval_n, perturb_fraction, target_accuracy, seed
):
    """Convergence, stability, concentration and perturbation figures of one finished run.

    Args:
        run_dir: the run directory (`history.csv` and `model.keras`).
        metrics: what `attngen_keras.training.train` returned for it.
        test_split: the `EncodedSplit` scored (a fixed subset of `eval_n`).
        method: importance method for concentration and perturbation.
        eval_n: test sequences used for importance and perturbation.
        perturb_fraction: share of nucleotides removed.
        target_accuracy: validation accuracy that counts as converged.
        seed: seed of the random-removal order.

    Returns:
        dict with the `_METRIC_COLUMNS`, `seconds_to_target` (training wall
        seconds up to the end of the first epoch reaching the target),
        `epochs_trained`, `best_epoch`, `mean_epoch_seconds` and `val_curve`.
    """
    import keras

    from attngen_keras.data.alphabet import PAD, one_hot
    from attngen_keras.explain.importance import importance_scores
    from attngen_keras.explain.metrics import concentration_summary
    from attngen_keras.explain.perturbation import perturbation_curves
    from attngen_keras.explain.report import select_subset

    run_dir = Path(run_dir)
    history = pd.read_csv(run_dir / "history.csv")
    val_curve = history["val_accuracy"].to_numpy() if "val_accuracy" in history else np.array([])
    epochs_to_target = first_epoch_reaching(val_curve, target_accuracy)
    seconds_to_target = None
    if epochs_to_target is not None and "epoch_seconds" in history:
        seconds_to_target = float(history["epoch_seconds"].to_numpy()[:epochs_to_target].sum())
    model = keras.models.load_model(run_dir / "model.keras")
    # the same test subset for every run
    index = select_subset(len(test_split), eval_n, seed=0)
    tokens, labels = test_split.tokens[index], test_split.labels[index]
    scores = importance_scores(model, one_hot(tokens), method)
    concentration = concentration_summary(scores, tokens != PAD)
    curves = perturbation_curves(model, tokens, labels, scores, [0.0, perturb_fraction], seed=seed)
    accuracy = curves["accuracy"]
    return {
        "val_accuracy": metrics.get("val", {}).get("accuracy", float("nan")),
        "test_accuracy": metrics["test"]["accuracy"],
        "test_auroc": metrics["test"].get("auroc", float("nan")),
        "epochs_to_target": epochs_to_target,
        "seconds_to_target": seconds_to_target,
        "val_acc_epoch_std": float(np.std(val_curve[1:])) if len(val_curve) > 2 else float("nan"),
        "gini": concentration["gini"],
        "top10_mass": concentration["top10_mass"],
        "perturb_drop_top": accuracy["top"][0] - accuracy["top"][1],
        "perturb_drop_random": accuracy["random"][0] - accuracy["random"][1],
        "epochs_trained": metrics.get("epochs_trained"),
        "best_epoch": metrics.get("best_epoch"),
        "mean_epoch_seconds": metrics.get("mean_epoch_seconds"),
        "val_curve": [float(v) for v in val_curve],
    }


def _score_run(config, fraction, seed, metrics, test_split):
    """The sweep row of one finished run."""
    row = score_run(
        config.run_dir(fraction, seed), metrics, test_split, method=config.method, eval_n=config.eval_n,
        perturb_fraction=config.perturb_fraction, target_accuracy=config.target_accuracy, seed=seed,
    )  # fmt: skip
    return {"mask_fraction": fraction, "seed": seed, **row}


def run_sweep(config, verbose=None):
    """Trains and scores every (fraction, seed) run not done yet; writes the tables and plots.

    Returns:
        the per-run `pandas.DataFrame` (also `OUT/sweep.csv`).
    """
    from attngen_keras.data import load_dataset
    from attngen_keras.training import METRICS_FILE, _cache_dir, check_run_dir, train

    settings = _check_settings(config)

    def load(seed):
        dataset = load_dataset(
            config.data, config.references, length=config.length, crop=config.crop,
            seed=seed, cache_dir=_cache_dir(config.cache_dir),
        )  # fmt: skip
        if "test" not in dataset.splits:
            raise ValueError(f"{' '.join(config.data)} has no test split to score the sweep on")
        return dataset

    pending = [seed for seed in config.seeds for fraction in config.fractions
               if not (config.run_dir(fraction, seed) / ROW_FILE).exists()]  # fmt: skip
    # the data is checked before anything is written: a sweep it cannot score leaves no --out
    loaded = {pending[0]: load(pending[0])} if pending else {}
    _write_settings(config, settings)
    total = len(config.fractions) * len(config.seeds)
    done = 0
    for seed in config.seeds:
        dataset = loaded.pop(seed, None)  # loaded once per seed (the seed also carves validation)
        for fraction in config.fractions:
            done += 1
            row_path = config.run_dir(fraction, seed) / ROW_FILE
            label = f"[{done}/{total}] mask fraction {fraction:.2f}, seed {seed}"
            if row_path.exists():
                print(f"{label}: done before, kept")
                continue
            train_config = config.train_config(fraction, seed)
            run_dir = config.run_dir(fraction, seed)
            # killed after its training but before its row: scored without training again
            # (outside train()'s run lock: one sweep process per --out, as the tuning guide says)
            trained = (
                check_run_dir(run_dir, train_config, advice="use another sweep --out") == "finished"
            )
            print(f"{label}: {'trained before, scoring' if trained else 'training'}", flush=True)
            if dataset is None:
                dataset = load(seed)
            if trained:
                metrics = read_json(run_dir / METRICS_FILE, "metrics file")
            else:
                metrics = train(train_config, verbose=verbose, dataset=dataset)
            row = _score_run(config, fraction, seed, metrics, dataset["test"])
            write_text_atomic(row_path, json_text(row))  # a killed write is no 'done' row
            print(
                f"{label}: test accuracy {row['test_accuracy']:.4f}, Gini {row['gini']:.3f}, "
                f"top-{config.perturb_fraction:.0%} removal drop {row['perturb_drop_top']:.3f}"
            )
    frame = write_sweep_tables(config)
    asked = {(round(float(f), 6), int(s)) for f in config.fractions for s in config.seeds}
    earlier = [
        (f, s) for f, s in zip(frame["mask_fraction"], frame["seed"])
        if (round(float(f), 6), int(s)) not in asked
    ]  # fmt: skip
    if earlier:
        print(
            f"the tables also hold {plural(len(earlier), 'earlier run')} in {config.out} "
            f"(mask fraction, seed: {'; '.join(f'{f:.2f}, {s}' for f, s in earlier)})"
        )
    return frame


def collect_rows(config):
    """Per-run rows of every finished run in the sweep directory, by mask fraction and seed.

    Earlier invocations into the same `--out` may have asked for other
    fractions or seeds (the other settings must match, see `_check_settings`):
    their runs stay in the tables.
    """
    paths = (Path(config.out) / "runs").glob(f"*/{ROW_FILE}")
    rows = [json.loads(path.read_text()) for path in paths]
    rows.sort(key=lambda row: (float(row["mask_fraction"]), int(row["seed"])))
    return pd.DataFrame(rows)


def summarize(frame):
    """Mean and seed-to-seed standard deviation of every figure, per mask fraction."""
    numeric = frame[["mask_fraction", *_METRIC_COLUMNS]].astype(float)
    grouped = numeric.groupby("mask_fraction")
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=0).add_suffix("_std"))
    summary = summary.join(grouped.count().add_suffix("_count"))  # values behind each mean
    summary["runs"] = grouped.size()
    summary["converged_runs"] = grouped["epochs_to_target"].count()
    return summary.reset_index()


def markdown_table(summary, config):
    """The sweep summary as a Markdown table (mean ± seed-to-seed std; the value alone for one seed)."""

    def cell(row, name, digits=4):
        mean, std = row[f"{name}_mean"], row[f"{name}_std"]
        if np.isnan(mean):
            return "n/a"
        if row.get(f"{name}_count", row["runs"]) < 2:
            return f"{mean:.{digits}f}"
        return f"{mean:.{digits}f} ± {std:.{digits}f}"

    pf = f"{config.perturb_fraction:.0%}"
    lines = [
        f"| mask fraction | runs | test acc | val acc | epochs to val acc ≥ {config.target_accuracy} "
        f"| val acc std over epochs | Gini | top-10% mass | acc drop, top {pf} removed | acc drop, random {pf} removed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in summary.iterrows():
        converged = f"{int(row['converged_runs'])}/{int(row['runs'])}"
        epochs = (
            "never"
            if np.isnan(row["epochs_to_target_mean"])
            else f"{row['epochs_to_target_mean']:.1f} ({converged})"
        )
        lines.append(
            f"| {row['mask_fraction']:.2f} | {int(row['runs'])} | {cell(row, 'test_accuracy')} | "
            f"{cell(row, 'val_accuracy')} | {epochs} | {cell(row, 'val_acc_epoch_std')} | {cell(row, 'gini', 3)} | "
            f"{cell(row, 'top10_mass', 3)} | {cell(row, 'perturb_drop_top', 3)} | {cell(row, 'perturb_drop_random', 3)} |"
        )
    return "\n".join(lines) + "\n"


def plot_sweep(frame, summary, out, config):
    """`accuracy_vs_fraction.png`, `tradeoff.png` and `convergence.png`."""
    from attngen_keras.plotting import plt, save_figure  # selects the Agg backend first

    out = Path(out)
    x = summary["mask_fraction"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, color in (("test_accuracy", "tab:red"), ("val_accuracy", "tab:blue")):
        ax.errorbar(x, summary[f"{name}_mean"], yerr=summary[f"{name}_std"], marker="o", capsize=4,
                    color=color, label=f"{name.replace('_', ' ')} (mean ± sd over seeds)")  # fmt: skip
    ax.set_xlabel("target mask fraction")
    ax.set_ylabel("accuracy")
    save_figure(fig, ax, out / "accuracy_vs_fraction.png")

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.errorbar(summary["perturb_drop_top_mean"], summary["test_accuracy_mean"],
                xerr=summary["perturb_drop_top_std"], yerr=summary["test_accuracy_std"],
                fmt="o", capsize=3, color="tab:purple")  # fmt: skip
    for _, row in summary.iterrows():
        ax.annotate(f"{row['mask_fraction']:.2f}", (row["perturb_drop_top_mean"], row["test_accuracy_mean"]),
                    textcoords="offset points", xytext=(5, 4), fontsize=8)  # fmt: skip
    ax.set_xlabel(
        f"accuracy drop when the top {config.perturb_fraction:.0%} ({config.method}) are removed"
    )
    ax.set_ylabel("test accuracy")
    ax.set_title("accuracy / interpretability trade-off (labels: mask fraction)", fontsize=10)
    save_figure(fig, ax, out / "tradeoff.png", legend=False)

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    cmap = plt.get_cmap("viridis")
    for i, (fraction, group) in enumerate(frame.groupby("mask_fraction")):
        curves = [c for c in group["val_curve"] if c]
        width = min(len(c) for c in curves) if curves else 0
        if width:
            mean = np.mean([c[:width] for c in curves], axis=0)
            ax.plot(np.arange(1, width + 1), mean, marker="o", color=cmap(i / max(len(summary) - 1, 1)),
                    label=f"mask {fraction:.2f}")  # fmt: skip
    ax.axhline(config.target_accuracy, color="black", linestyle=":", label="target")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (mean over seeds)")
    save_figure(fig, ax, out / "convergence.png")


def write_sweep_tables(config):
    """Writes `sweep.csv`, `sweep_summary.csv`, `sweep.md` and the plots from the finished runs."""
    out = Path(config.out)
    frame = collect_rows(config)
    if frame.empty:
        raise ValueError(f"{out} has no finished sweep runs yet")
    frame.drop(columns=["val_curve"]).to_csv(out / "sweep.csv", index=False)
    summary = summarize(frame)
    summary.to_csv(out / "sweep_summary.csv", index=False)
    (out / "sweep.md").write_text(markdown_table(summary, config))
    plot_sweep(frame, summary, out, config)
    return frame
