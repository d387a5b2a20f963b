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
`replacement="random"`, by a seeded random base (one per position, the same
whichever ranking, fraction or mode removes it: `random_background`), or, with
`replacement="shuffle"`, by the base at the same position of a seeded
dinucleotide-preserving shuffle of the same sequence (the replaced stretch
keeps the sequence's own composition). The model is then scored on
the perturbed sequences. The deletion AUC is the area under accuracy vs
fraction divided by the fraction range (the mean accuracy over the curve):
a faithful importance ranking gives a low `top` AUC and a high `bottom` AUC.

`perturb_split` (behind `attngen perturb`) adds the faithfulness metrics of
`attngen_keras.explain.faithfulness`: sufficiency curves (only the top or
random `f` kept), comprehensiveness/sufficiency probability drops, their
AOPC, and the uniform-attention control.
"""

from pathlib import Path

import numpy as np

from attngen_keras.data.alphabet import PAD, SYMBOLS, one_hot
from attngen_keras.explain.importance import predicted_targets, target_probability
from attngen_keras.explain.inputs import check_scores, check_targets, check_tokens
from attngen_keras.explain.shuffle import shuffle_tokens
from attngen_keras.files import json_text
from attngen_keras.models.batched_prediction import predict_batched

DEFAULT_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
RANKINGS = ("top", "random", "bottom")
REPLACEMENTS = ("N", "random", "shuffle")
N_TOKEN = SYMBOLS.index("N")
_SHUFFLE_STREAM = 1985  # the shuffled background's random stream, next to `seed`
_RANDOM_STREAM = 1986  # the random bases' stream


def shuffled_background(tokens, seed=0):
    """The `"shuffle"` replacement source: one seeded dinucleotide shuffle per sequence.

    Example:

    >>> shuffled_background(np.array([[0, 1, 2, 3, 0]], np.uint8)).shape
    (1, 5)
    """
    return shuffle_tokens(tokens, np.random.default_rng([seed, _SHUFFLE_STREAM]))


def random_background(tokens, seed=0):
    """The `"random"` replacement source: one seeded random A/C/G/T per position.

    Every ranking, fraction and mode that replaces a position replaces it by
    the same base, so that `top` and `random` differ only in *which*
    positions they replace (common random numbers: at fraction 0 of the
    sufficiency curves, where every position is replaced, they are equal).

    Example:

    >>> tokens = np.zeros((2, 5), np.uint8)
    >>> bool((random_background(tokens, 1) == random_background(tokens, 1)).all())
    True
    """
    rng = np.random.default_rng([seed, _RANDOM_STREAM])
    return rng.integers(0, 4, size=np.shape(tokens), dtype=np.uint8)


def replacement_background(tokens, replacement, seed=0):
    """The per-position replacement source of `replacement` (None for `"N"`)."""
    if replacement == "shuffle":
        return shuffled_background(tokens, seed)
    if replacement == "random":
        return random_background(tokens, seed)
    return None


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
        return np.stack(
            [np.lexsort((k, p, pad)) for k, p, pad in zip(random_key, primary, padding)]
        )

    return {"top": order(-scores), "random": order(random_key), "bottom": order(scores)}


def remove_positions(
    tokens, order, fraction, replacement="N", rng=None, keep=False, background=None
):
    """Copies `tokens` with the first `floor(fraction * valid_length)` positions of `order` replaced.

    With `keep=True` it is the other way round (sufficiency): those positions
    are kept and every other valid position is replaced (`fraction=0`:
    all of them). Padding is never touched.

    Args:
        tokens: `(n, length)` uint8 tokens (padding is `PAD`).
        order: `(n, length)` removal order (from `removal_orders`).
        fraction: share of each sequence's valid positions to remove (or keep).
        replacement: `"N"`, `"random"` (the base at the same position of
            `background`, or a random A/C/G/T from `rng` without one) or
            `"shuffle"` (the token at the same position of `background`).
        rng: `numpy.random.Generator` for `"random"` (and for `"shuffle"`
            when `background` is not given).
        keep: replace the complement of the chosen positions instead.
        background: `(n, length)` tokens for `"shuffle"` (default:
            `shuffle_tokens(tokens, rng)`) and `"random"` (see
            `replacement_background`).

    Returns:
        the perturbed `(n, length)` tokens.

    Example:

    >>> tokens = np.array([[0, 1, 2, 3]], np.uint8); order = np.array([[2, 0, 1, 3]])
    >>> remove_positions(tokens, order, 0.5).tolist(), remove_positions(tokens, order, 0.5, keep=True).tolist()
    ([[4, 1, 4, 3]], [[0, 4, 2, 4]])
    """
    if replacement not in REPLACEMENTS:
        raise ValueError(f"replacement must be one of {REPLACEMENTS}, got {replacement!r}")
    tokens = np.array(tokens, dtype=np.uint8, copy=True)
    valid = tokens != PAD
    counts = np.floor(fraction * valid.sum(axis=1) + 1e-9).astype(int)
    chosen = np.arange(tokens.shape[1])[None, :] < counts[:, None]
    rows = np.nonzero(chosen)[0]
    columns = np.asarray(order)[chosen]
    if keep:
        replaced = valid.copy()
        replaced[rows, columns] = False
        rows, columns = np.nonzero(replaced)
    if replacement == "N":
        tokens[rows, columns] = N_TOKEN
    elif replacement == "random" and background is None:
        rng = rng if rng is not None else np.random.default_rng(0)
        tokens[rows, columns] = rng.integers(0, 4, size=len(rows), dtype=np.uint8)
    else:
        if background is None:
            background = shuffle_tokens(
                tokens, rng if rng is not None else np.random.default_rng(0)
            )
        tokens[rows, columns] = np.asarray(background, dtype=np.uint8)[rows, columns]
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


def check_fractions(fractions):
    """`fractions` as floats, when they are at least two increasing values in [0, 1] (a curve,
    whose deletion AUC is its mean height), else a `ValueError`.

    Example:

    >>> check_fractions([0, 0.2, 0.5])
    [0.0, 0.2, 0.5]
    """
    fractions = [float(f) for f in fractions]
    if any(not 0 <= f <= 1 for f in fractions) or fractions != sorted(fractions):
        raise ValueError(f"--fractions must be sorted values in [0, 1], got {fractions}")
    if len(set(fractions)) != len(fractions):
        raise ValueError(f"--fractions has duplicates: {fractions}")
    if len(fractions) < 2:
        raise ValueError(
            f"--fractions needs at least two values (a curve and its deletion AUC), got {fractions}"
        )
    return fractions


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
        replacement: `"N"` (default), `"random"` or `"shuffle"`.
        seed: seeds the random ranking, random replacement bases and the
            shuffled background (`shuffled_background(tokens, seed)`).
        batch_size: prediction batch size.

    Returns:
        dict with `fractions`, `accuracy` (ranking -> list), `deletion_auc`
        (ranking -> float), `chance` (majority-class share) and
        `probability_drop` (ranking -> list: the mean drop of the
        probability of the class predicted on the intact input, i.e. the
        comprehensiveness at each fraction).

    Example:

    >>> from attngen_keras.models import build_cnn
    >>> rng = np.random.default_rng(0)
    >>> tokens = rng.integers(0, 4, size=(8, 40)).astype("uint8")
    >>> labels, scores = np.arange(8) % 2, rng.random((8, 40))
    >>> curves = perturbation_curves(build_cnn(40, 2), tokens, labels, scores, fractions=(0, 0.2))
    >>> sorted(curves["deletion_auc"])
    ['bottom', 'random', 'top']
    >>> len({curves["accuracy"][ranking][0] for ranking in ("top", "random", "bottom")})
    1
    """
    fractions = check_fractions(fractions)
    if replacement not in REPLACEMENTS:
        raise ValueError(f"replacement must be one of {REPLACEMENTS}, got {replacement!r}")
    tokens = check_tokens(model, tokens)
    labels = check_targets(model, labels, len(tokens), name="labels").astype(np.int64)
    check_scores(scores, tokens.shape)
    orders = removal_orders(scores, tokens != PAD, seed)
    background = replacement_background(tokens, replacement, seed)
    intact = predict_batched(model, one_hot(tokens), batch_size)
    targets = predicted_targets(intact)
    p_ref = target_probability(intact, targets)
    accuracy, drop = {}, {}
    for ranking in RANKINGS:
        curve, drops = [], []
        for fraction in fractions:
            perturbed = remove_positions(
                tokens, orders[ranking], fraction, replacement, background=background
            )
            probs = predict_batched(model, one_hot(perturbed), batch_size)
            curve.append(float(np.mean(predicted_targets(probs) == labels)))
            drops.append(float(np.mean(p_ref - target_probability(probs, targets))))
        accuracy[ranking], drop[ranking] = curve, drops
    return {
        "fractions": fractions,
        "accuracy": accuracy,
        "deletion_auc": {r: deletion_auc(fractions, accuracy[r]) for r in RANKINGS},
        "chance": float(np.bincount(labels).max() / len(labels)),
        "probability_drop": drop,
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
    show_progress=False,
):
    """Perturbation curves and faithfulness metrics of `model` on a fixed seeded subset of an `EncodedSplit`.

    The subset is the one `attngen explain` uses with the same `n` and seed.

    Args:
        model: a trained classifier.
        split: the `EncodedSplit` to sample from.
        method: importance method (`attngen_keras.explain.METHODS`).
        n: sequences in the subset.
        fractions: removal (and sufficiency keep) fractions.
        replacement: one of `REPLACEMENTS`.
        seed: seeds the subset, random ranking and replacement.
        batch_size: prediction batch size.
        show_progress: a progress bar for `ism`'s importance (on stderr).

    Returns:
        the `perturbation_curves` dict plus `method`, `n`, `replacement`,
        `seed`; `sufficiency` (`top`/`random` -> accuracy with only that
        fraction kept); `probability_drop` (`comprehensiveness`: ranking ->
        list, `sufficiency`: ranking -> list); `aopc_fractions`; `aopc`
        (`comprehensiveness`/`sufficiency` -> `top`/`random` -> float);
        `uniform_attention` (`accuracy`, `baseline_accuracy`; `None`
        without a SaliencyMask).

    Example:

    >>> result = perturb_split(model, ds["test"], "saliency", n=500)  # doctest: +SKIP
    >>> result["aopc"]["comprehensiveness"]["top"]  # doctest: +SKIP
    """
    from attngen_keras.explain.faithfulness import (
        AOPC_FRACTIONS,
        aopc_summary,
        faithfulness_curves,
        uniform_attention_accuracy,
    )
    from attngen_keras.explain.importance import importance_scores
    from attngen_keras.explain.report import select_subset

    index = select_subset(len(split), n, seed)
    tokens, labels = split.tokens[index], split.labels[index]
    x = one_hot(tokens)
    scores = importance_scores(model, x, method, batch_size=batch_size, show_progress=show_progress)
    curves = perturbation_curves(
        model, tokens, labels, scores, fractions, replacement, seed, batch_size
    )
    kept = faithfulness_curves(
        model, tokens, labels, scores, curves["fractions"], ("sufficiency",), ("top", "random"),
        replacement, seed, batch_size,
    )  # fmt: skip
    table, _ = aopc_summary(model, tokens, labels, scores, replacement, seed, batch_size)
    uniform = uniform_attention_accuracy(model, x, labels, batch_size)
    return {
        "method": method, "n": int(len(index)), "replacement": replacement, "seed": seed, **curves,
        "sufficiency": kept["accuracy"]["sufficiency"],
        "probability_drop": {
            "comprehensiveness": curves["probability_drop"],
            "sufficiency": kept["probability_drop"]["sufficiency"],
        },
        "aopc_fractions": list(AOPC_FRACTIONS),
        "aopc": table,
        "uniform_attention": None if uniform is None
        else {"accuracy": uniform, "baseline_accuracy": kept["baseline"]["accuracy"]},
    }  # fmt: skip


def plot_perturbation(result, path, title=None):
    """Deletion (top/random/bottom removed) and, when present, sufficiency (top/random kept) curves.

    Two panels of accuracy vs fraction, with chance level (the share of
    predictions unchanged when `result["labels"]` is `"predicted"`); the
    title names the method, `n` and the replacement.
    """
    from attngen_keras.plotting import plt, save_figure  # selects the Agg backend first

    sufficiency = result.get("sufficiency")
    panels = 2 if sufficiency else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.2), squeeze=False)
    styles = {"top": ("tab:red", "o"), "random": ("tab:gray", "s"), "bottom": ("tab:blue", "^")}
    ax = axes[0, 0]
    for ranking in RANKINGS:
        color, marker = styles[ranking]
        ax.plot(
            result["fractions"], result["accuracy"][ranking], marker=marker, color=color,
            label=f"{ranking} removed (deletion AUC {result['deletion_auc'][ranking]:.3f})",
        )  # fmt: skip
    ax.set_xlabel("fraction of nucleotides removed")
    ax.set_title("deletion (comprehensiveness)", fontsize=10)
    curves = [*result["accuracy"].values()]
    if sufficiency:
        right = axes[0, 1]
        for ranking, curve in sufficiency.items():
            color, marker = styles[ranking]
            right.plot(
                result["fractions"], curve, marker=marker, color=color, label=f"only {ranking} kept"
            )
        right.set_xlabel("fraction of nucleotides kept (the rest replaced)")
        right.set_title("sufficiency", fontsize=10)
        curves += [*sufficiency.values()]
    low = min(0.0, min(min(v) for v in curves))
    # sequences without labels (`perturb --sequences`) are scored against the model's own
    # predictions on them: "accuracy" is then the share of predictions unchanged
    ylabel = "share of predictions unchanged" if result.get("labels") == "predicted" else "accuracy"
    for ax in axes[0]:
        ax.axhline(
            result["chance"], color="black", linestyle=":", label=f"chance ({result['chance']:.2f})"
        )
        ax.set_ylabel(ylabel)
        ax.set_ylim(low, 1.01)
    replaced = {"N": "N", "random": "random bases", "shuffle": "dinucleotide-shuffled bases"}
    fig.suptitle(
        title or f"{result.get('method', '')} perturbation, n={result.get('n', '')}, "
        f"replaced by {replaced.get(result.get('replacement'), result.get('replacement', 'N'))}"
    )  # fmt: skip
    for ax in axes[0, :-1]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, axes[0, -1], path)


# the files `write_perturbation` writes
PERTURB_FILES = ("perturb.json", "perturbation_curve.png")


def write_perturbation(result, out):
    """Writes `perturb.json` and `perturbation_curve.png` into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "perturb.json").write_text(json_text(result))
    plot_perturbation(result, out / "perturbation_curve.png")
    return out / "perturb.json"
