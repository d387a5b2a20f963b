"""Benchmark: the AttnGen paper's comparison, re-run on real Genomic Benchmarks data.

On each dataset, with the same backbone, data, seeds and epoch budget (no
early stopping), trains:

- `attngen`: AttnGen at the library's default mask fraction (0.15);
- AttnGen at the other candidate fractions (`--fractions`); `attngen_best`
  is the candidate with the best mean *validation* accuracy (chosen on
  validation, so its test figure stays an honest estimate);
- `cnn`: the same backbone without the SaliencyMask (the paper's baseline);
- `gb_cnn`: the Genomic Benchmarks reference CNN.

Per run it records validation and test accuracy, test AUROC, epochs and
wall seconds to a target validation accuracy, the epoch-to-epoch std of
validation accuracy, and, with gradient saliency for every model (attention
exists only in AttnGen), the accuracy drop when the top or a random 20% of
nucleotides are replaced by N, and the Gini concentration of the saliency.

    python benchmarks/paper.py            # all datasets, 3 seeds (about 35 min on 2 cores)
    python benchmarks/paper.py --quick    # small subsets, 2 epochs (a smoke test, minutes)

Runs are resumable (each finished run leaves a row file). Writes
`benchmarks/results/paper/{paper.json,paper_details.json,paper.md,runs.csv,learning_curves.png}` and
`benchmarks/results/paper.json`. `demo_human_or_worm` (the paper's dataset) is
included when its sequences are already in the Genomic Benchmarks cache (they
need a download from Ensembl); otherwise it is listed as skipped.
"""

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_FRACTION = 0.15
ROW_FILE = "paper_row.json"
FIGURES = (
    "test_accuracy", "val_accuracy", "test_auroc", "epochs_to_target", "seconds_to_target",
    "val_acc_epoch_std", "val_acc_fluctuation", "gini", "perturb_drop_top", "perturb_drop_random",
    "mean_epoch_seconds",
)  # fmt: skip


@dataclasses.dataclass
class Benchmark:
    """One dataset of the comparison and its training budget."""

    name: str
    data: list
    references: str = None
    epochs: int = 5
    max_train: int = None
    target_accuracy: float = 0.9
    goal: float = None  # our test-accuracy target for AttnGen, if any


def benchmarks(quick=False):
    """The datasets in `../shared/data` (and demo_human_or_worm when cached)."""
    gb_seq = SHARED / "genomic_benchmarks_seq"
    found = [
        Benchmark("human_or_fungus", [str(SHARED / "genomic_benchmarks" / "human_or_fungus")],
                  references=str(SHARED / "references"), epochs=3, max_train=15000,
                  target_accuracy=0.985, goal=0.99),
        Benchmark("human_nontata_promoters_resplit", [str(gb_seq / "human_nontata_promoters_resplit")],
                  epochs=10, target_accuracy=0.83, goal=0.90),
        Benchmark("human_enhancers_cohn_resplit", [str(gb_seq / "human_enhancers_cohn_resplit")],
                  epochs=8, target_accuracy=0.67),
    ]  # fmt: skip
    demo = demo_human_or_worm_sequences()
    if demo is None and online():
        demo = "demo_human_or_worm"  # load_dataset downloads it with genomic_benchmarks
    if demo is not None:
        found.insert(0, Benchmark("demo_human_or_worm", [str(demo)], epochs=3, max_train=15000,
                                  target_accuracy=0.95))  # fmt: skip
    if quick:
        for bench in found:
            bench.epochs, bench.max_train = 2, 2000
    return found


def demo_human_or_worm_sequences():
    """The downloaded demo_human_or_worm full-sequence directory, or None."""
    from attngen_keras.data import cache

    for root in (
        Path.home() / ".genomic_benchmarks",
        Path(cache.default_cache_dir()) / "genomic_benchmarks",
    ):
        if (root / "demo_human_or_worm" / "train").is_dir():
            return root / "demo_human_or_worm"
    return None


