"""The AttnGen `SaliencyMask` layer: nucleotide-level attention plus masking."""

import math

import keras
from keras import ops

# Added to `mask_fraction * n_valid` before flooring so that fractions that
# are not exactly representable in float32 (0.7 -> 0.69999999) still drop the
# intended number of positions.
_FLOOR_EPSILON = 1e-4
_NEG_LARGE = -1e9
_ABSENT = -1.0e30  # window_log_mean_exp's value of a position outside the sequence
INFERENCE_MODES = ("soft", "hard")
NORMALIZATIONS = ("softmax", "sigmoid", "sparsemax")
WINDOW_POOLINGS = ("mean", "log_mean_exp")


def lowest_fraction_mask(ranking, is_valid, fraction):
    """Boolean `(batch, length)`: the lowest-ranked `floor(fraction * n_valid)` valid positions.

    One sort per sequence gives the value of the last selected position;
    everything below it is selected, and of the positions tied with it the
    leftmost ones, so exactly `floor(fraction * n_valid)` positions are chosen
    (one sort is cheaper than ranking every position with two argsorts).
    Padding (`is_valid` False) is never selected. Take `-ranking` to select the
    highest-ranked positions instead.

    Args:
        ranking: `(batch, length)` float scores (no gradient is taken).
        is_valid: `(batch, length)` bool.
        fraction: scalar or `(batch, 1)` share of each row's valid positions.

    Example:

    >>> r = keras.ops.convert_to_tensor([[0.3, 0.1, 0.2, 0.9]])
    >>> keras.ops.convert_to_numpy(
    ...     lowest_fraction_mask(r, r > -1, 0.5)).tolist()
    [[False, True, True, False]]
    """
    ranking = ops.stop_gradient(ops.where(is_valid, ops.cast(ranking, "float32"), -_NEG_LARGE))
    n_valid = ops.sum(ops.cast(is_valid, "float32"), axis=-1, keepdims=True)
    n_drop = ops.floor(ops.cast(fraction, "float32") * n_valid + _FLOOR_EPSILON)
    last_dropped = ops.cast(ops.maximum(n_drop - 1.0, 0.0), "int32")
    threshold = ops.take_along_axis(ops.sort(ranking, axis=-1), last_dropped, axis=-1)
    below = ranking < threshold
    tied = ops.cast(ranking == threshold, "float32")
    tie_order = ops.cumsum(tied, axis=-1) - tied
    ties_to_drop = n_drop - ops.sum(ops.cast(below, "float32"), axis=-1, keepdims=True)
    drop = ops.logical_or(below, ops.logical_and(tied > 0, tie_order < ties_to_drop))
    return ops.logical_and(ops.logical_and(drop, n_drop > 0), is_valid)


def window_mean(values, weights, window):
    """`(batch, length)` weighted mean of `values` over the `window` centred on each position.

    `sum(values * weights) / sum(weights)` over the window (positions past
    either end count as weight 0); 0 where the window holds no weight.
    `values` must already be multiplied by `weights`.

    Example:

    >>> v = keras.ops.convert_to_tensor([[3.0, 0.0, 6.0, 0.0]])
    >>> w = keras.ops.convert_to_tensor([[1.0, 1.0, 1.0, 0.0]])
    >>> keras.ops.convert_to_numpy(window_mean(v, w, 3)).round(2).tolist()
    [[1.5, 3.0, 3.0, 6.0]]
    """
    kernel = ops.ones((window, 1, 1), dtype="float32")
    sums = ops.conv(ops.expand_dims(values, -1), kernel, padding="same")
    counts = ops.conv(ops.expand_dims(weights, -1), kernel, padding="same")
    return ops.squeeze(sums / ops.maximum(counts, 1e-6), -1)


