"""`attngen explain`: importance maps of a trained run, as arrays and plots."""

import warnings
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from attngen_keras.explain.importance import (  # noqa: E402
    importance_scores,
    predicted_targets,
    target_probability,
)
from attngen_keras.explain.metrics import concentration_summary, localization_metrics  # noqa: E402
from attngen_keras.files import json_text  # noqa: E402
from attngen_keras.models.batched_prediction import predict_batched  # noqa: E402

BASES = "ACGT"


def select_subset(n_total, n, seed=0):
    """A fixed, sorted random subset of `n` indices out of `n_total` (all if fewer)."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


def explain_split(
    model, split, class_names, method="attention", n=3000, seed=0, batch_size=256,
    show_progress=False,
):  # fmt: skip
    """Importance of `model` on (a fixed subset of) an `EncodedSplit`.

    Returns:
        dict of arrays: `scores (n, length)`, `labels (n,)`, `probs`,
        `sequences (n,)` str, `ids (n,)`, `valid (n, length)` bool; with
        `method="ism"` also `ism (n, length, 4)`, the signed per-base map
        `p_mutant - p_ref` of the predicted class (see `attngen_keras.explain.ism`).
    """
    index = select_subset(len(split), n, seed)
    tokens = split.tokens[index]
    from attngen_keras.data.alphabet import PAD, decode, one_hot

    x = one_hot(tokens)
    probs = predict_batched(model, x, batch_size)
    extra = {}
    if method == "ism":
        from attngen_keras.explain.ism import DEFAULT_ISM_BATCH, ism

        scores, extra["ism"] = ism(
            model, x, batch_size=max(batch_size, DEFAULT_ISM_BATCH), show_progress=show_progress
        )
    else:
        scores = importance_scores(model, x, method, batch_size=batch_size)
    return {
        **extra,
        "scores": scores,
        "labels": split.labels[index].astype(np.int32),
        "probs": np.asarray(probs, np.float32),
        "sequences": np.asarray([decode(t) for t in tokens], dtype=str),
        "ids": np.asarray(split.ids[index], dtype=str),
        "valid": tokens != PAD,
        "class_names": np.asarray(class_names, dtype=str),
    }


def enriched_kmers(sequences, scores, valid, k=6, top_fraction=0.1, n_top=15):
    """k-mers over-represented where importance is highest.

    A k-mer window counts as high-importance when its summed importance is in
    the top `top_fraction` of the sequence's windows. Enrichment is the ratio
    of its frequency among high-importance windows to its frequency among all
    windows (+1 pseudocount on both). k-mers are ranked by
    `high_count * log(enrichment)` (their share of the log-likelihood ratio),
    so a frequent, enriched k-mer outranks a rare one that happens to occur
    only in high windows (e.g. a shifted overlap of a motif).

    Returns:
        list of `(kmer, enrichment, high_count, total_count)`, best first.
    """
    high, total = Counter(), Counter()
    kernel = np.ones(k)
    for seq, row, keep in zip(sequences, scores, valid):
        length = int(keep.sum())
        if length < k:
            continue
        window = np.convolve(row[:length], kernel, mode="valid")
        cutoff = np.quantile(window, 1 - top_fraction)
        for start, value in enumerate(window):
            kmer = seq[start : start + k]
            total[kmer] += 1
            if value >= cutoff:
                high[kmer] += 1
    n_high, n_total = sum(high.values()), sum(total.values())
    if not n_high:
        return []
    rows = [
        (
            kmer,
            ((high[kmer] + 1) / (n_high + 1)) / ((total[kmer] + 1) / (n_total + 1)),
            high[kmer],
            total[kmer],
        )
        for kmer in high
        if high[kmer] >= 5
    ]
    return sorted(rows, key=lambda r: -r[2] * np.log(max(r[1], 1e-12)))[:n_top]


# logomaker's "classic" nucleotide colours, named here so that the legend matches the letters
BASE_COLORS = {"A": "#008000", "C": "#0000ff", "G": "#ffa500", "T": "#ff0000"}


def track_examples(probs, labels, n):
    """Indices of up to `n` sequences to draw, taking each class in turn: of each class its
    correct predictions first, most confident first, then its wrong ones (so a class the
    model gets wrong is still shown). `plot_tracks` asks for at least one per class.

    Example:

    >>> track_examples(np.array([[0.9], [0.8], [0.7], [0.2], [0.6]]), np.array([1, 1, 1, 0, 0]), 3)
    [3, 0, 4]
    """
    labels = np.asarray(labels)
    correct = predicted_targets(probs) == labels
    own = target_probability(probs, labels)
    queues = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        # correct ones first, each group by the probability of the true class, highest first
        queues.append(list(members[np.lexsort((-own[members], ~correct[members]))]))
    chosen = []
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(int(queue.pop(0)))
    return chosen


def plot_tracks(result, path, n_examples=4, window=None):
    """Logo-style saliency tracks of `n_examples` sequences (at least one per class, at most
    10 tracks), letters scaled by importance (logomaker)."""
    import logomaker
    import pandas as pd

    classes = len(result["class_names"])
    chosen = track_examples(result["probs"], result["labels"], min(max(n_examples, classes), 10))
    fig, axes = plt.subplots(len(chosen), 1, figsize=(14, 1.9 * len(chosen)), squeeze=False)
    for ax, i in zip(axes[:, 0], chosen):
        seq = result["sequences"][i]
        scores = result["scores"][i][: len(seq)]
        matrix = np.zeros((len(seq), 4))
        for pos, base in enumerate(seq):
            if base in BASES:
                matrix[pos, BASES.index(base)] = scores[pos]
        frame = pd.DataFrame(matrix, columns=list(BASES))
        with warnings.catch_warnings():  # a track of zeros (no base to draw: all N, say)
            warnings.filterwarnings("ignore", message="Attempting to set identical")
            logomaker.Logo(frame, ax=ax, color_scheme=BASE_COLORS)
        if not matrix.any():
            ax.set_ylim(0, 1)
        label = result["class_names"][result["labels"][i]]
        p = target_probability(result["probs"][i : i + 1], result["labels"][i : i + 1])[0]
        ax.set_title(f"{result['ids'][i]} (class {label}, p = {p:.2f})", fontsize=9, loc="left")
        ax.set_ylabel("importance")
    axes[-1, 0].set_xlabel("position")
    from matplotlib.patches import Patch

    fig.legend(
        handles=[Patch(color=BASE_COLORS[b], label=b) for b in BASES], loc="upper right",
        bbox_to_anchor=(0.99, 1.0), ncol=len(BASES), fontsize=8, frameon=False,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100, bbox_inches="tight")  # the legend whole, not cut at the edge
    plt.close(fig)
    return path


def profile_means(scores, valid):
    """Mean importance at each position over the sequences that reach it (NaN where none does).

    Padding is not a score of 0: on data of mixed lengths, averaging it in would
    make importance seem to fall toward the 3' end only because fewer sequences
    are that long.

    Example:

    >>> scores = np.array([[1.0, 3.0, 0.0], [2.0, 0.0, 0.0]])
    >>> valid = np.array([[True, True, False], [True, False, False]])
    >>> profile_means(scores, valid).tolist()
    [1.5, 3.0, nan]
    """
    valid = np.asarray(valid, dtype=bool)
    counts = valid.sum(axis=0)
    sums = np.where(valid, scores, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def plot_profile(result, path):
    """Mean importance along the sequence, per class, over the sequences that reach each position.

    On data of mixed lengths a second axis shows how many sequences reach each position.
    """
    fig, ax = plt.subplots(figsize=(10, 3.5))
    valid = np.asarray(result["valid"], dtype=bool)
    for c, name in enumerate(result["class_names"]):
        rows = result["labels"] == c
        if rows.any():
            ax.plot(
                profile_means(result["scores"][rows], valid[rows]),
                label=f"{name} (n={int(rows.sum())})",
            )
    ax.set_xlabel("position")
    ax.set_ylabel("mean importance")
    coverage = valid.sum(axis=0)
    if coverage.min() < len(valid):  # mixed lengths: how many sequences each mean is over
        counts = ax.twinx()
        counts.fill_between(np.arange(len(coverage)), coverage, color="0.6", alpha=0.15, step="mid")
        counts.set_ylabel("sequences reaching the position", color="0.4")
        counts.set_ylim(0, len(valid) * 1.05)
        ax.set_zorder(counts.get_zorder() + 1)
        ax.patch.set_visible(False)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_kmers(kmers, path, k):
    """Bar chart of the most enriched k-mers."""
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(len(kmers), 1) + 1.5))
    names = [r[0] for r in kmers][::-1]
    values = [r[1] for r in kmers][::-1]
    bars = ax.barh(names, values)
    # the order is the ranking (count in top windows x log enrichment), not the enrichment alone
    ax.bar_label(
        bars, labels=[f"{r[2]} in top windows" for r in kmers][::-1], padding=3, fontsize=7
    )
    ax.set_xlim(0, max(values, default=1) * 1.35)
    ax.set_xlabel(f"enrichment of the {k}-mer in top-importance windows")
    ax.set_title(
        "best first, ranked by count in top windows x log(enrichment)", fontsize=9, loc="left"
    )
    ax.grid(alpha=0.3, axis="x")
    if not kmers:  # an empty chart would look like a failed plot
        ax.set_yticks([])
        ax.text(
            0.5, 0.5, f"no {k}-mer is enriched in the top-importance windows\n"
            "(too few sequences, or no motif the importance singles out)",
            transform=ax.transAxes, ha="center", va="center", fontsize=9,
        )  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def localization_summary(result, planted, seed=0):
    """Per-sequence AUROC/AUPRC of the importance vs ground truth, and of a random ranking.

    Args:
        result: an `explain_split` result.
        planted: `(n, length)` bool ground truth of the same sequences.
        seed: seed of the random reference ranking.
    """
    planted = np.asarray(planted, dtype=bool)
    if planted.shape[1] < result["scores"].shape[1]:
        planted = np.pad(planted, ((0, 0), (0, result["scores"].shape[1] - planted.shape[1])))
    random = np.random.default_rng(seed).random(result["scores"].shape)
    return {
        "importance": localization_metrics(result["scores"], planted, result["valid"]),
        "random": localization_metrics(random, planted, result["valid"]),
    }


# the files `write_report` writes
REPORT_FILES = (
    "importance.npz", "summary.json", "saliency_tracks.png", "mean_profile.png", "enriched_kmers.png",
)  # fmt: skip


def write_report(result, out, method, k=6, planted=None, request=None, labels="given"):
    """Writes `importance.npz`, `summary.json` and the PNG plots to `out`.

    With `planted` (ground-truth informative positions, `(n, length)` bool)
    the summary also holds `localization` (see `localization_summary`); with
    `request` (the options that made it) the summary holds them as `request`.
    `labels`: `"given"`, or `"predicted"` for sequences without labels (the
    summary says which, as `labels`).
    `importance.npz` holds `scores`, `labels`, `probs`, `sequences`, `ids`
    and, for `method="ism"`, `ism` (the `(n, length, 4)` per-base map).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keys = ("scores", "labels", "probs", "sequences", "ids", "ism")
    np.savez_compressed(
        out / "importance.npz", **{key: result[key] for key in keys if key in result}
    )
    kmers = enriched_kmers(result["sequences"], result["scores"], result["valid"], k=k)
    summary = {
        "method": method,
        "n": int(len(result["labels"])),
        "labels": labels,
        "concentration": concentration_summary(result["scores"], result["valid"]),
        "per_class": {
            str(name): concentration_summary(
                result["scores"][result["labels"] == c], result["valid"][result["labels"] == c]
            )
            for c, name in enumerate(result["class_names"])
        },
        "enriched_kmers": [
            {"kmer": a, "enrichment": b, "high": c, "total": d} for a, b, c, d in kmers
        ],
    }
    if planted is not None:
        summary["localization"] = localization_summary(result, planted)
    if request is not None:
        summary["request"] = request
    (out / "summary.json").write_text(json_text(summary))
    plot_tracks(result, out / "saliency_tracks.png")
    plot_profile(result, out / "mean_profile.png")
    plot_kmers(kmers, out / "enriched_kmers.png", k)
    return summary
