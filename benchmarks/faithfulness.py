"""Benchmark: is AttnGen's own attention what its predictions rely on?

Trains AttnGen variants (and the plain CNN as the reference) with the same
data, seeds and epoch budget (no early stopping) on:

- `human_or_fungus` (../shared/data, interval list + references);
- `human_nontata_promoters_resplit` (../shared/data, full-sequence layout);
- `planted`: 200-nt sequences, half carrying one of two degenerate 10-mers
  (each base 85% the consensus), the other half the same motifs with their
  bases shuffled (decoys of the same composition), 4,000 training sequences;
  the planted positions are the ground truth. At 85% no model separates the
  classes beyond about 0.79 (a motif and its decoy often differ by one or two
  bases), so
- `planted95`: the same design with two other 10-mers at 95% per base, where
  the models reach about 0.95 (the regime of the issue's planted-motif goal).

and measures, on a fixed seeded subset of the test split (N replacement):

- test accuracy (the whole test split);
- deletion@20%: accuracy when the top 20% of nucleotides by the model's own
  attention are replaced by N, vs a random 20% (for the CNN: by its gradient
  saliency and by ISM);
- sufficiency@20%: accuracy when only the top 20% are kept (the rest N), vs a
  random 20%;
- AOPC (comprehensiveness and sufficiency, k in 1, 5, 10, 20, 50%);
- the uniform-attention control (accuracy with the attention replaced by
  uniform weights at inference);
- on `planted`: per-sequence AUROC/AUPRC of the attention vs the planted positions.

Variants (`VARIANTS`): `paper` (the paper's configuration: soft attention on
stem features, no faithfulness loss), `paper_hard` (the same, hard top-k kept
at inference), `faithful` (the default: attention on nucleotides + faithfulness
loss weight 2, each logit a mix of its own and the log-mean-exp at sharpness 2,
a soft maximum, of its 9-nt window, with the window weight learned per position;
since 2026-11-28, thirteenth session), `faithful_gate_sharp2` (the same options,
named), `faithful_lme_w2` (the default of 2026-11-28 before the learned weight:
window weight 0.75, sharpness 1; the `faithful` rows of results written on
2026-11-28 before the thirteenth session are this configuration),
`faithful_mean` (the default
until 2026-11-28: the window's mean, loss weight 1.5; the `faithful` rows of
results written from 2026-11-27 to 2026-11-28 are this configuration),
`faithful_gate` (`faithful_lme_w2` with its window weight learned per
position, `--attention-window-gate`), `faithful_nowindow` (the default before the window: own logits only, loss
weight 2; the `faithful` rows of results written before 2026-11-26 are this
configuration), `faithful_features` (faithfulness loss, attention on stem
features), `motif` (the `motif` preset: the 9-nt window mean alone, loss
weight 1.5), and variants of `faithful_mean` with one option changed, against
which they were measured: `nucleotides` (no faithfulness loss),
`faithful_lme` (log-mean-exp window), `faithful_lme05` (the same at sharpness
0.5), `faithful_hard`, `faithful_exp` (exponential stem activation),
`faithful_half` / `faithful_third` (the loss on half / a third of each
batch), `faithful_w2` (loss weight 2: the default from 2026-11-26 to
2026-11-27; the `faithful` rows of results written in that time are this
configuration), `faithful_w15` (= `faithful_mean`, its earlier name),
`faithful_w1` / `faithful_w05` (weight 1 / 0.5), `faithful_t2` /
`faithful_t05` (attention temperature 2 / 0.5), `faithful_entropy` (entropy
penalty 0.5 on the attention), `faithful_sparsemax` (sparsemax scores at
temperature 20: at 1 the initial support is about 33 of 200 positions and the
model did not learn); and `cnn`. Results of `faithful_hard`, `faithful_exp`,
`faithful_half`, `faithful_third` and `motif` written before 2026-11-27 were
trained at loss weight 2.

    python benchmarks/faithfulness.py                      # everything, 3 seeds (hours on 2 cores)
    python benchmarks/faithfulness.py --quick              # tiny smoke run (minutes)
    python benchmarks/faithfulness.py --datasets planted --variants paper faithful cnn --seeds 0
    python benchmarks/faithfulness.py --finished-only ...  # summarize the finished runs only

Runs are resumable (each finished run leaves `row.json`). A finished run is
reused only if its trained model's options (read from its `model.keras`) are
still the variant's: a run of `--work` trained under an older default is
refused with a message, not mixed into the table. Writes
`benchmarks/results/faithfulness/{faithfulness.json,faithfulness.md,runs.csv,tradeoff.png}`.
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
ROW_FILE = "row.json"
FRACTION = 0.2

# The default until 2026-11-28: the window's mean, faithfulness loss weight 1.5. The
# variants below that change one option of "the default" were measured against it and
# stay defined against it, so that their rows can be repeated.
# (written out: this module imports Keras only when it trains; a test checks it against
# attngen_keras.models.classifiers.MEAN_WINDOW_PRESET)
MEAN_WINDOW_DEFAULT = {
    "attention_window_pooling": "mean",
    "faithfulness_weight": 1.5,
    "attention_window_sharpness": 1.0,
    "attention_window_gate": False,
}


def _old_default(**changes):
    return ("attngen", "faithful", {**MEAN_WINDOW_DEFAULT, **changes})


# name -> (model, TrainConfig.preset, TrainConfig.attention)
VARIANTS = {
    "paper": ("attngen", "paper", {}),
    "paper_hard": ("attngen", "paper", {"inference": "hard"}),
    "nucleotides": _old_default(faithfulness_weight=0.0),
    "faithful_features": ("attngen", "paper", {"faithfulness_weight": 2.0}),
    "faithful": ("attngen", "faithful", {}),
    "faithful_mean": _old_default(),
    "faithful_lme": _old_default(attention_window_pooling="log_mean_exp"),
    "faithful_lme05": _old_default(
        attention_window_pooling="log_mean_exp", attention_window_sharpness=0.5
    ),
    # the default of 2026-11-28 before the learned gate (eleventh session)
    "faithful_lme_w2": (
        "attngen",
        "faithful",
        {
            "attention_window_pooling": "log_mean_exp",
            "faithfulness_weight": 2.0,
            "attention_window_sharpness": 1.0,
            "attention_window_gate": False,
        },
    ),
    # the window weight learned per position (thirteenth session): alone, and with sharpness 2
    "faithful_gate": (
        "attngen",
        "faithful",
        {"attention_window_gate": True, "attention_window_sharpness": 1.0},
    ),
    "faithful_gate_sharp2": (
        "attngen",
        "faithful",
        {"attention_window_gate": True, "attention_window_sharpness": 2.0},
    ),
    "faithful_nowindow": (
        "attngen",
        "faithful",
        {
            "attention_window": 1,
            "faithfulness_weight": 2.0,
            "attention_window_gate": False,
            "attention_window_sharpness": 1.0,
        },
    ),
    "faithful_hard": _old_default(inference="hard"),
    "faithful_exp": _old_default(stem_activation="exponential"),
    "motif": ("attngen", "motif", {}),
    "faithful_half": _old_default(faithfulness_batch_fraction=0.5),
    "faithful_third": _old_default(faithfulness_batch_fraction=1 / 3),
    "faithful_w2": _old_default(faithfulness_weight=2.0),
    "faithful_w15": _old_default(faithfulness_weight=1.5),
    "faithful_w1": _old_default(faithfulness_weight=1.0),
    "faithful_w05": _old_default(faithfulness_weight=0.5),
    "faithful_t2": _old_default(temperature=2.0),
    "faithful_t05": _old_default(temperature=0.5),
    "faithful_entropy": _old_default(attention_entropy_weight=0.5),
    "faithful_sparsemax": _old_default(normalization="sparsemax", temperature=20.0),
    "cnn": ("cnn", "faithful", {}),
}
# other names of the same configuration, kept so that their runs can be repeated; a full
# run (no --variants) trains each configuration once
ALIASES = {"faithful_gate_sharp2": "faithful", "faithful_w15": "faithful_mean"}
FIGURES = (
    "test_accuracy", "deletion_top", "deletion_random", "sufficiency_top", "sufficiency_random",
    "aopc_comprehensiveness_top", "aopc_comprehensiveness_random", "aopc_sufficiency_top",
    "aopc_sufficiency_random", "uniform_attention_accuracy", "planted_auroc", "planted_auprc",
    "cnn_ism_deletion_top", "mean_epoch_seconds",
)  # fmt: skip


@dataclasses.dataclass
class Dataset:
    """One dataset of the benchmark and its training budget."""

    name: str
    data: list
    references: str = None
    epochs: int = 3
    max_train: int = None
    ground_truth: str = None


PLANTED_SETS = {
    # name: (consensus motifs, share of each base that is the consensus, seed)
    "planted": (("TGACGTCAGC", "CCAATGGCGA"), 0.85, 7),
    "planted95": (("GTCACGTGAC", "AGGCCTAATG"), 0.95, 11),
    # made after the default's window weight was chosen on planted95, to check it once on
    # motifs and sequences it was not chosen on
    "heldout95": (("CATTGCGGTA", "TTAGGCACCT"), 0.95, 29),
    # made 2026-11-28, once heldout95 had been looked at for the soft-maximum window (motifs
    # drawn by numpy's default_rng(20261128)), and used the same day, once, to check the
    # sharpness-0.5 window after it was chosen (not adopted): spent as a held-out set
    "heldout95b": (("ATGGTGTCGC", "CTGGCGGCTT"), 0.95, 41),
    # made 2026-11-28 (eleventh session) before any run on it, for one check of a window
    # variant chosen on planted95 and human_or_fungus validation (motifs and seed drawn by
    # numpy's default_rng(20261129))
    "heldout95c": (("TATACCATCG", "TGTCGGTTAA"), 0.95, 96),
    # made 2026-11-28 (twelfth session) before any run on it, for one check of a variant
    # chosen on planted95 and human_or_fungus validation: rng = numpy's
    # default_rng(20261130); two motifs "".join(rng.choice(list("ACGT"), 10)), then the
    # seed rng.integers(100, 1000)
    # used 2026-11-28 (thirteenth session), once, to check the learned window gate with
    # sharpness 2 (not adopted): spent as a held-out set
    "heldout95d": (("TGCCTCTAGC", "GCCGTGCTGT"), 0.95, 543),
    # made 2026-11-28 (thirteenth session) before any run on it, drawn as heldout95d with
    # numpy's default_rng(20261201), for one check of `faithful_gate_sharp2` against the
    # default on seeds 1-3, by a rule fixed before the run (docs/results/faithfulness.md,
    # thirteenth session): adopted if mean AUROC >= 0.95, mean AUPRC >= 0.85 and >= the
    # default's, and mean accuracy >= the default's - 0.01 (then the human_or_fungus test
    # split goals, seed 1, and nontata seed-1 accuracy >= the default's - 0.01)
    "heldout95e": (("CGAAGCCCTG", "CACCTCAATG"), 0.95, 315),
}
# run only when named in --datasets, so that a full run does not spend a held-out set
RESERVED_SETS = ("heldout95b", "heldout95c", "heldout95d", "heldout95e")


def planted_dataset(root, n=5000, length=200, seed=7, motifs=PLANTED_SETS["planted"][0], main=0.85):
    """Writes a planted-motif set (CSV + ground truth) under `root`; returns its paths.

    4,000 of the 5,000 sequences are training data once the run carves its
    20% test split.
    """
    from attngen_keras.synthetic import planted_motif_data

    root = Path(root)
    sequences, truth = root / "sequences.csv", root / "planted.csv"
    if not sequences.exists():
        root.mkdir(parents=True, exist_ok=True)
        pwms = [_degenerate_pwm(m, main) for m in motifs]
        data = planted_motif_data(n=n, length=length, motifs=pwms, negatives="shuffled", seed=seed)
        data.to_frame().to_csv(sequences, index=False)
        data.planted_intervals().to_csv(truth, index=False)
    return str(sequences), str(truth)


def _degenerate_pwm(consensus, main=0.85):
    pwm = np.full((len(consensus), 4), (1 - main) / 3)
    for i, base in enumerate(consensus):
        pwm[i, "ACGT".index(base)] = main
    return pwm


def datasets(work, quick=False):
    """The benchmark's datasets (those whose files exist)."""
    found = []
    hof = SHARED / "genomic_benchmarks" / "human_or_fungus"
    if hof.exists():
        found.append(
            Dataset(
                "human_or_fungus", [str(hof)], str(SHARED / "references"), epochs=3, max_train=15000
            )
        )
    nontata = SHARED / "genomic_benchmarks_seq" / "human_nontata_promoters_resplit"
    if nontata.exists():
        found.append(Dataset("nontata", [str(nontata)], epochs=10))
    for name, (motifs, main, seed) in PLANTED_SETS.items():
        folder = Path(work) / ("planted_data" if name == "planted" else f"{name}_data")
        sequences, truth = planted_dataset(folder, seed=seed, motifs=motifs, main=main)
        found.append(Dataset(name, [sequences], epochs=10, ground_truth=truth))
    if quick:
        for item in found:
            item.epochs, item.max_train = 1, 600
    return found


