"""`predict_batched`: model outputs for an in-memory array, without `Model.predict`'s per-call set-up."""

import numpy as np


def predict_batched(model, x, batch_size=256):
    """The model's outputs for `x`, one `predict_on_batch` call per batch.

    The same outputs as `model.predict(x, batch_size=batch_size)`, without
    the input pipeline that `predict` builds on every call (about 0.1 s on
    2 cores, most of the time of a call on a few hundred sequences). For
    code that predicts many arrays with one model: perturbation curves,
    faithfulness metrics, importance scores. The compiled predict function
    is shared with `model.predict` (on TensorFlow it is traced once for full
    batches and once for any other size). A model under a multi-replica
    distribution strategy goes through `model.predict`, which splits batches
    across the replicas.

    Args:
        model: a built single-output Keras model.
        x: an array `(n, ...)` of the model's input (as float32).
        batch_size: sequences per call.

    Returns:
        `(n, ...)` numpy array of the model's outputs (as `predict`: float32
        for a float32 model).

    Example:

    >>> import numpy as np
    >>> from attngen_keras.models import build_cnn
    >>> model = build_cnn(20, 2)
    >>> x = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (5, 20))]
    >>> predict_batched(model, x, batch_size=2).shape
    (5, 1)
    """
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(getattr(model, "outputs", None) or [None]) > 1:
        raise ValueError(f"predict_batched takes a single-output model; {model.name!r} has several")
    strategy = getattr(model, "distribute_strategy", None)
    if getattr(strategy, "num_replicas_in_sync", 1) > 1:
        # `predict` splits each batch across the replicas; `predict_on_batch` does not
        return model.predict(x, batch_size=batch_size, verbose=0)
    x = np.asarray(x, dtype=np.float32)
    if len(x) == 0:
        return np.zeros((0, *model.output_shape[1:]), dtype=np.float32)
    outputs = [
        np.asarray(model.predict_on_batch(x[start : start + batch_size]))
        for start in range(0, len(x), batch_size)
    ]
    return np.concatenate(outputs)
