"""In-silico saturation mutagenesis (ISM): the model re-run on every point mutant.

Every real position of every sequence is set to each base other than the
observed one (3 mutants; at an `N` or IUPAC-ambiguity position, whose
encoding is not a single base, to each of the 4 bases) and the model scores
each mutant. With `p_ref` the probability of the target class (by default
the class predicted on the unmutated sequence) and `p_mut` the same
probability for a mutant:

- the per-base map is `p_mut - p_ref` for each `(position, base)`, 0 at the
  observed base and on padding (signed: negative where the substitution
  lowers the target class);
- the position score is the largest drop over the substitutions,
  `max_b (p_ref - p_mut_b)`, unclipped: positive where some substitution
  hurts the predicted class, negative where every substitution helps it. The
  max (not the mean over the 3 bases) keeps a position important when any
  single substitution breaks it, as for a motif base whose alternatives are
  not all equally disruptive.

Padding positions are not mutated and score 0.
"""

import keras
import numpy as np
import tensorflow as tf

from attngen_keras.explain.importance import predicted_targets, target_probability
from attngen_keras.explain.inputs import check_one_hot, check_targets

DEFAULT_ISM_BATCH = 1024


def forward_function(model, length, batch_size=None):
    """A compiled `model(x, training=False)` for `(batch, length, 4)` float32 input.

    On TensorFlow one trace serves every batch size (the batch dimension is
    `None`). On other backends it is Keras' own compiled `predict_on_batch`
    (jitted on JAX); there a batch shorter than `batch_size` is padded to it,
    so that JAX compiles one shape, and the padding rows are dropped.
    """
    if keras.backend.backend() == "tensorflow":
        return tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec((None, length, 4), tf.float32)],
            reduce_retracing=True,
        )

    def forward(x):
        n = len(x)
        if batch_size is not None and n < batch_size:
            x = np.concatenate([x, np.zeros((batch_size - n, *x.shape[1:]), x.dtype)])
        return np.asarray(model.predict_on_batch(x))[:n]

    return forward


def ism(model, x, targets=None, batch_size=DEFAULT_ISM_BATCH, show_progress=False):
    """ISM position scores and signed per-base map of `model` on one-hot `x`.

    All point mutants of all sequences are listed once and scored in batches
    of `batch_size` mutants, each batch built as one one-hot array (copies of
    its sequences with one position overwritten).

    Args:
        model: a classifier with a sigmoid `(n, 1)` or softmax `(n, k)` output.
        x: one-hot input `(n, length, 4)`, padding all-zero.
        targets: `(n,)` class explained per sequence (default: predicted).
        batch_size: mutants per forward pass.
        show_progress: a progress bar over the mutants (on stderr).

    Returns:
        `(scores, per_base)`: float32 `(n, length)` max probability drop and
            float32 `(n, length, 4)` `p_mut - p_ref` (0 at the observed base
            and on padding).

    Example:

    >>> from attngen_keras.data import one_hot
    >>> from attngen_keras.models import build_cnn
    >>> tokens = np.random.default_rng(0).integers(0, 4, size=(2, 20)).astype("uint8")
    >>> scores, per_base = ism(build_cnn(20, 2), one_hot(tokens))
    >>> scores.shape, per_base.shape
    ((2, 20), (2, 20, 4))
    >>> bool(np.all(per_base[0, np.arange(20), tokens[0]] == 0))  # the observed base
    True
    """
    x = check_one_hot(model, x)
    n, length = x.shape[:2]
    if targets is not None:
        targets = check_targets(model, targets, n)
    forward = forward_function(model, length, batch_size)

    probs = np.concatenate(
        [np.asarray(forward(x[i : i + batch_size])) for i in range(0, n, batch_size)]
    )
    targets = predicted_targets(probs) if targets is None else np.asarray(targets, dtype=np.int32)
    p_ref = target_probability(probs, targets)
    valid = x.sum(axis=-1) > 0.5
    # the mutations: every (sequence, position, base) with the base not already the (single) observed one
    mutate = valid[:, :, None] & (x < 0.999)
    rows, positions, bases = np.nonzero(mutate)
    per_base = np.zeros((n, length, 4), dtype=np.float32)
    identity = np.eye(4, dtype=np.float32)
    from attngen_keras.progress import progress_bar

    for start in progress_bar(
        range(0, len(rows), batch_size), desc=f"ISM of {n} sequences", unit=" batches",
        disable=not show_progress,
    ):  # fmt: skip
        r, p, b = (a[start : start + batch_size] for a in (rows, positions, bases))
        mutants = x[r]
        mutants[np.arange(len(r)), p] = identity[b]
        p_mut = target_probability(np.asarray(forward(mutants)), targets[r])
        per_base[r, p, b] = p_mut - p_ref[r]
    drops = np.where(mutate, -per_base, -np.inf).max(axis=-1)
    scores = np.where(valid, drops, 0.0).astype(np.float32)
    return scores, per_base