def train_run(dataset, variant, seed, out, batch_size=128):
    """Trains one (dataset, variant, seed) run into `out` (resumes or reuses it)."""
    from attngen_keras.training import TrainConfig, train

    model, preset, attention = VARIANTS[variant]
    config = TrainConfig(
        data=dataset.data, out=str(out), references=dataset.references, model=model, epochs=dataset.epochs,
        batch_size=batch_size, seed=seed, patience=0, max_train=dataset.max_train, preset=preset,
        attention=dict(attention),
    )  # fmt: skip
    return train(config, verbose=2)


def score_run(dataset, variant, run, n, seed=0):
    """The faithfulness figures of one trained run."""
    from attngen_keras.explain.perturbation import perturb_split
    from attngen_keras.training import load_run_data

    model, record, _, split = load_run_data(run, split="test")
    methods = ["saliency", "ism"] if variant == "cnn" else ["attention"]
    row = {}
    k = None
    for method in methods:
        result = perturb_split(model, split, method, n=n, fractions=[0.0, FRACTION], seed=seed)
        k = result["fractions"].index(FRACTION)
        prefix = "" if method in ("attention", "saliency") else f"cnn_{method}_"
        row[f"{prefix}deletion_top"] = result["accuracy"]["top"][k]
        row[f"{prefix}deletion_random"] = result["accuracy"]["random"][k]
        row[f"{prefix}sufficiency_top"] = result["sufficiency"]["top"][k]
        row[f"{prefix}sufficiency_random"] = result["sufficiency"]["random"][k]
        for mode in ("comprehensiveness", "sufficiency"):
            for ranking in ("top", "random"):
                row[f"{prefix}aopc_{mode}_{ranking}"] = result["aopc"][mode][ranking]
        if result.get("uniform_attention"):
            row["uniform_attention_accuracy"] = result["uniform_attention"]["accuracy"]
        row[f"{prefix}method"] = method
    if dataset.ground_truth:
        row.update(_localization(model, record, split, dataset.ground_truth, methods[0], n))
    return row


