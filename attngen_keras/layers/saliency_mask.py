"""The AttnGen `SaliencyMask` layer: nucleotide-level attention plus masking."""

import keras
from keras import ops

# Added to `mask_fraction * n_valid` before flooring so that fractions that
# are not exactly representable in float32 (0.7 -> 0.69999999) still drop the
# intended number of positions.
_FLOOR_EPSILON = 1e-4
_NEG_LARGE = -1e9


@keras.saving.register_keras_serializable(package="attngen")
class SaliencyMask(keras.layers.Layer):
    """Scores every position with attention and masks the least salient ones.

    For per-position features `h` of shape `(batch, length, channels)` the
    layer computes additive-attention logits `v^T tanh(W h + b)`, a softmax
    over the *valid* positions of each sequence (padding gets probability 0),
    and reweights the features by `score * n_valid` (so uniform attention is
    the identity). In training only, it then zeroes the positions whose score
    lies in the lowest `mask_fraction` of each sequence's valid positions:
    exactly `floor(mask_fraction * n_valid)` positions per sequence. The
    threshold is computed from the scores without gradient; gradients still
    reach the attention parameters through the reweighting. At inference no
    position is masked. Padded positions are always zeroed.

    `mask_fraction` is a non-trainable `keras.Variable`; assign to it (for
    example from `attngen_keras.callbacks.MaskingSchedule`) and the new value
    is used by already-compiled train steps.

    Args:
        attention_units: width of the hidden layer of the attention scorer.
        mask_fraction: initial fraction of valid positions masked in training,
            in `[0, 1)`.
        return_scores: if `True`, the layer returns `(features, scores)` where
            `scores` has shape `(batch, length)`, sums to 1 over the valid
            positions and is 0 on padding.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a tensor `(batch, length, channels)` or a list
            `[features, valid]` where `valid` is `(batch, length)` with 1 for
            real positions and 0 for padding.
        training: Python bool; masking happens only when `True`.

    Example:

    >>> x = keras.random.normal((2, 10, 8))
    >>> valid = keras.ops.ones((2, 10))
    >>> layer = SaliencyMask(attention_units=4, mask_fraction=0.2,
    ...                      return_scores=True)
    >>> features, scores = layer([x, valid], training=True)
    >>> tuple(features.shape), tuple(scores.shape)
    ((2, 10, 8), (2, 10))
    """

    def __init__(
        self, attention_units=32, mask_fraction=0.0, return_scores=False, **kwargs
    ):
        super().__init__(**kwargs)
        mask_fraction = float(mask_fraction)
        if not 0.0 <= mask_fraction < 1.0:
            raise ValueError(
                f"mask_fraction must be in [0, 1), got {mask_fraction}"
            )
        if int(attention_units) < 1:
            raise ValueError(
                f"attention_units must be >= 1, got {attention_units}"
            )
        self.attention_units = int(attention_units)
        self.return_scores = bool(return_scores)
        self._initial_mask_fraction = mask_fraction
        self.mask_fraction = self.add_weight(
            name="mask_fraction",
            shape=(),
            initializer=keras.initializers.Constant(mask_fraction),
            trainable=False,
            dtype="float32",
        )

    def build(self, input_shape):
        feature_shape = input_shape[0] if _is_pair(input_shape) else input_shape
        channels = feature_shape[-1]
        if channels is None:
            raise ValueError("SaliencyMask needs a known channel dimension")
        self.attention_kernel = self.add_weight(
            name="attention_kernel",
            shape=(channels, self.attention_units),
            initializer="glorot_uniform",
        )
        self.attention_bias = self.add_weight(
            name="attention_bias", shape=(self.attention_units,), initializer="zeros"
        )
        self.score_kernel = self.add_weight(
            name="score_kernel",
            shape=(self.attention_units, 1),
            initializer="glorot_uniform",
        )

    def attention_logits(self, features):
        """Unnormalized per-position attention logits, `(batch, length)`."""
        hidden = ops.tanh(
            ops.matmul(features, self.attention_kernel) + self.attention_bias
        )
        return ops.squeeze(ops.matmul(hidden, self.score_kernel), axis=-1)

    def call(self, inputs, training=None):
        if _is_pair(inputs):
            features, valid = inputs
            valid = ops.cast(valid, self.compute_dtype)
        else:
            features = inputs
            valid = ops.ones(ops.shape(features)[:-1], dtype=self.compute_dtype)
        is_valid = valid > 0
        logits = ops.cast(self.attention_logits(features), "float32")
        logits = ops.where(is_valid, logits, _NEG_LARGE)
        scores = ops.softmax(logits, axis=-1) * ops.cast(is_valid, "float32")
        n_valid = ops.sum(ops.cast(is_valid, "float32"), axis=-1, keepdims=True)
        weights = scores * n_valid
        if training:
            weights = weights * self._keep_mask(logits, is_valid, n_valid)
        outputs = features * ops.expand_dims(
            ops.cast(weights, features.dtype), axis=-1
        )
        if self.return_scores:
            return outputs, ops.cast(scores, self.compute_dtype)
        return outputs

    def _keep_mask(self, logits, is_valid, n_valid):
        """1.0 for kept positions, 0.0 for the lowest-scoring valid ones.

        One sort per sequence gives the score of the last dropped position;
        everything below it is dropped, and of the positions tied with it the
        leftmost ones, so exactly `n_drop` positions go (one sort is cheaper
        than ranking every position with two argsorts).
        """
        ranking = ops.stop_gradient(ops.where(is_valid, logits, -_NEG_LARGE))
        n_drop = ops.floor(
            ops.cast(self.mask_fraction, "float32") * n_valid + _FLOOR_EPSILON
        )
        last_dropped = ops.cast(ops.maximum(n_drop - 1.0, 0.0), "int32")
        threshold = ops.take_along_axis(ops.sort(ranking, axis=-1), last_dropped, axis=-1)
        below = ranking < threshold
        tied = ops.cast(ranking == threshold, "float32")
        tie_order = ops.cumsum(tied, axis=-1) - tied
        ties_to_drop = n_drop - ops.sum(ops.cast(below, "float32"), axis=-1, keepdims=True)
        drop = ops.logical_or(below, ops.logical_and(tied > 0, tie_order < ties_to_drop))
        drop = ops.logical_and(drop, n_drop > 0)
        return 1.0 - ops.cast(drop, "float32")

    def compute_output_shape(self, input_shape):
        feature_shape = input_shape[0] if _is_pair(input_shape) else input_shape
        if self.return_scores:
            return tuple(feature_shape), tuple(feature_shape[:-1])
        return tuple(feature_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "attention_units": self.attention_units,
                "mask_fraction": float(ops.convert_to_numpy(self.mask_fraction)),
                "return_scores": self.return_scores,
            }
        )
        return config


def _is_pair(value):
    if isinstance(value, (list, tuple)) and len(value) == 2:
        first = value[0]
        return not isinstance(first, (int, type(None)))
    return False
