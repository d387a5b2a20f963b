"""Perturbation analysis: does removing the important nucleotides break the model?

For each fraction `f`, every sequence loses `floor(f * valid_length)` of its
real (non-padding) positions, chosen three ways:

- `top`: the highest-importance positions (by one importance method, computed
  once on the unperturbed input);
- `random`: uniformly random positions (one seeded random order per
  sequence, so the removed sets are nested as `f` grows);
- `bottom`: the lowest-importance positions.

A removed position is replaced by the encoding of `N` (uniform 0.25 over
A/C/G/T: the model sees "unknown base", not padding), or, with
`replacement="random"`, by a seeded random base. The model is then scored on
the perturbed sequences. The deletion AUC is the area under accuracy vs
fraction divided by the fraction range (the mean accuracy over the curve):
a faithful importance ranking gives a low `top` AUC and a high `bottom` AUC.
"""

import json
from pathlib import Path

import numpy as np

from attngen_keras.data.alphabet import PAD, SYMBOLS, one_hot
from attngen_keras.explain.importance import predicted_targets

DEFAULT_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
RANKINGS = ("top", "random", "bottom")
REPLACEMENTS = ("N", "random")
N_TOKEN = SYMBOLS.index("N")


def removal_orders(scores, valid, seed=0):
    """Per-sequence orders in which positions are removed, per ranking.

    Args:
        scores: `(n, length)` importance.
        valid: `(n, length)` bool, real (non-padding) positions.
        seed: seed of the random ranking.

    Returns:
        dict `ranking -> (n, length)` int positions; the valid positions come
        first (in removal order), padding last.

    Example:

    >>> orders = removal_orders(np.array([[0.1, 0.9, 0.5]]), np.ones((1, 3), bool))
    >>> orders["top"].tolist(), orders["bottom"].tolist()
    ([[1, 2, 0]], [[0, 2, 1]])
    """
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    rng = np.random.default_rng(seed)
    random_key = rng.random(scores.shape)
    # padding sorts after every valid position in all three orders; ties in the
    # importance (flat or sparse maps) are broken at random, not by position
    padding = (~valid).astype(np.int8)

    def order(primary):
        return np.stack([np.lexsort((k, p, pad)) for k, p, pad in zip(random_key, primary, padding)])

    return {"top": order(-scores), "random": order(random_key), "bottom": order(scores)}


def remove_positions(tokens, order, fraction, replacement="N", rng=None):
    """Copies `tokens` with the first `floor(fraction * valid_length)` positions of `order` replaced.

    Args:
        tokens: `(n, length)` uint8 tokens (padding is `PAD`).
        order: `(n, length)` removal order (from `removal_orders`).
        fraction: share of each sequence's valid positions to remove.
        replacement: `"N"` or `"random"` (a random A/C/G/T from `rng`).
        rng: `numpy.random.Generator` for `replacement="random"`.

    Returns:
        the perturbed `(n, length)` tokens.
    """
    if replacement not in REPLACEMENTS:
        raise ValueError(f"replacement must be one of {REPLACEMENTS}, got {replacement!r}")
    tokens = np.array(tokens, dtype=np.uint8, copy=True)
    counts = np.floor(fraction * (tokens != PAD).sum(axis=1) + 1e-9).astype(int)
    chosen = np.arange(tokens.shape[1])[None, :] < counts[:, None]
    rows = np.nonzero(chosen)[0]
    columns = order[chosen]
    if replacement == "N":
        tokens[rows, columns] = N_TOKEN
    else:
        rng = rng if rng is not None else np.random.default_rng(0)
        tokens[rows, columns] = rng.integers(0, 4, size=len(rows), dtype=np.uint8)
    return tokens


