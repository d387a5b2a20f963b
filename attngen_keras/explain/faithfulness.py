"""Faithfulness of an importance ranking: comprehensiveness, sufficiency, AOPC.

The ERASER definitions (DeYoung et al. 2020), with the deletion/insertion
view of Petsiuk et al. 2018. For every sequence the target class is the one
predicted on the intact input and `p` its probability. For a share `k` of
each sequence's real positions, ranked by importance (`top`) or at random
(`random`, the reference every ranking must beat):

- comprehensiveness(k) = `p(x) - p(x without its top-k positions)`: the
  positions are replaced (see `REPLACEMENTS`); large = the ranking found what
  the model needs;
- sufficiency(k) = `p(x) - p(only the top-k positions of x kept)`: every
  other real position replaced; small = the top-k alone carry the decision;
- AOPC = the mean of either over `k` in `AOPC_FRACTIONS` (1, 5, 10, 20, 50%).

Each is reported as the mean probability drop over sequences and as the
accuracy (against the labels) of the perturbed input. `uniform_attention_accuracy`
is the control of Wiegreffe & Pinter 2019: does the trained model still work
when its own attention is replaced by uniform weights?
"""

import numpy as np

from attngen_keras.data.alphabet import PAD, one_hot
from attngen_keras.explain.importance import predicted_targets, target_probability
from attngen_keras.explain.inputs import check_one_hot, check_scores, check_targets, check_tokens
from attngen_keras.explain.perturbation import (
    REPLACEMENTS,
    removal_orders,
    remove_positions,
    replacement_background,
)
from attngen_keras.models.batched_prediction import predict_batched

AOPC_FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)
MODES = ("comprehensiveness", "sufficiency")


def faithfulness_curves(
    model,
    tokens,
    labels,
    scores,
    fractions=AOPC_FRACTIONS,
    modes=MODES,
    rankings=("top", "random"),
    replacement="N",
    seed=0,
    batch_size=256,
):
    """Accuracy and mean target-probability drop as the top/random k% are removed or kept alone.

    At fraction `k`, `comprehensiveness` replaces the first
    `floor(k * valid_length)` positions of each ranking and `sufficiency`
    replaces every other real position (`k = 0`: all replaced). Removal
    orders are those of `removal_orders` with the same `seed`; the
    `"shuffle"` background is `shuffled_background(tokens, seed)`, and the
    `"random"` bases are `random_background(tokens, seed)`: one per position,
    whatever the mode, ranking and `k`, so a value at `k` does not depend on
    the other fractions asked for, and the rankings differ only in the
    positions they replace.

    Args:
        model: a classifier with `predict` (sigmoid `(n, 1)` or softmax output).
        tokens: `(n, length)` uint8 tokens (padding `PAD`).
        labels: `(n,)` int class labels.
        scores: `(n, length)` importance of the intact sequences.
        fractions: the shares `k`, in [0, 1].
        modes: any of `"comprehensiveness"`, `"sufficiency"`.
        rankings: any of `"top"`, `"random"`, `"bottom"`.
        replacement: one of `REPLACEMENTS`.
        seed: seeds the random ranking and the replacement.
        batch_size: prediction batch size.

    Returns:
        dict with `fractions`, `baseline` (`accuracy` and mean target
        `probability` of the intact input), and `accuracy` and
        `probability_drop`, each `mode -> ranking -> list` over `fractions`.

    Example:

    >>> import keras
    >>> from attngen_keras.models import build_cnn
    >>> keras.utils.set_random_seed(0)
    >>> rng = np.random.default_rng(0)
    >>> tokens = rng.integers(0, 4, size=(8, 40)).astype("uint8")
    >>> labels, scores = np.arange(8) % 2, rng.random((8, 40))
    >>> curves = faithfulness_curves(build_cnn(40, 2), tokens, labels, scores, fractions=(0.1, 0.5))
    >>> sorted(curves["probability_drop"]), len(curves["accuracy"]["sufficiency"]["top"])
    (['comprehensiveness', 'sufficiency'], 2)
    >>> drops = curves["probability_drop"]["sufficiency"]["top"]
    >>> aopc(drops) == sum(drops) / 2
    True
    """
    fractions = [float(f) for f in fractions]
    if any(not 0 <= f <= 1 for f in fractions):
        raise ValueError(f"fractions must be in [0, 1], got {fractions}")
    if replacement not in REPLACEMENTS:
        raise ValueError(f"replacement must be one of {REPLACEMENTS}, got {replacement!r}")
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"modes must be among {MODES}, got {sorted(unknown)}")
    tokens = check_tokens(model, tokens)
    labels = check_targets(model, labels, len(tokens), name="labels").astype(np.int64)
    check_scores(scores, tokens.shape)
    probs = predict_batched(model, one_hot(tokens), batch_size)
    targets = predicted_targets(probs)
    p_ref = target_probability(probs, targets)
    orders = removal_orders(scores, tokens != PAD, seed)
    background = replacement_background(tokens, replacement, seed)
    accuracy = {mode: {} for mode in modes}
    drop = {mode: {} for mode in modes}
    for mode in modes:
        for ranking in rankings:
            accuracy[mode][ranking], drop[mode][ranking] = [], []
            for fraction in fractions:
                perturbed = remove_positions(
                    tokens, orders[ranking], fraction, replacement,
                    keep=mode == "sufficiency", background=background,
                )  # fmt: skip
                out = predict_batched(model, one_hot(perturbed), batch_size)
                accuracy[mode][ranking].append(float(np.mean(predicted_targets(out) == labels)))
                drop[mode][ranking].append(float(np.mean(p_ref - target_probability(out, targets))))
    return {
        "fractions": fractions,
        "baseline": {
            "accuracy": float(np.mean(targets == labels)),
            "probability": float(np.mean(p_ref)),
        },
        "accuracy": accuracy,
        "probability_drop": drop,
    }