def _localization(model, record, split, truth, method, n):
    from attngen_keras.explain.ground_truth import ground_truth_mask
    from attngen_keras.explain.report import explain_split, localization_summary

    result = explain_split(model, split, record["class_names"], method, n=n)
    planted = ground_truth_mask(truth, result["ids"], result["valid"].sum(axis=1))
    found = localization_summary(result, planted)["importance"]
    return {"planted_auroc": found["auroc"], "planted_auprc": found["auprc"]}


def variant_options(variant):
    """The model options a variant trains with today (empty for the CNN)."""
    from attngen_keras.models.classifiers import PRESETS

    model, preset, attention = VARIANTS[variant]
    return {**PRESETS[preset], **attention} if model == "attngen" else {}


def trained_options(run):
    """The options stored in a trained run's `model.keras` (its `config.json`; no TensorFlow).

    `None` when the run kept no `model.keras` (a row written by hand): nothing to check.
    """
    import zipfile

    path = Path(run) / "model.keras"
    if not path.exists():
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))["config"]
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise SystemExit(f"error: {path}: not a readable Keras model file ({error})") from None


def _same(today, trained):
    if isinstance(today, (int, float)) and not isinstance(today, bool):
        return isinstance(trained, (int, float)) and bool(np.isclose(today, trained))
    return today == trained


