"""Per-nucleotide importance scores: AttnGen attention and gradient methods.

Every method returns `(n, length)` float32 scores aligned with the input
positions, with padding set to 0. Gradient methods explain the score of the
*target* class (by default the predicted class): for a sigmoid output the
probability of class 1, or of class 0 (`1 - p`) when the target is 0.

- `attention`: AttnGen's own SaliencyMask attention (AttnGen models only),
  mapped to nucleotides. The SaliencyMask scores the stem convolution's
  output at position `i`, which is computed from the `kernel_size`
  nucleotides around `i`; each nucleotide therefore receives the summed
  attention of the windows that contain it divided by `kernel_size` (a
  projection through the stem's receptive field; the `kernel_size // 2`
  nucleotides at each end are covered by fewer windows and get less). Measured on planted motifs (7 bp, stem kernel 9), the raw
  position-level attention peaks exactly at the motif centre (140 of 142
  sequences) but ranks the other motif positions low (per-sequence AUROC
  0.31); the projection gives AUROC 0.98.
  An AttnGen whose SaliencyMask scores the nucleotides themselves
  (`mask_on="nucleotides"`) needs no projection: its attention is returned
  as is.
- `attention_raw`: the position-level softmax attention itself (sums to 1
  over the valid positions).
- `saliency`: vanilla gradients (tf-keras-vis `Saliency`), reduced per
  position as `max_c |d score / d x_c|`.
- `smoothgrad`: the same averaged over noisy copies of the input
  (tf-keras-vis `Saliency` with `smooth_samples`).
- `input_x_gradient`: `|sum_c x_c * d score / d x_c|`, the gradient at the
  observed nucleotide.
- `gradcam`: tf-keras-vis `Gradcam` on the last Conv1D layer, upsampled by
  tf-keras-vis to the input length (coarse: resolution of that layer).
- `ism`: in-silico saturation mutagenesis (`attngen_keras.explain.ism`): the
  largest drop of the target-class probability over the substitutions of
  each position (unclipped; 3 model calls per position, no gradients).
"""

import warnings
import weakref

import keras
import numpy as np
import tensorflow as tf

from attngen_keras.explain.inputs import check_one_hot, check_targets
from attngen_keras.models import attention_model
from attngen_keras.models.batched_prediction import predict_batched

METHODS = (
    "attention",
    "attention_raw",
    "saliency",
    "smoothgrad",
    "input_x_gradient",
    "gradcam",
    "ism",
)


def predicted_targets(probs):
    """Predicted class indices from sigmoid `(n, 1)` or softmax `(n, k)` outputs."""
    probs = np.asarray(probs)
    if probs.shape[-1] == 1:
        return (probs[:, 0] >= 0.5).astype(np.int32)
    return probs.argmax(axis=-1).astype(np.int32)


def target_probability(probs, targets):
    """Probability of class `targets[i]` for each row of sigmoid `(n, 1)` or softmax `(n, k)` outputs.

    Args:
        probs: model outputs.
        targets: `(n,)` class indices.

    Returns:
        float64 `(n,)`: `p` or `1 - p` for a sigmoid output, the class column of a softmax.

    Example:

    >>> target_probability(np.array([[0.8], [0.3]]), np.array([1, 0])).round(2).tolist()
    [0.8, 0.7]
    """
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if probs.shape[-1] == 1:
        return np.where(targets == 1, probs[:, 0], 1.0 - probs[:, 0])
    return probs[np.arange(len(probs)), targets]