def aopc(drops):
    """Area over the perturbation curve: the mean probability drop over the fractions.

    Example:

    >>> aopc([0.1, 0.2, 0.6])
    0.3
    """
    return float(np.mean(np.asarray(drops, dtype=np.float64))) if len(drops) else float("nan")


def aopc_summary(
    model,
    tokens,
    labels,
    scores,
    replacement="N",
    seed=0,
    batch_size=256,
    rankings=("top", "random"),
):
    """AOPC of comprehensiveness and sufficiency over `AOPC_FRACTIONS`, per ranking.

    Returns:
        `(aopc, curves)`: `mode -> ranking -> float`, and the
        `faithfulness_curves` result at `AOPC_FRACTIONS` it was computed from.

    Example:

    >>> from attngen_keras.models import build_cnn
    >>> rng = np.random.default_rng(0)
    >>> tokens = rng.integers(0, 4, size=(8, 40)).astype("uint8")
    >>> labels, scores = np.arange(8) % 2, rng.random((8, 40))
    >>> table, curves = aopc_summary(build_cnn(40, 2), tokens, labels, scores)
    >>> {mode: sorted(table[mode]) for mode in table}
    {'comprehensiveness': ['random', 'top'], 'sufficiency': ['random', 'top']}
    >>> curves["fractions"] == list(AOPC_FRACTIONS)
    True
    """
    curves = faithfulness_curves(
        model,
        tokens,
        labels,
        scores,
        AOPC_FRACTIONS,
        MODES,
        rankings,
        replacement,
        seed,
        batch_size,
    )
    table = {
        mode: {r: aopc(curves["probability_drop"][mode][r]) for r in rankings} for mode in MODES
    }
    return table, curves


def uniform_attention_accuracy(model, x, labels, batch_size=256):
    """Accuracy of `model` with the attention of its SaliencyMask layers made uniform.

    The control of Wiegreffe & Pinter 2019 ("Attention is not not
    explanation"): if uniform weights work as well as the learned attention,
    the attention is not what the decision rests on. When the layer has a
    `uniform_attention` variable it is set to 1; otherwise its `score_kernel`
    is set to zeros, which makes every logit 0, so the softmax over the valid
    positions is uniform and the reweighting (`score * n_valid`) is the
    identity. The weights are restored afterwards, also on error.

    Args:
        model: a trained classifier.
        x: one-hot input `(n, length, 4)`.
        labels: `(n,)` int class labels.
        batch_size: prediction batch size.

    Returns:
        the accuracy (float), or `None` for a model without a SaliencyMask.

    Example:

    >>> from attngen_keras.models import build_attngen, build_cnn
    >>> x = one_hot(np.random.default_rng(0).integers(0, 4, size=(8, 40)).astype("uint8"))
    >>> y = np.arange(8) % 2
    >>> uniform_attention_accuracy(build_cnn(40, 2), x, y) is None
    True
    >>> 0.0 <= uniform_attention_accuracy(build_attngen(40, 2), x, y) <= 1.0
    True
    """
    import keras

    from attngen_keras.callbacks.masking_schedule import find_saliency_masks

    layers = find_saliency_masks(model)
    if not layers:
        return None
    x = check_one_hot(model, x)
    labels = check_targets(model, labels, len(x), name="labels")
    saved = []
    try:
        for layer in layers:
            flag = getattr(layer, "uniform_attention", None)
            if isinstance(flag, keras.Variable):
                saved.append((flag, keras.ops.convert_to_numpy(flag)))
                flag.assign(np.ones(flag.shape, dtype=flag.dtype))
            else:
                kernel = layer.score_kernel
                saved.append((kernel, keras.ops.convert_to_numpy(kernel)))
                kernel.assign(np.zeros(kernel.shape, dtype=kernel.dtype))
        probs = predict_batched(model, x, batch_size)
    finally:
        for variable, value in reversed(saved):
            variable.assign(value)
    return float(np.mean(predicted_targets(probs) == np.asarray(labels).astype(np.int64)))