def window_log_mean_exp(values, weights, window):
    """`(batch, length)` log of the weighted mean of `exp(values)` over the `window` centred on each position.

    A soft maximum of the window: between its mean (for close values) and its
    maximum (for one value far above the others), so that a position next to
    a strong peak is pulled up towards it more than by the mean. Positions
    past either end, and those of weight 0, do not count; 0 where the window
    holds no weight. Each window is shifted by its own maximum, so it neither
    overflows nor underflows. `weights` is a mask, not differentiated
    through (the attention passes its valid positions).

    Example:

    >>> v = keras.ops.convert_to_tensor([[0.0, 0.0, 6.0, 9.0]])
    >>> w = keras.ops.convert_to_tensor([[1.0, 1.0, 1.0, 0.0]])
    >>> keras.ops.convert_to_numpy(window_log_mean_exp(v, w, 3)).astype(float).round(2).tolist()
    [[0.0, 4.91, 5.31, 6.0]]
    """
    values = ops.cast(values, "float32")
    weights = ops.cast(weights, "float32")
    half = window // 2
    # absent positions (weight 0, or past either end) take a value below any window's
    # maximum, so they never set it and their exp(value - maximum) is 0
    masked = ops.pad(
        ops.where(weights > 0, values, _ABSENT), [[0, 0], [half, half]], constant_values=_ABSENT
    )
    padded_weights = ops.pad(weights, [[0, 0], [half, half]])

    def shifted(padded, k):  # the window's k-th position for every centre
        stop = k - (window - 1)
        return padded[:, k:stop] if stop < 0 else padded[:, k:]

    # one (batch, length) array per offset, accumulated: on 2 CPU cores this took 3.9 ms
    # for 1024 x 200 values (window 9) where stacking the window into one
    # (batch, length, window) array took 14.7 ms (benchmarks/window_pooling_forward.py)
    top = shifted(masked, 0)
    for k in range(1, window):
        top = ops.maximum(top, shifted(masked, k))
    top = ops.stop_gradient(top)
    # (No `minimum(., 0)` on the exponent: at the window's maximum it would tie, and JAX
    # and torch split a tie's gradient in half.)
    sums = ops.zeros_like(values)
    total = ops.zeros_like(values)
    for k in range(window):
        weight = shifted(padded_weights, k)
        sums = sums + ops.exp(shifted(masked, k) - top) * weight
        total = total + weight
    mean_exp = sums / ops.maximum(total, 1e-6)
    pooled = top + ops.log(ops.maximum(mean_exp, 1e-30))
    return ops.where(total > 0, pooled, 0.0)


def sparsemax(logits, is_valid):
    """Sparsemax over the valid positions of each row (Martins & Astudillo, 2016).

    The Euclidean projection of the logits onto the probability simplex:
    `max(z - tau, 0)` with `tau` chosen so that each row sums to 1. Unlike a
    softmax, positions whose logit is more than the support's spread below
    the largest get probability exactly 0. Padding (`is_valid` False) gets 0.
    Differentiable almost everywhere (the gradient flows through the support).

    Args:
        logits: `(batch, length)` float logits.
        is_valid: `(batch, length)` bool.

    Returns:
        `(batch, length)` float32 rows that sum to 1 over the valid positions.

    Example:

    >>> z = keras.ops.convert_to_tensor([[2.0, 1.0, -1.0, 5.0]])
    >>> valid = keras.ops.convert_to_tensor([[True, True, True, False]])
    >>> keras.ops.convert_to_numpy(sparsemax(z, valid)).astype(float).round(3).tolist()
    [[1.0, 0.0, 0.0, 0.0]]
    >>> z = keras.ops.convert_to_tensor([[0.5, 0.3, 0.1]])
    >>> keras.ops.convert_to_numpy(sparsemax(z, z > -1)).astype(float).round(3).tolist()
    [[0.533, 0.333, 0.133]]
    """
    logits = ops.where(is_valid, ops.cast(logits, "float32"), _NEG_LARGE)
    # shift by the row maximum: the projection is shift-invariant, and the
    # cumulative sums below stay small
    logits = logits - ops.stop_gradient(ops.max(logits, axis=-1, keepdims=True))
    ordered = ops.flip(ops.sort(logits, axis=-1), axis=-1)  # descending
    ranks = ops.cast(ops.arange(1, ops.shape(logits)[-1] + 1), "float32")
    cumulative = ops.cumsum(ordered, axis=-1)
    in_support = ops.logical_and(1.0 + ranks * ordered > cumulative, ordered > _NEG_LARGE / 2)
    support = ops.sum(ops.cast(in_support, "int32"), axis=-1, keepdims=True)
    support = ops.maximum(support, 1)
    tau = (ops.take_along_axis(cumulative, support - 1, axis=-1) - 1.0) / ops.cast(
        support, "float32"
    )
    return ops.where(is_valid, ops.relu(logits - tau), 0.0)