def importance_scores(
    model,
    x,
    method="attention",
    targets=None,
    batch_size=256,
    smooth_samples=20,
    smooth_noise=0.1,
    show_progress=False,
):
    """Per-nucleotide importance `(n, length)` of `model` on one-hot `x`.

    Args:
        model: a classifier from `attngen_keras.models` (or loaded `.keras`).
        x: one-hot input `(n, length, 4)`, padding all-zero.
        method: one of `METHODS`.
        targets: class index to explain per sequence (default: predicted).
        batch_size: sequences per gradient batch (`ism`: mutants per
            forward pass, at least 1024).
        smooth_samples: noisy copies for `smoothgrad`.
        smooth_noise: noise level (fraction of the input range) for `smoothgrad`.
        show_progress: a progress bar for the slow method, `ism` (on stderr).

    Returns:
        float32 array `(n, length)`, 0 on padding.

    Example:

    >>> from attngen_keras.data import one_hot
    >>> from attngen_keras.models import build_attngen
    >>> model = build_attngen(40, 2)
    >>> x = one_hot(np.random.default_rng(0).integers(0, 4, size=(3, 40)).astype("uint8"))
    >>> [importance_scores(model, x, method).shape for method in ("attention", "saliency")]
    [(3, 40), (3, 40)]
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    x = check_one_hot(model, x)
    if targets is not None:
        targets = check_targets(model, targets, len(x))
    valid = (x.sum(axis=-1) > 0.5).astype(np.float32)
    if method in ("attention", "attention_raw"):
        scores = np.asarray(predict_batched(_attention_model(model), x, batch_size), np.float32)
        if method == "attention":
            scores = project_to_nucleotides(scores * valid, _stem_conv(model))
        return (scores * valid).astype(np.float32)
    if method == "ism":
        from attngen_keras.explain.ism import DEFAULT_ISM_BATCH, ism

        return ism(
            model, x, targets, batch_size=max(batch_size, DEFAULT_ISM_BATCH),
            show_progress=show_progress,
        )[0]  # fmt: skip
    if targets is None:
        targets = predicted_targets(predict_batched(model, x, batch_size))
    targets = np.asarray(targets, dtype=np.int32)
    sigmoid = model.output_shape[-1] == 1
    out = np.zeros(valid.shape, dtype=np.float32)
    if keras.backend.backend() == "tensorflow" and method != "input_x_gradient":

        def compute(xs, ts):
            return _gradient_method(model, xs, ts, method, sigmoid, smooth_samples, smooth_noise)

    else:  # tf-keras-vis needs TensorFlow tensors: the same maps from the backend's own gradients
        gradients = input_gradient_function(model, sigmoid)

        def compute(xs, ts):
            return _native_gradient_method(gradients, xs, ts, method, smooth_samples, smooth_noise)

    with warnings.catch_warnings():
        # tf-keras-vis calls the model with a list of inputs; Keras warns that
        # a single-input model received a list (harmless)
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        for start in range(0, len(x), batch_size):
            stop = start + batch_size
            out[start:stop] = compute(x[start:stop], targets[start:stop])
    return out * valid


# the attention model of each model explained, so that repeated calls (a loop over batches or
# perturbations) reuse its traced prediction function
_ATTENTION_MODELS = weakref.WeakKeyDictionary()


def _attention_model(model):
    try:
        return _ATTENTION_MODELS[model]
    except KeyError:
        _ATTENTION_MODELS[model] = found = attention_model(model)
        return found
    except TypeError:  # not weakly referable
        return attention_model(model)


def input_gradient_function(model, sigmoid):
    """`f(x, targets)`: gradient of each row's target-class probability w.r.t. one-hot `x`.

    Uses the running Keras backend's own differentiation (inference mode), so
    the gradient methods work without TensorFlow tensors: a jitted
    `jax.grad` of `model.stateless_call` on JAX, autograd on torch, a
    `tf.GradientTape` on TensorFlow. The rows are independent (inference
    mode), so the gradient of the summed probabilities gives each row's own.

    Args:
        model: a classifier with a sigmoid `(n, 1)` or softmax `(n, k)` output.
        sigmoid: whether the output is a single sigmoid unit.

    Returns:
        A function of float32 `x` `(n, length, 4)` and int `targets` `(n,)`
        returning float32 numpy gradients `(n, length, 4)`.

    Example:

    >>> from attngen_keras.models import build_cnn
    >>> f = input_gradient_function(build_cnn(20, 2), sigmoid=True)
    >>> f(np.full((2, 20, 4), 0.25, "float32"), np.array([0, 1])).shape
    (2, 20, 4)
    """

    def chosen(probs, targets, where, take):
        if sigmoid:
            return where(targets == 1, probs[:, 0], 1.0 - probs[:, 0])
        return take(probs, targets)

    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(trainable, non_trainable, x, targets):
            probs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            take = lambda p, t: jnp.take_along_axis(p, t[:, None], axis=1)[:, 0]  # noqa: E731
            return jnp.sum(chosen(probs, targets, jnp.where, take))

        gradient = jax.jit(jax.grad(total, argnums=2))

        def jax_gradients(x, targets):
            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            return np.asarray(gradient(trainable, non_trainable, x, np.asarray(targets, np.int32)))

        return jax_gradients
    if backend == "torch":
        import torch

        def torch_gradients(x, targets):
            inputs = keras.ops.convert_to_tensor(np.asarray(x, np.float32)).requires_grad_(True)
            t = keras.ops.convert_to_tensor(np.asarray(targets, np.int64))
            take = lambda p, t: torch.gather(p, 1, t[:, None])[:, 0]  # noqa: E731
            value = chosen(model(inputs, training=False), t, torch.where, take).sum()
            (grads,) = torch.autograd.grad(value, inputs)
            return grads.detach().cpu().numpy()

        return torch_gradients

    def tensorflow_gradients(x, targets):
        inputs = tf.convert_to_tensor(np.asarray(x, np.float32))
        t = tf.constant(np.asarray(targets, np.int32))
        take = lambda p, t: tf.gather(p, t, axis=1, batch_dims=1)  # noqa: E731
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            value = tf.reduce_sum(chosen(model(inputs, training=False), t, tf.where, take))
        return tape.gradient(value, inputs).numpy()

    return tensorflow_gradients


def _native_gradient_method(gradients, x, targets, method, smooth_samples, smooth_noise):
    """The gradient methods from `input_gradient_function`, as tf-keras-vis defines them.

    `saliency`: `max_c |g|`; `smoothgrad`: `max_c` of the mean of `|g|` over
    `smooth_samples` noisy copies (Gaussian noise, standard deviation
    `smooth_noise` times each sequence's input range); `input_x_gradient`:
    `|sum_c x_c g_c|`. Grad-CAM needs tf-keras-vis, hence TensorFlow.
    """
    if method == "gradcam":
        raise ValueError(
            f"method 'gradcam' needs the TensorFlow backend (tf-keras-vis); this is "
            f"{keras.backend.backend()!r}: use saliency, smoothgrad, input_x_gradient or ism"
        )
    if method == "input_x_gradient":
        return np.abs((gradients(x, targets) * x).sum(axis=-1))
    if method == "saliency":
        return np.abs(gradients(x, targets)).max(axis=-1)
    rng = np.random.default_rng(0)
    sigma = smooth_noise * (x.max(axis=(1, 2), keepdims=True) - x.min(axis=(1, 2), keepdims=True))
    total = np.zeros_like(x)
    for _ in range(smooth_samples):
        noisy = (x + rng.normal(0.0, 1.0, x.shape) * sigma).astype(np.float32)
        total += np.abs(gradients(noisy, targets))
    return (total / smooth_samples).max(axis=-1)


def _stem_conv(model):
    """The convolution the attention is projected through (`None`: it already scores nucleotides)."""
    from attngen_keras.models import attention_projection_conv

    return attention_projection_conv(model)


def project_to_nucleotides(scores, conv):
    """Spreads position scores over the input window of a 'same' Conv1D.

    Output position `i` of `conv` reads inputs `i - pad + t * dilation` for
    `t < kernel_size` (`pad = (effective_kernel - 1) // 2`, as for 'same'
    padding); each of them receives `scores[i] / kernel_size`, so the total
    is preserved away from the edges.

    Args:
        scores: `(n, length)` position scores.
        conv: the `keras.layers.Conv1D` whose outputs were scored (`None`:
            scores are returned unchanged).

    Example:

    >>> conv = keras.layers.Conv1D(1, 3, padding="same")
    >>> project_to_nucleotides(np.array([[0.0, 3.0, 0.0, 0.0]]), conv).tolist()
    [[1.0, 1.0, 1.0, 0.0]]
    """
    scores = np.asarray(scores, dtype=np.float32)
    if conv is None:
        return scores
    kernel, dilation = int(conv.kernel_size[0]), int(conv.dilation_rate[0])
    pad = ((kernel - 1) * dilation) // 2
    length = scores.shape[1]
    out = np.zeros_like(scores)
    for t in range(kernel):
        shift = t * dilation - pad  # input j = i + shift
        if shift >= 0:
            out[:, shift:] += scores[:, : length - shift] / kernel
        else:
            out[:, :shift] += scores[:, -shift:] / kernel
    return out


def _score(targets, sigmoid):
    from tf_keras_vis.utils.scores import BinaryScore, CategoricalScore

    if sigmoid:
        return BinaryScore([bool(t) for t in targets])
    return CategoricalScore([int(t) for t in targets])


def _gradient_method(model, x, targets, method, sigmoid, smooth_samples, smooth_noise):
    """`saliency`, `smoothgrad` and `gradcam` through tf-keras-vis (TensorFlow backend)."""
    if method in ("saliency", "smoothgrad"):
        from tf_keras_vis.saliency import Saliency

        saliency = Saliency(model, clone=False)
        kwargs = (
            {"smooth_samples": smooth_samples, "smooth_noise": smooth_noise}
            if method == "smoothgrad"
            else {}
        )
        grads = saliency(_score(targets, sigmoid), x, keepdims=True, normalize_map=False, **kwargs)
        return np.abs(np.asarray(grads)).max(axis=-1)
    from tf_keras_vis.gradcam import Gradcam

    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    if not convs:
        raise ValueError(f"model {model.name!r} has no Conv1D layer for Grad-CAM")
    cam = Gradcam(model, clone=False)(
        _score(targets, sigmoid), x, penultimate_layer=convs[-1], normalize_cam=False
    )
    return np.asarray(cam, dtype=np.float32)