def online(host="github.com", timeout=3):
    """Whether the Genomic Benchmarks downloads could be reached."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def model_keys(fractions):
    """Run keys: one AttnGen per mask fraction, then the two CNNs."""
    return [f"attngen_m{f:.2f}" for f in fractions] + ["cnn", "gb_cnn"]


def train_config(bench, key, seed, out, batch_size):
    from attngen_keras.training import TrainConfig

    if key.startswith("attngen_m"):
        model, fraction = "attngen", float(key[len("attngen_m") :])
    else:
        model, fraction = key.replace("_", "-"), 0.0
    return TrainConfig(
        data=bench.data, out=str(Path(out) / "runs" / bench.name / f"{key}_seed{seed}"),
        references=bench.references, model=model, epochs=bench.epochs, batch_size=batch_size,
        mask_fraction=fraction, seed=seed, patience=0, max_train=bench.max_train,
    )  # fmt: skip


def convergence(row, run_dir, target):
    """Convergence and stability figures of a run, recomputed from its history for `target`.

    - `epochs_to_target`: first epoch (1-based) whose validation accuracy reaches `target`;
    - `seconds_to_target`: wall seconds of the epochs up to it (`EpochTimer`: training,
      validation, AttnGen's BatchNorm recalibration and the first epoch's tracing);
    - `val_acc_fluctuation`: mean |change| of validation accuracy between consecutive
      epochs after the first (epoch-to-epoch instability).
    """
    from attngen_keras.sweep import first_epoch_reaching

    history = pd.read_csv(Path(run_dir) / "history.csv")
    curve = history["val_accuracy"].to_numpy()
    epochs = first_epoch_reaching(curve, target)
    seconds = float(history["epoch_seconds"].to_numpy()[:epochs].sum()) if epochs else None
    fluctuation = float(np.mean(np.abs(np.diff(curve[1:])))) if len(curve) > 2 else float("nan")
    return {**row, "epochs_to_target": epochs, "seconds_to_target": seconds, "val_acc_fluctuation": fluctuation,
            "target_accuracy": target}  # fmt: skip


def run_benchmark(bench, keys, seeds, out, args):
    """Trains and scores every (model, seed) of one dataset; returns the rows."""
    from attngen_keras.data import load_dataset
    from attngen_keras.sweep import score_run
    from attngen_keras.training import _cache_dir, train

    rows = []
    for seed in seeds:
        dataset = None
        for key in keys:
            config = train_config(bench, key, seed, out, args.batch_size)
            row_path = Path(config.out) / ROW_FILE
            label = f"{bench.name}: {key}, seed {seed}"
            if row_path.exists():
                print(f"{label}: done before, kept")
                rows.append(
                    convergence(json.loads(row_path.read_text()), config.out, bench.target_accuracy)
                )
                continue
            if args.summarize_only:
                print(f"{label}: not run yet, left out (--summarize-only)")
                continue
            print(f"{label}: training {bench.epochs} epochs", flush=True)
            if dataset is None:
                dataset = load_dataset(
                    bench.data, bench.references, seed=seed, cache_dir=_cache_dir("default")
                )
            metrics = train(config, verbose=args.verbose, dataset=dataset)
            row = score_run(
                config.out, metrics, dataset["test"], method="saliency", eval_n=args.eval_n,
                perturb_fraction=0.2, target_accuracy=bench.target_accuracy, seed=seed,
            )  # fmt: skip
            row.update({"dataset": bench.name, "model": key, "seed": seed})
            row_path.write_text(json.dumps(row, indent=2))
            print(f"{label}: test accuracy {row['test_accuracy']:.4f}", flush=True)
            rows.append(convergence(row, config.out, bench.target_accuracy))
    return rows


def summarize(frame):
    """Mean and seed-to-seed (sample, ddof=1) std of every figure, per (dataset, model).

    `epochs_to_target` and `seconds_to_target` average the seeds that reached the
    target only (`converged` counts them).
    """
    numeric = frame[["dataset", "model", *FIGURES]].copy()
    numeric[list(FIGURES)] = numeric[list(FIGURES)].astype(float)
    grouped = numeric.groupby(["dataset", "model"], sort=False)
    summary = grouped.mean().add_suffix("_mean").join(grouped.std(ddof=1).add_suffix("_std"))
    summary["seeds"] = grouped.size()
    summary["converged"] = grouped["epochs_to_target"].count()
    return summary.reset_index()


def best_attngen(summary, dataset):
    """The AttnGen run key with the best mean validation accuracy on `dataset`."""
    candidates = summary[
        (summary["dataset"] == dataset) & summary["model"].str.startswith("attngen_m")
    ]
    return candidates.sort_values("val_accuracy_mean", ascending=False, kind="stable")[
        "model"
    ].iloc[0]


def paper_json(summary, benches):
    """`({dataset: {model: figures}}, {dataset: protocol and verdict})`.

    Model keys: `attngen` (default fraction), `attngen_best`, `cnn`,
    `gb_cnn`, plus one `attngen_mX.XX` per trained fraction.
    """

    def figures(row):
        entry = {"seeds": int(row["seeds"]), "converged_seeds": int(row["converged"])}
        for name in FIGURES:
            mean, std = row[f"{name}_mean"], row[f"{name}_std"]
            entry[f"{name}_mean"] = None if np.isnan(mean) else float(mean)
            entry[f"{name}_std"] = None if np.isnan(std) else float(std)
        return entry

    result, details = {}, {}
    for bench in benches:
        rows = summary[summary["dataset"] == bench.name].set_index("model")
        if rows.empty:
            continue
        entry = {key: figures(row) for key, row in rows.iterrows()}
        default = f"attngen_m{DEFAULT_FRACTION:.2f}"
        best = best_attngen(summary, bench.name)
        entry["attngen"] = {**entry[default], "mask_fraction": DEFAULT_FRACTION}
        entry["attngen_best"] = {**entry[best], "mask_fraction": float(best[len("attngen_m") :])}
        detail = {"protocol": {
            "epochs": bench.epochs, "max_train": bench.max_train, "target_accuracy": bench.target_accuracy,
            "importance_method": "saliency", "perturb_fraction": 0.2,
        }}  # fmt: skip
        # attngen_best is chosen on validation; the CNN side takes the better test figure (conservative)
        attngen_test = entry["attngen_best"]["test_accuracy_mean"]
        baselines = max(entry["cnn"]["test_accuracy_mean"], entry["gb_cnn"]["test_accuracy_mean"])
        detail["verdict"] = {
            "attngen_best_ahead_of_both_cnns": bool(attngen_test > baselines),
            "attngen_best_minus_better_cnn": attngen_test - baselines,
            "attngen_default_minus_better_cnn": entry["attngen"]["test_accuracy_mean"] - baselines,
        }
        if bench.goal is not None:
            detail["verdict"]["goal_test_accuracy"] = bench.goal
            detail["verdict"]["goal_met"] = bool(attngen_test >= bench.goal)
        result[bench.name] = entry
        details[bench.name] = detail
    return result, details


def markdown(summary, results, details):
    """One Markdown table per dataset (mean ± seed-to-seed std)."""

    def cell(row, name, digits=4):
        mean, std = row[f"{name}_mean"], row[f"{name}_std"]
        return "—" if np.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"

    lines = []
    for dataset, entry in results.items():
        protocol = details[dataset]["protocol"]
        subset = f", {protocol['max_train']:,} training sequences" if protocol["max_train"] else ""
        best = entry["attngen_best"]["mask_fraction"]
        lines += [
            f"### {dataset} ({protocol['epochs']} epochs{subset}, {entry['cnn']['seeds']} seeds; "
            f"attngen_best = mask {best:.2f}, chosen on validation)",
            "",
            f"| model | test acc | val acc | test AUROC | epochs to val ≥ {protocol['target_accuracy']} "
            "| s to target | val acc mean abs change per epoch | s/epoch | saliency Gini | drop, top 20% removed | drop, random 20% |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for _, row in summary[summary["dataset"] == dataset].iterrows():
            reached = f"{int(row['converged'])}/{int(row['seeds'])}"
            epochs = (
                "never"
                if np.isnan(row["epochs_to_target_mean"])
                else f"{row['epochs_to_target_mean']:.1f} ({reached})"
            )
            seconds = (
                "—"
                if np.isnan(row["seconds_to_target_mean"])
                else f"{row['seconds_to_target_mean']:.0f}"
            )
            lines.append(
                f"| {row['model']} | {cell(row, 'test_accuracy')} | {cell(row, 'val_accuracy')} | "
                f"{cell(row, 'test_auroc')} | {epochs} | {seconds} | {cell(row, 'val_acc_fluctuation')} | "
                f"{row['mean_epoch_seconds_mean']:.1f} | {cell(row, 'gini', 3)} | {cell(row, 'perturb_drop_top', 3)} | "
                f"{cell(row, 'perturb_drop_random', 3)} |"
            )
        lines += [
            "",
            "Epochs and seconds to target average the seeds that reached it; seconds are epoch wall "
            "times (training, validation, BatchNorm recalibration, first-epoch tracing). Std: sample "
            "std over seeds.",
        ]
        verdict = details[dataset]["verdict"]
        goal = ""
        if "goal_met" in verdict:
            goal = f" Goal AttnGen ≥ {verdict['goal_test_accuracy']:.2f}: {'met' if verdict['goal_met'] else 'missed'}."
        lines += [
            "",
            f"Test accuracy minus the better CNN's: attngen_best {verdict['attngen_best_minus_better_cnn']:+.4f}, "
            f"attngen (default) {verdict['attngen_default_minus_better_cnn']:+.4f}.{goal}",
            "",
        ]
    return "\n".join(lines)


def plot_learning_curves(frame, results, details, path):
    """Validation accuracy per epoch, mean ± sd band over seeds, one panel per dataset."""
    from attngen_keras.plotting import plt, save_figure

    datasets = list(results)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4.0), squeeze=False)
    colors = {
        "attngen": "tab:red",
        "attngen_best": "tab:orange",
        "cnn": "tab:blue",
        "gb_cnn": "tab:gray",
    }
    for ax, dataset in zip(axes[0], datasets):
        entry = results[dataset]
        shown = {"attngen": f"attngen_m{DEFAULT_FRACTION:.2f}", "cnn": "cnn", "gb_cnn": "gb_cnn"}
        best = f"attngen_m{entry['attngen_best']['mask_fraction']:.2f}"
        if best != shown["attngen"]:
            shown["attngen_best"] = best
        for name, key in shown.items():
            curves = [
                c
                for c in frame[(frame["dataset"] == dataset) & (frame["model"] == key)]["val_curve"]
                if c
            ]
            if not curves:
                continue
            width = min(len(c) for c in curves)
            values = np.array([c[:width] for c in curves])
            epochs = np.arange(1, width + 1)
            mean, std = values.mean(axis=0), values.std(axis=0)
            label = f"{name} ({key})" if name.startswith("attngen") else name
            ax.plot(epochs, mean, marker="o", color=colors[name], label=label)
            ax.fill_between(epochs, mean - std, mean + std, color=colors[name], alpha=0.2)
        ax.axhline(
            details[dataset]["protocol"]["target_accuracy"],
            color="black",
            linestyle=":",
            label="target",
        )
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy (mean ± sd over seeds)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    save_figure(fig, axes[0][-1], path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="2,000 training sequences and 2 epochs per dataset"
    )
    parser.add_argument("--datasets", nargs="+", help="subset of the dataset names")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[DEFAULT_FRACTION, 0.05, 0.30],
                        help="AttnGen mask fractions (the first-listed default 0.15 is `attngen`)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--eval-n", type=int, default=1000, help="test sequences for saliency and perturbation"
    )
    parser.add_argument(
        "--out", default=None, help="work directory (default benchmarks/results/paper[_quick])"
    )
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--epochs", type=int, help="override every dataset's epoch budget")
    parser.add_argument(
        "--max-train", type=int, help="override every dataset's training subset (0: all)"
    )
    parser.add_argument(
        "--summarize-only", action="store_true", help="tables from the finished runs; train nothing"
    )
    args = parser.parse_args(argv)

    if DEFAULT_FRACTION not in args.fractions:
        args.fractions = [DEFAULT_FRACTION, *args.fractions]
    out = Path(args.out or RESULTS / ("paper_quick" if args.quick else "paper"))
    if not SHARED.exists():
        sys.exit(f"needs {SHARED} (see ../shared/data/README.md)")
    benches = benchmarks(args.quick)
    if args.datasets:
        unknown = set(args.datasets) - {b.name for b in benches}
        if unknown:
            sys.exit(
                f"unknown or unavailable datasets: {sorted(unknown)}; have {[b.name for b in benches]}"
            )
        benches = [b for b in benches if b.name in args.datasets]
    for bench in benches:
        bench.epochs = args.epochs or bench.epochs
        if args.max_train is not None:
            bench.max_train = args.max_train or None
    if "demo_human_or_worm" not in {b.name for b in benches}:
        print("demo_human_or_worm: skipped (not cached and no network: its sequences need a "
              "download from Ensembl through genomic_benchmarks)")  # fmt: skip

    keys = model_keys(args.fractions)
    start = time.perf_counter()
    rows = []
    for bench in benches:
        rows += run_benchmark(bench, keys, args.seeds, out, args)
    if not rows:
        sys.exit("no runs: nothing to summarize")
    frame = pd.DataFrame(rows)
    summary = summarize(frame)
    results, details = paper_json(summary, benches)
    details["_meta"] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
        "quick": args.quick, "seeds": args.seeds, "fractions": args.fractions,
        "wall_seconds_this_invocation": time.perf_counter() - start,
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    frame.drop(columns=["val_curve"]).to_csv(out / "runs.csv", index=False)
    table = markdown(summary, results, details)
    (out / "paper.md").write_text(table)
    plot_learning_curves(frame, results, details, out / "learning_curves.png")
    (out / "paper.json").write_text(json.dumps(results, indent=2))
    (out / "paper_details.json").write_text(json.dumps(details, indent=2))
    if not args.quick and args.out is None:
        (RESULTS / "paper.json").write_text(json.dumps(results, indent=2))
    print(table)
    print(f"wrote {out}: paper.json, paper_details.json, paper.md, runs.csv, learning_curves.png")


if __name__ == "__main__":
    main()