def stale_options(variant, run):
    """`key: trained -> today` for every option where a trained run differs from its variant.

    An option missing from an older `model.keras` had the `AttnGen` constructor's
    default then (options are only ever added with the old behaviour as default).
    """
    from attngen_keras.models.classifiers import AttnGen

    today = variant_options(variant)
    trained = trained_options(run)
    if not today or trained is None:
        return []  # the CNN has no variant options; a hand-written row has no model to read
    defaults = AttnGen.option_defaults()
    stale = []
    for key, value in today.items():
        was = trained.get(key, defaults.get(key))
        if key in ("attention_window_weight", "attention_window_pooling") and today.get(
            "attention_window"
        ) == 1 == trained.get("attention_window", defaults["attention_window"]):
            continue  # a window of one position is the own logit, whatever the weight and pooling
        if not _same(value, was):
            stale.append(f"{key}: {was!r} -> {value!r}")
    return stale


def _refuse_stale(variant, out):
    stale = stale_options(variant, out)
    if stale:
        raise SystemExit(
            f"error: {out} was trained with other options than the variant {variant!r} has "
            f"now ({'; '.join(stale)}): use another --work, or file the run under the "
            "variant it was trained as"
        )


def run_all(selected, variants, seeds, work, n, finished_only=False):
    rows = []
    for dataset in selected:
        for variant in variants:
            for seed in seeds:
                out = Path(work) / dataset.name / f"{variant}_s{seed}"
                row_path = out / ROW_FILE
                _refuse_stale(variant, out)  # a finished run, or one whose scoring was cut short
                if row_path.exists():
                    rows.append(json.loads(row_path.read_text()))
                    continue
                if finished_only:
                    print(
                        f"-- {dataset.name} / {variant} / seed {seed}: not run, left out",
                        flush=True,
                    )
                    continue
                print(f"== {dataset.name} / {variant} / seed {seed}", flush=True)
                start = time.time()
                metrics = train_run(dataset, variant, seed, out)
                row = {
                    "dataset": dataset.name, "variant": variant, "seed": seed,
                    "test_accuracy": metrics["test"]["accuracy"],
                    "mean_epoch_seconds": metrics.get("mean_epoch_seconds"),
                    "epochs": dataset.epochs, "max_train": dataset.max_train,
                }  # fmt: skip
                row.update(score_run(dataset, variant, out, n))
                row["wall_seconds"] = time.time() - start
                row_path.write_text(json.dumps(row, indent=2))
                print(json.dumps(row), flush=True)
                rows.append(row)
    return pd.DataFrame(rows)


