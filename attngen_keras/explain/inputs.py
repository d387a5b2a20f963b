"""Checks of what the explanation functions are given: one-line errors, not TensorFlow's.

A wrongly shaped input reaches the model deep inside Keras or TensorFlow,
whose errors name internal layers (or, after the model has once been called,
Keras may even relax the input shape and return numbers for the wrong
length); these checks name the argument and what it should be instead.
"""

import numpy as np

from attngen_keras.data.alphabet import PAD


def model_length(model):
    """The sequence length a single-input model takes (None: any length, or not known).

    Example:

    >>> from attngen_keras.models import build_cnn
    >>> model_length(build_cnn(40, 2)), model_length(build_cnn(None, 2))
    (40, None)
    """
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):
        return None
    if not isinstance(shape, tuple) or len(shape) != 3:
        return None
    return None if shape[1] is None else int(shape[1])


def model_classes(model):
    """The number of classes of a classifier's output: 2 for a single sigmoid unit."""
    units = int(model.output_shape[-1])
    return 2 if units == 1 else units


def check_one_hot(model, x, name="x"):
    """`x` as float32, checked to be one-hot `(n, length, 4)` of the model's length.

    Raises:
        ValueError: another shape (with what to do for tokens or a single sequence).

    Example:

    >>> from attngen_keras.models import build_cnn
    >>> check_one_hot(build_cnn(40, 2), np.zeros((2, 30, 4)))
    Traceback (most recent call last):
    ...
    ValueError: x: sequences of length 30, but the model takes 40 positions (pad or crop them to 40)
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2 and x.shape[-1] == 4 and model_length(model) != 4:
        problem = f"shape {x.shape} is one sequence; pass a batch of one: x[None]"
    elif x.ndim == 2:
        problem = (
            f"shape {x.shape} looks like tokens; one-hot encode them first "
            "(attngen_keras.data.one_hot(tokens))"
        )
    elif x.ndim != 3 or x.shape[-1] != 4:
        problem = f"shape {x.shape} is not one-hot sequences (n, length, 4)"
    else:
        problem = _length_problem(model, x.shape[1])
    if problem:
        raise ValueError(f"{name}: {problem}")
    return x


def check_tokens(model, tokens, name="tokens"):
    """`tokens` as uint8, checked to be `(n, length)` of the model's length."""
    tokens = np.asarray(tokens)
    if tokens.ndim == 3 and tokens.shape[-1] == 4:
        problem = f"shape {tokens.shape} looks one-hot; give the (n, length) tokens"
    elif tokens.ndim != 2:
        problem = f"shape {tokens.shape} is not tokens (n, length)"
    elif tokens.size and (tokens.min() < 0 or tokens.max() > PAD):
        problem = f"values outside the alphabet's tokens 0-{PAD} (attngen_keras.data.alphabet)"
    else:
        problem = _length_problem(model, tokens.shape[1])
    if problem:
        raise ValueError(f"{name}: {problem}")
    return tokens.astype(np.uint8)


def _length_problem(model, length):
    expected = model_length(model)
    if expected is not None and length != expected:
        return (
            f"sequences of length {length}, but the model takes {expected} positions "
            f"(pad or crop them to {expected})"
        )
    return None


def check_targets(model, targets, n, name="targets"):
    """`targets` as int32 `(n,)` class indices of the model's classes.

    Example:

    >>> from attngen_keras.models import build_cnn
    >>> check_targets(build_cnn(40, 2), [1, 2], 2)
    Traceback (most recent call last):
    ...
    ValueError: targets: class 2 is not a class of the model (0-1)
    """
    values = np.asarray(targets)
    if values.dtype == bool:  # e.g. y > 0.5 of a binary model
        values = values.astype(np.int64)
    if values.shape != (n,):
        raise ValueError(f"{name}: shape {values.shape}; give one class index per sequence ({n},)")
    if n and not np.issubdtype(values.dtype, np.integer):
        rounded = values.astype(np.int64) if np.issubdtype(values.dtype, np.number) else None
        if rounded is None or not np.array_equal(rounded, values):
            raise ValueError(f"{name}: class indices must be integers, got {values.dtype}")
        values = rounded
    classes = model_classes(model)
    outside = values[(values < 0) | (values >= classes)] if n else values
    if len(outside):
        raise ValueError(
            f"{name}: class {outside[0]} is not a class of the model (0-{classes - 1})"
        )
    return values.astype(np.int32)


def check_scores(scores, shape=None, name="scores"):
    """`scores` as float, checked to be `(n, length)` (and of `shape` when given)."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        hint = f"; for one sequence pass {name}[None]" if scores.ndim == 1 else ""
        raise ValueError(f"{name}: shape {scores.shape} is not (n, length){hint}")
    if shape is not None and scores.shape != tuple(shape):
        raise ValueError(f"{name}: shape {scores.shape}, not {tuple(shape)} as the sequences")
    return scores
