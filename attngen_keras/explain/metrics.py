"""Importance-distribution metrics and ground-truth localization metrics."""

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from attngen_keras.explain.inputs import check_scores


def _valid_rows(scores, valid):
    scores = check_scores(scores).astype(np.float64)
    if valid is None:
        valid = np.ones(scores.shape, dtype=bool)
    valid = np.asarray(valid)
    if valid.shape != scores.shape:
        raise ValueError(
            f"valid: shape {valid.shape}, not a mask of the scores' shape "
            f"{scores.shape} (e.g. tokens != PAD, not the lengths)"
        )
    valid = valid.astype(bool)
    for row, keep in zip(scores, valid):
        values = np.clip(row[keep], 0.0, None)
        if values.size and values.sum() > 0:
            yield values


def gini(values):
    """Gini coefficient of non-negative `values` (0: uniform, -> 1: one position).

    Example:

    >>> gini(np.ones(4)), round(gini(np.array([0, 0, 0, 1.0])), 3)
    (0.0, 0.75)
    """
    values = np.sort(np.asarray(values, dtype=np.float64))
    n = values.size
    if n == 0 or values.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2 * ranks - n - 1) @ values / (n * values.sum()))


def normalized_entropy(values):
    """Shannon entropy of `values / sum` divided by `log(n)` (1: uniform).

    Example:

    >>> normalized_entropy(np.ones(8))
    1.0
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2 or values.sum() == 0:
        return 0.0
    p = values / values.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum() / np.log(values.size))


def top_mass(values, fraction):
    """Share of the total importance held by the top `fraction` of positions.

    Example:

    >>> top_mass(np.array([1.0, 1, 1, 1, 1, 1, 1, 1, 1, 11]), 0.1)
    0.55
    """
    values = np.sort(np.asarray(values, dtype=np.float64))[::-1]
    k = max(1, int(round(fraction * values.size)))
    return float(values[:k].sum() / values.sum()) if values.sum() > 0 else 0.0


def concentration_summary(scores, valid=None):
    """Mean Gini, normalized entropy and top-10%/20% mass over sequences.

    Args:
        scores: `(n, length)` non-negative importance.
        valid: `(n, length)` bool, real positions (default: all).

    Returns:
        dict with `gini`, `entropy`, `top10_mass`, `top20_mass`, `n`.
    """
    rows = list(_valid_rows(scores, valid))
    if not rows:
        return {"gini": float("nan"), "entropy": float("nan"), "top10_mass": float("nan"),
                "top20_mass": float("nan"), "n": 0}  # fmt: skip
    return {
        "gini": float(np.mean([gini(r) for r in rows])),
        "entropy": float(np.mean([normalized_entropy(r) for r in rows])),
        "top10_mass": float(np.mean([top_mass(r, 0.1) for r in rows])),
        "top20_mass": float(np.mean([top_mass(r, 0.2) for r in rows])),
        "n": len(rows),
    }


def localization_metrics(scores, planted, valid=None):
    """Per-sequence AUROC and AUPRC of `scores` against planted positions.

    The standard ground-truth check for attribution maps (e.g. Koo & Ploenzke
    2021): for each sequence with at least one planted and one background
    position, rank its valid positions by importance and score the ranking
    against the planted ones; the means over those sequences are returned.

    Args:
        scores: `(n, length)` importance.
        planted: `(n, length)` bool, True at planted motif positions.
        valid: `(n, length)` bool, real positions (default: all).

    Returns:
        dict with `auroc`, `auprc`, `n` (sequences scored), and
        `auprc_baseline` (mean fraction of planted positions: a random
        ranking's expected AUPRC).

    Example:

    >>> s = np.array([[0.1, 0.9, 0.8, 0.2]]); p = np.array([[0, 1, 1, 0]], bool)
    >>> localization_metrics(s, p)["auroc"]
    1.0
    """
    scores = check_scores(scores).astype(np.float64)
    planted = check_scores(planted, scores.shape, name="planted").astype(bool)
    valid = (
        np.ones(scores.shape, bool)
        if valid is None
        else check_scores(valid, scores.shape, name="valid").astype(bool)
    )
    aurocs, auprcs, baselines = [], [], []
    for row, truth, keep in zip(scores, planted, valid):
        truth, row = truth[keep], row[keep]
        if truth.all() or not truth.any():
            continue
        aurocs.append(roc_auc_score(truth, row))
        auprcs.append(average_precision_score(truth, row))
        baselines.append(truth.mean())
    if not aurocs:
        return {
            "auroc": float("nan"),
            "auprc": float("nan"),
            "auprc_baseline": float("nan"),
            "n": 0,
        }
    return {
        "auroc": float(np.mean(aurocs)),
        "auprc": float(np.mean(auprcs)),
        "auprc_baseline": float(np.mean(baselines)),
        "n": len(aurocs),
    }