def summarize(frame):
    """Mean and sample std over seeds of every figure, per dataset and variant."""
    present = [f for f in FIGURES if f in frame]
    grouped = frame.groupby(["dataset", "variant"], sort=False)[present]
    summary = grouped.mean().add_suffix("_mean").join(grouped.std().add_suffix("_std"))
    summary["runs"] = grouped.size()
    return summary.reset_index()


def markdown(summary):
    def cell(row, name, digits=3):
        mean = row.get(f"{name}_mean")
        if mean is None or pd.isna(mean):
            return "-"
        std = row.get(f"{name}_std")
        return f"{mean:.{digits}f}" + (
            "" if std is None or pd.isna(std) else f" ± {std:.{digits}f}"
        )

    lines = [
        "| dataset | variant | runs | test acc | del@20 top | del@20 random | suff@20 top | suff@20 random "
        "| AOPC comp top / random | AOPC suff top / random | uniform attn | planted AUROC | planted AUPRC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, row in summary.iterrows():
        lines.append(
            f"| {row['dataset']} | {row['variant']} | {int(row['runs'])} | {cell(row, 'test_accuracy', 4)} "
            f"| {cell(row, 'deletion_top')} | {cell(row, 'deletion_random')} | {cell(row, 'sufficiency_top')} "
            f"| {cell(row, 'sufficiency_random')} "
            f"| {cell(row, 'aopc_comprehensiveness_top')} / {cell(row, 'aopc_comprehensiveness_random')} "
            f"| {cell(row, 'aopc_sufficiency_top')} / {cell(row, 'aopc_sufficiency_random')} "
            f"| {cell(row, 'uniform_attention_accuracy')} | {cell(row, 'planted_auroc')} | {cell(row, 'planted_auprc')} |"
        )
    return "\n".join(lines) + "\n"


def plot_tradeoff(summary, path):
    """Deletion@20% (x, lower = more faithful) vs sufficiency@20% (y), one point per run group."""
    from attngen_keras.plotting import plt, save_figure

    fig, ax = plt.subplots(figsize=(7, 5.5))
    markers = dict(zip(summary["dataset"].unique(), "osD^v"))
    placed = []  # points already labelled: a label near one of them goes below the others
    for _, row in summary.iterrows():
        x, y = row["deletion_top_mean"], row["sufficiency_top_mean"]
        ax.scatter(x, y, marker=markers[row["dataset"]], s=50)
        near = sum(abs(x - px) < 0.03 and abs(y - py) < 0.015 for px, py in placed)
        placed.append((x, y))
        ax.annotate(f"{row['variant']} ({row['dataset']})", (x, y), fontsize=7,
                    xytext=(3, 3 - 9 * near), textcoords="offset points")  # fmt: skip
    ax.axvline(0.65, color="tab:red", linestyle=":", label="goal: deletion@20% <= 0.65")
    ax.axhline(0.90, color="tab:green", linestyle=":", label="goal: sufficiency@20% >= 0.90")
    ax.set_xlabel("accuracy with the top 20% (own ranking) replaced by N")
    ax.set_ylabel("accuracy with only the top 20% kept")
    ax.set_title("faithfulness of each variant's own ranking (N replacement)")
    ax.legend(
        fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2
    )  # below: no label under it
    return save_figure(fig, ax, path, legend=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--datasets",
        nargs="+",
        help="subset of: human_or_fungus nontata planted planted95 heldout95 (default: all "
        "of these); heldout95b, heldout95c, heldout95d (reserved: run only when named)",
    )
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS),
        default=[v for v in VARIANTS if v not in ALIASES],
        help="default: all, without the aliases " + ", ".join(ALIASES),
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n", type=int, default=1000, help="test sequences perturbed per run")
    parser.add_argument(
        "--work", default=str(ROOT / "benchmarks" / "runs" / "faithfulness"), help="run directories"
    )
    parser.add_argument("--out", default=str(RESULTS / "faithfulness"))
    parser.add_argument(
        "--quick", action="store_true", help="600 training sequences, 1 epoch: a smoke test"
    )
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="train nothing: summarize the runs of --work that have finished",
    )
    args = parser.parse_args(argv)
    selected = datasets(args.work, args.quick)
    if args.datasets:
        unknown = set(args.datasets) - {d.name for d in selected}
        if unknown:
            print(f"unknown or unavailable datasets: {sorted(unknown)}", file=sys.stderr)
            return 2
        selected = [d for d in selected if d.name in args.datasets]
    else:
        selected = [d for d in selected if d.name not in RESERVED_SETS]
    frame = run_all(selected, args.variants, args.seeds, args.work, args.n, args.finished_only)
    summary = summarize(frame)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "runs.csv", index=False)
    table = markdown(summary)
    (out / "faithfulness.md").write_text(table)
    details = {
        "protocol": {"fraction": FRACTION, "replacement": "N", "n": args.n, "quick": args.quick,
                     "budgets": {d.name: {"epochs": d.epochs, "max_train": d.max_train} for d in selected}},
        "summary": json.loads(summary.to_json(orient="records")),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
    }  # fmt: skip
    (out / "faithfulness.json").write_text(json.dumps(details, indent=2))
    plot_tradeoff(summary, out / "tradeoff.png")
    print(table)
    print(f"wrote faithfulness.json, faithfulness.md, runs.csv and tradeoff.png to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