@keras.saving.register_keras_serializable(package="attngen")
class SaliencyMask(keras.layers.Layer):
    """Scores every position with attention and masks the least salient ones.

    For per-position features `h` of shape `(batch, length, channels)` the
    layer computes additive-attention logits `v^T tanh(W h + b) / temperature`,
    the scores, a softmax (or sparsemax, below) over the *valid* positions of
    each sequence (padding gets probability 0), and the weights: `w = score * n_valid` with
    `normalization="softmax"` (uniform attention gives `w = 1`), or an
    independent gate `w = sigmoid(logit)` per position with
    `normalization="sigmoid"` (same ranking; removing a position leaves the
    others' weights alone, where a softmax would renormalize them), or
    `w = sparsemax(logits) * n_valid` with `normalization="sparsemax"` (the
    scores are a sparsemax instead of a softmax: positions far enough below
    the best get weight exactly 0, so with `inference="soft"` what follows
    sees them as `fill_value` even at inference). The lowest `mask_fraction` of each sequence's valid
    positions, exactly `floor(mask_fraction * n_valid)` of them, are masked:
    a masked position becomes `fill_value`, a kept one
    `fill_value + (h - fill_value) * multiplier`.

    - `inference="soft"` (the paper): `multiplier = w`, and positions are
      masked in training only; at inference every position is kept and
      reweighted. Gradients reach the attention through the reweighting.
    - `inference="hard"` (select-then-predict): the keep mask is applied in
      training *and* at inference, and kept positions pass unchanged
      (`multiplier = 1`): what follows sees only the selected positions.
      In training the multiplier is the straight-through estimator
      `keep + w - stop_gradient(w)`, so gradients reach the attention.

    With `window > 1` the logit of a position is the mean of the raw logits
    of the valid positions in the `window` centred on it (a contiguity prior:
    the attention, and so the mask, then selects runs of neighbouring
    positions, such as a whole motif, rather than isolated ones). With
    `window_weight = a < 1` it is `(1 - a) * raw + a * window mean`: a
    two-scale logit, so that a single position can still stand out of its
    neighbourhood. With `window_pooling="log_mean_exp"` the window's mean
    is taken of `exp(logits)` (then the log): a soft maximum of the window,
    so that every position near a strong peak, such as a motif's edge next
    to its core, scores close to the peak, and a run of middling logits
    (a partial match) does not. `window_sharpness = b` makes it
    `log(mean(exp(b * logits))) / b`: the window's maximum as `b` grows,
    its mean as `b` goes to 0. With `window_gate=True` the weight is learned
    per position: `a_i = sigmoid(u^T hidden_i + c)` from the attention
    scorer's hidden units at that position, starting at `a_i = window_weight`
    (`u = 0`), so that the model chooses where a position's own logit
    counts and where its window's does (on a motif task the window, on one
    decided by single positions its own).

    The attention can be computed from other features than the ones it
    masks: with inputs `[values, valid, context]` the logits come from
    `context` and the mask acts on `values` (e.g. the one-hot nucleotides,
    with `fill_value=0.25`, the encoding of N).

    `mask_fraction` and `uniform_attention` are non-trainable
    `keras.Variable`s: assign to them (e.g. from `MaskingSchedule`) and
    already-compiled steps use the new value. `uniform_attention = 1`
    replaces the attention by uniform weights and masks nothing (the
    uniform-attention control of Wiegreffe & Pinter, 2019).

    With `entropy_weight > 0` the layer adds, in training only,
    `entropy_weight * mean(H(scores) / log(n_valid))` to the model's losses
    (`layer.losses`): a penalty on the normalized entropy of each sequence's
    scores (0: all on one position, 1: uniform), for sharper attention. It
    acts on the scores (the softmax or sparsemax), also with sigmoid gates,
    and is 0 under the uniform-attention control.

    Args:
        attention_units: width of the hidden layer of the attention scorer.
        mask_fraction: initial fraction of valid positions masked, in `[0, 1)`.
        return_scores: if `True`, the layer returns `(values, scores)` where
            `scores` has shape `(batch, length)`, sums to 1 over the valid
            positions and is 0 on padding.
        inference: `"soft"` or `"hard"` (see above).
        temperature: divides the attention logits (< 1: sharper attention).
        fill_value: what a masked position becomes (0 for features, 0.25 for
            one-hot nucleotides, i.e. N).
        normalization: `"softmax"`, `"sigmoid"` or `"sparsemax"` weights
            (see above).
        window: odd width of the logit smoothing (1: none; see above).
        window_weight: weight in `[0, 1]` of the window mean against the raw
            logit (1: the window mean alone; see above).
        entropy_weight: weight (>= 0) of the entropy penalty on the scores
            in training (0: none; see above).
        window_pooling: `"mean"` of the window's logits or `"log_mean_exp"`
            (their soft maximum; see above).
        window_sharpness: `b > 0` of the log-mean-exp pooling (1: plain
            log-mean-exp; see above).
        window_gate: learn the window weight per position, starting from
            `window_weight` (which must then be in `(0, 1)`, with `window > 1`;
            see above).
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: a tensor `(batch, length, channels)`, or a list
            `[values, valid]` or `[values, valid, context]`, where `valid` is
            `(batch, length)` with 1 for real positions and 0 for padding.
        training: Python bool; soft masking happens only when `True`.

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
        self,
        attention_units=32,
        mask_fraction=0.0,
        return_scores=False,
        inference="soft",
        temperature=1.0,
        fill_value=0.0,
        normalization="softmax",
        window=1,
        window_weight=1.0,
        entropy_weight=0.0,
        window_pooling="mean",
        window_sharpness=1.0,
        window_gate=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        mask_fraction = float(mask_fraction)
        if not 0.0 <= mask_fraction < 1.0:
            raise ValueError(f"mask_fraction must be in [0, 1), got {mask_fraction}")
        if int(attention_units) < 1:
            raise ValueError(f"attention_units must be >= 1, got {attention_units}")
        if inference not in INFERENCE_MODES:
            raise ValueError(f"inference must be one of {INFERENCE_MODES}, got {inference!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        if int(window) < 1 or int(window) % 2 == 0:
            raise ValueError(f"window must be an odd integer >= 1, got {window}")
        if not 0.0 <= float(window_weight) <= 1.0:
            raise ValueError(f"window_weight must be in [0, 1], got {window_weight}")
        if not 0.0 < float(window_sharpness) < float("inf"):
            raise ValueError(f"window_sharpness must be finite and > 0, got {window_sharpness}")
        if window_gate and not (int(window) > 1 and 0.0 < float(window_weight) < 1.0):
            raise ValueError(
                "window_gate needs window > 1 and window_weight in (0, 1) (its starting value), "
                f"got window={window}, window_weight={window_weight}"
            )
        if window_pooling not in WINDOW_POOLINGS:
            raise ValueError(
                f"window_pooling must be one of {WINDOW_POOLINGS}, got {window_pooling!r}"
            )
        if not 0.0 <= float(entropy_weight) < float("inf"):
            raise ValueError(f"entropy_weight must be finite and >= 0, got {entropy_weight}")
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.attention_units = int(attention_units)
        self.return_scores = bool(return_scores)
        self.inference = inference
        self.temperature = float(temperature)
        self.fill_value = float(fill_value)
        self.normalization = normalization
        self.window = int(window)
        self.window_weight = float(window_weight)
        self.window_pooling = window_pooling
        self.window_sharpness = float(window_sharpness)
        self.window_gate = bool(window_gate)
        self.entropy_weight = float(entropy_weight)
        self._initial_mask_fraction = mask_fraction
        self.mask_fraction = self.add_weight(
            name="mask_fraction",
            shape=(),
            initializer=keras.initializers.Constant(mask_fraction),
            trainable=False,
            dtype="float32",
        )

    def build(self, input_shape):
        if _is_list(input_shape):
            score_shape = input_shape[2] if len(input_shape) == 3 else input_shape[0]
        else:
            score_shape = input_shape
        channels = score_shape[-1]
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
        # Created last so that models saved before it existed still load.
        self.uniform_attention = self.add_weight(
            name="uniform_attention",
            shape=(),
            initializer="zeros",
            trainable=False,
            dtype="float32",
        )
        if self.window_gate:
            # u = 0: every position starts at window_weight
            self.gate_kernel = self.add_weight(
                name="gate_kernel", shape=(self.attention_units, 1), initializer="zeros"
            )
            start = self.window_weight
            self.gate_bias = self.add_weight(
                name="gate_bias",
                shape=(),
                initializer=keras.initializers.Constant(math.log(start / (1.0 - start))),
            )

    def load_own_variables(self, store):
        if len(store.keys()) == len(self.variables) - 1:
            # saved before `uniform_attention` existed: it stays 0
            for i, variable in enumerate(self.variables[:-1]):
                variable.assign(store[str(i)])
            return
        super().load_own_variables(store)

    def attention_logits(self, features, valid=None):
        """Unnormalized per-position attention logits, `(batch, length)`.

        Args:
            features: `(batch, length, channels)` scoring features.
            valid: optional `(batch, length)` real positions; with `window > 1`
                only those enter a position's mean.
        """
        hidden = self._hidden(features)
        logits = ops.squeeze(ops.matmul(hidden, self.score_kernel), axis=-1) / self.temperature
        if self.window == 1 or self.window_weight == 0.0:
            return logits
        logits = ops.cast(logits, "float32")
        if valid is None:
            valid = ops.ones_like(logits)
        valid = ops.cast(valid, "float32")
        if self.window_pooling == "log_mean_exp":
            sharpness = self.window_sharpness
            smooth = window_log_mean_exp(logits * sharpness, valid, self.window) / sharpness
        else:
            smooth = window_mean(logits * valid, valid, self.window)
        if self.window_gate:
            weight = self._gate_weights(hidden)
            return (1.0 - weight) * logits + weight * smooth
        if self.window_weight == 1.0:
            return smooth
        return (1.0 - self.window_weight) * logits + self.window_weight * smooth

    def window_weights(self, features):
        """Each position's window weight, `(batch, length)`: learned with `window_gate`, else
        `window_weight` everywhere (0 without a window).

        Args:
            features: `(batch, length, channels)` scoring features (the `context` input).
        """
        if not self.window_gate:
            weight = self.window_weight if self.window > 1 else 0.0
            return ops.full(ops.shape(features)[:-1], weight, dtype="float32")
        return self._gate_weights(self._hidden(features))

    def _hidden(self, features):
        """The attention scorer's hidden units, `tanh(W h + b)`, `(batch, length, units)`."""
        return ops.tanh(ops.matmul(features, self.attention_kernel) + self.attention_bias)

    def _gate_weights(self, hidden):
        gate = ops.matmul(ops.cast(hidden, "float32"), ops.cast(self.gate_kernel, "float32"))
        return ops.sigmoid(ops.squeeze(gate, axis=-1) + ops.cast(self.gate_bias, "float32"))

    def call(self, inputs, training=None):
        if _is_list(inputs):
            values, valid = inputs[0], inputs[1]
            context = inputs[2] if len(inputs) == 3 else values
            valid = ops.cast(valid, self.compute_dtype)
        else:
            values = context = inputs
            valid = ops.ones(ops.shape(values)[:-1], dtype=self.compute_dtype)
        is_valid = valid > 0
        uniform = ops.cast(self.uniform_attention, "float32")
        logits = ops.cast(self.attention_logits(context, is_valid), "float32") * (1.0 - uniform)
        logits = ops.where(is_valid, logits, _NEG_LARGE)
        if self.normalization == "sparsemax":
            scores = sparsemax(logits, is_valid)
        else:
            scores = ops.softmax(logits, axis=-1) * ops.cast(is_valid, "float32")
        n_valid = ops.sum(ops.cast(is_valid, "float32"), axis=-1, keepdims=True)
        if training and self.entropy_weight > 0.0:
            entropy = mean_normalized_entropy(scores, n_valid)
            self.add_loss(self.entropy_weight * (1.0 - uniform) * entropy)
        if self.normalization == "sigmoid":
            # an independent gate per position: removing one position does not
            # raise the weight of the others (softmax renormalizes)
            weights = ops.sigmoid(logits) * (1.0 - uniform) + uniform
        else:
            weights = scores * n_valid
        fraction = ops.cast(self.mask_fraction, "float32") * (1.0 - uniform)
        if self.inference == "hard":
            keep = 1.0 - ops.cast(lowest_fraction_mask(logits, is_valid, fraction), "float32")
            if training:
                multiplier = keep + weights - ops.stop_gradient(weights)
            else:
                multiplier = keep
        elif training:
            keep = 1.0 - ops.cast(lowest_fraction_mask(logits, is_valid, fraction), "float32")
            multiplier = weights * keep
        else:
            multiplier = weights
        multiplier = ops.expand_dims(
            ops.cast(multiplier * ops.cast(is_valid, "float32"), values.dtype), axis=-1
        )
        fill = ops.cast(self.fill_value, values.dtype)
        outputs = fill + (values - fill) * multiplier
        if self.fill_value != 0.0:
            # padding stays padding (all-zero), whatever the fill
            outputs = outputs * ops.expand_dims(ops.cast(valid, values.dtype), axis=-1)
        if self.return_scores:
            return outputs, ops.cast(scores, self.compute_dtype)
        return outputs

    def compute_output_shape(self, input_shape):
        values_shape = input_shape[0] if _is_list(input_shape) else input_shape
        if self.return_scores:
            return tuple(values_shape), tuple(values_shape[:-1])
        return tuple(values_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "attention_units": self.attention_units,
                "mask_fraction": float(ops.convert_to_numpy(self.mask_fraction)),
                "return_scores": self.return_scores,
                "inference": self.inference,
                "temperature": self.temperature,
                "fill_value": self.fill_value,
                "normalization": self.normalization,
                "window": self.window,
                "window_weight": self.window_weight,
                "window_pooling": self.window_pooling,
                "window_sharpness": self.window_sharpness,
                "window_gate": self.window_gate,
                "entropy_weight": self.entropy_weight,
            }
        )
        return config


def mean_normalized_entropy(scores, n_valid):
    """Mean over rows of `H(scores) / log(n_valid)`, in `[0, 1]`.

    Args:
        scores: `(batch, length)` rows that sum to 1 (0 on padding).
        n_valid: `(batch, 1)` number of real positions of each row (rows of
            fewer than 2 are divided by `log(2)`).

    Returns:
        scalar float32.

    Example:

    >>> s = keras.ops.convert_to_tensor([[0.25, 0.25, 0.25, 0.25], [1.0, 0, 0, 0]])
    >>> n = keras.ops.convert_to_tensor([[4.0], [4.0]])
    >>> round(float(mean_normalized_entropy(s, n)), 3)
    0.5
    """
    scores = ops.cast(scores, "float32")
    terms = ops.where(scores > 0, scores * ops.log(ops.maximum(scores, 1e-12)), 0.0)
    entropy = -ops.sum(terms, axis=-1)
    scale = ops.log(ops.maximum(ops.squeeze(ops.cast(n_valid, "float32"), -1), 2.0))
    return ops.mean(entropy / scale)


def _is_list(value):
    if isinstance(value, (list, tuple)) and len(value) in (2, 3):
        first = value[0]
        return not isinstance(first, (int, type(None)))
    return False