def deletion_auc(fractions, accuracy):
    """Area under accuracy vs fraction, divided by the fraction range."""
    fractions = np.asarray(fractions, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    span = fractions.max() - fractions.min()
    if span <= 0:
        return float(accuracy[0])
    area = np.sum((accuracy[1:] + accuracy[:-1]) / 2 * np.diff(fractions))
    return float(area / span)


def perturbation_curves(
    model,
    tokens,
    labels,
    scores,
    fractions=DEFAULT_FRACTIONS,
    replacement="N",
    seed=0,
    batch_size=256,
):
    """Accuracy of `model` as top / random / bottom positions are removed.

    Args:
        model: a trained classifier.
        tokens: `(n, length)` uint8 tokens of the evaluation sequences.
        labels: `(n,)` int class labels.
        scores: `(n, length)` importance of the unperturbed sequences.
        fractions: removal fractions (sorted, in [0, 1]).
        replacement: `"N"` (default) or `"random"`.
        seed: seeds the random ranking and random replacement bases.
        batch_size: prediction batch size.

    Returns:
        dict with `fractions`, `accuracy` (ranking -> list), `deletion_auc`
        (ranking -> float) and `chance` (majority-class share).

    Example:

    >>> curves = perturbation_curves(model, split.tokens, split.labels, scores)  # doctest: +SKIP
    """
    fractions = [float(f) for f in fractions]
    if not fractions or any(not 0 <= f <= 1 for f in fractions) or fractions != sorted(fractions):
        raise ValueError(f"fractions must be sorted values in [0, 1], got {fractions}")
    if replacement not in REPLACEMENTS:
        raise ValueError(f"replacement must be one of {REPLACEMENTS}, got {replacement!r}")
    tokens = np.asarray(tokens, dtype=np.uint8)
    labels = np.asarray(labels).astype(np.int64)
    orders = removal_orders(scores, tokens != PAD, seed)
    accuracy = {}
    for index, ranking in enumerate(RANKINGS):
        rng = np.random.default_rng([seed, index])
        curve = []
        for fraction in fractions:
            perturbed = remove_positions(tokens, orders[ranking], fraction, replacement, rng)
            probs = model.predict(one_hot(perturbed), batch_size=batch_size, verbose=0)
            curve.append(float(np.mean(predicted_targets(probs) == labels)))
        accuracy[ranking] = curve
    return {
        "fractions": fractions,
        "accuracy": accuracy,
        "deletion_auc": {r: deletion_auc(fractions, accuracy[r]) for r in RANKINGS},
        "chance": float(np.bincount(labels).max() / len(labels)),
    }


def perturb_split(
    model,
    split,
    method="attention",
    n=3000,
    fractions=DEFAULT_FRACTIONS,
    replacement="N",
    seed=0,
    batch_size=256,
):
    """Perturbation curves of `model` on a fixed seeded subset of an `EncodedSplit`.

    The subset is the one `attngen explain` uses with the same `n` and seed.

    Returns:
        the `perturbation_curves` dict plus `method`, `n`, `replacement`, `seed`.
    """
    from attngen_keras.explain.importance import importance_scores
    from attngen_keras.explain.report import select_subset

    index = select_subset(len(split), n, seed)
    tokens, labels = split.tokens[index], split.labels[index]
    scores = importance_scores(model, one_hot(tokens), method, batch_size=batch_size)
    curves = perturbation_curves(model, tokens, labels, scores, fractions, replacement, seed, batch_size)
    return {"method": method, "n": int(len(index)), "replacement": replacement, "seed": seed, **curves}


def plot_perturbation(result, path, title=None):
    """Accuracy vs removed fraction for the three rankings, with chance level."""
    from attngen_keras.plotting import plt, save_figure  # selects the Agg backend first

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    styles = {"top": ("tab:red", "o"), "random": ("tab:gray", "s"), "bottom": ("tab:blue", "^")}
    for ranking in RANKINGS:
        color, marker = styles[ranking]
        ax.plot(
            result["fractions"], result["accuracy"][ranking], marker=marker, color=color,
            label=f"{ranking} removed (deletion AUC {result['deletion_auc'][ranking]:.3f})",
        )  # fmt: skip
    ax.axhline(result["chance"], color="black", linestyle=":", label=f"chance ({result['chance']:.2f})")
    ax.set_xlabel("fraction of nucleotides removed")
    ax.set_ylabel("accuracy")
    ax.set_ylim(min(0.0, min(min(v) for v in result["accuracy"].values())), 1.01)
    ax.set_title(title or f"{result.get('method', '')} perturbation, n={result.get('n', '')}")
    return save_figure(fig, ax, path)


def write_perturbation(result, out):
    """Writes `perturb.json` and `perturbation_curve.png` into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "perturb.json").write_text(json.dumps(result, indent=2))
    plot_perturbation(result, out / "perturbation_curve.png")
    return out / "perturb.json"
