"""`BatchNormRecalibration`: BatchNorm statistics of the unmasked network."""

import warnings

import keras
import numpy as np

from attngen_keras.callbacks.masking_schedule import all_layers, find_saliency_masks

STATISTICS = ("average", "ema")
# Sequences whose BatchNorm statistics `attngen train` averages before each
# validation: more than the effective sample of the moving average it
# replaced (50 batches at momentum 0.9 weigh like about 19 batches: 2,400
# sequences at the CLI's batch size of 128).
RECALIBRATION_SEQUENCES = 4096


def recalibration_steps(batch_size, train_size):
    """Batches per recalibration: `RECALIBRATION_SEQUENCES` sequences, at most one pass.

    Args:
        batch_size: training batch size.
        train_size: sequences in the training split.

    Example:

    >>> recalibration_steps(128, 67500), recalibration_steps(1024, 67500), recalibration_steps(128, 900)
    (32, 4, 8)
    """
    per_pass = -(-int(train_size) // int(batch_size))
    return max(1, min(-(-RECALIBRATION_SEQUENCES // int(batch_size)), per_pass))


class BatchNormRecalibration(keras.callbacks.Callback):
    """Re-estimates BatchNorm moving statistics with saliency masking off.

    Masking zeroes a fraction of the positions in training only, so the
    BatchNorm layers after a `SaliencyMask` accumulate moving statistics of
    *masked* features, which inference (unmasked) then uses: a train/inference
    variance shift that degrades validation and test predictions as the mask
    fraction grows. Before every validation (`on_test_begin`, which `fit`
    calls before computing `val_*` metrics) and at the end of training, this
    callback sets every SaliencyMask's fraction to 0, runs `steps` forward
    passes in training mode over `data` (which only updates BatchNorm
    statistics: no gradient step is taken), and restores the fractions.

    - `statistics="average"` (precise BatchNorm, Wu & Johnson 2021): each
      BatchNorm layer's moving mean and variance become the mean of the
      `steps` batches' own statistics, weighted by each batch's number of
      real positions (sequences x positions, padding left out, as the
      models' BatchNorm layers leave it out of their statistics); the masked
      statistics are discarded whole, and the estimate's precision depends on
      the number of sequences seen, not on the momentum, so a few large
      batches do.
    - `statistics="ema"`: the layers' own exponential moving average over
      the `steps` batches (the old statistics keep weight `momentum ** steps`).

    SaliencyMasks with `inference="hard"` keep their fraction (they mask at
    inference as well, so their training statistics are the right ones).
    BatchNorm layers that are frozen (`trainable=False`) are left alone;
    with `renorm=True` they are blended by their own rule, with a warning (see
    `averaged_statistics`).

    Args:
        data: a `tf.data.Dataset` (or iterable) of training batches `x` or
            `(x, y)`.
        steps: batches per recalibration.
        statistics: `"average"` or `"ema"` (see above).

    Example:

    >>> recal = BatchNormRecalibration(train_ds, steps=32)  # doctest: +SKIP
    >>> model.fit(train_ds, validation_data=val_ds,
    ...           callbacks=[MaskingSchedule(0.15), recal])  # doctest: +SKIP
    >>> BatchNormRecalibration([], steps=4).get_config()
    {'steps': 4, 'statistics': 'average'}
    """

    def __init__(self, data, steps=50, statistics="average"):
        super().__init__()
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if statistics not in STATISTICS:
            raise ValueError(f"statistics must be one of {STATISTICS}, got {statistics!r}")
        if isinstance(data, np.ndarray) or (  # an array, or arrays (x, y)
            isinstance(data, tuple)
            and data
            and all(isinstance(part, np.ndarray) for part in data)
            and len({part.ndim for part in data}) > 1
        ):
            raise ValueError(
                "data must yield batches (a tf.data.Dataset or another iterable of x or (x, y) "
                "batches), not whole arrays: e.g. tf.data.Dataset.from_tensor_slices(x).batch(128)"
            )
        self.data = data
        self.steps = int(steps)
        self.statistics = statistics
        self._iterator = None
        self._forward = self._forward_key = None

    def set_model(self, model):
        # `fit` calls this on every call: the same model keeps its compiled forward pass
        if model is not getattr(self, "_model", None):
            self._forward = None
        super().set_model(model)

    def _training_forward(self, x):
        # Keras layers fix `trainable` (e.g. BatchNorm's "update the statistics?")
        # when traced: a changed flag needs a new function
        key = _trainable_flags(self.model)
        if self._forward is None or key != self._forward_key:
            model = self.model

            def forward(x):
                return model(x, training=True)

            if keras.backend.backend() == "tensorflow":
                import tensorflow as tf

                # traced once: any batch size (the last, smaller batch does not retrace)
                spec = tf.nest.map_structure(
                    lambda t: tf.TensorSpec([None, *t.shape[1:]], t.dtype), x
                )
                forward = tf.function(forward, input_signature=[spec])
            elif keras.backend.backend() == "jax":
                forward = _jax_training_forward(model, average=self.statistics == "average")
            elif keras.backend.backend() == "torch":
                forward = _torch_training_forward(model)
            self._forward, self._forward_key = forward, key
        return self._forward

    def recalibrate(self):
        """Runs the recalibration now (a no-op when nothing needs it)."""
        layers = find_saliency_masks(self.model)
        # masks that act at inference too ("hard") keep their fraction
        soft = [layer for layer in layers if getattr(layer, "inference", "soft") == "soft"]
        saved = [float(keras.ops.convert_to_numpy(layer.mask_fraction)) for layer in soft]
        if not any(saved):
            return
        for layer in soft:
            layer.mask_fraction.assign(0.0)
        forward = None
        try:
            for _ in range(self.steps):
                batch = self._next_batch()
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                if forward is None:  # once per recalibration (it walks the model's layers)
                    self._check_batch(x)
                    forward = self._training_forward(x)
                    if self.statistics == "average" and not getattr(
                        forward, "averages_statistics", False
                    ):
                        forward = _AveragingForward(forward, averaged_statistics(self.model))
                forward(x)
        finally:
            try:
                # a pass that carries or averages the statistics between batches writes them back now
                if forward is not None and hasattr(forward, "write_back"):
                    forward.write_back()
            finally:  # the masks get their fractions back whatever happened
                for layer, value in zip(soft, saved):
                    layer.mask_fraction.assign(value)

    def _next_batch(self):
        if self._iterator is None:
            self._iterator = iter(self.data)
        try:
            batch = next(self._iterator)
        except StopIteration:
            self._iterator = iter(self.data)
            try:
                batch = next(self._iterator)
            except StopIteration:
                raise ValueError("BatchNormRecalibration: data yields no batch") from None
        return batch

    def _check_batch(self, x):
        """Refuses inputs `x` that are not a batch of the model's input (a single sequence)."""
        inputs = getattr(self.model, "inputs", None)
        first = keras.tree.flatten(x)[0]
        if inputs and len(inputs) == 1 and len(first.shape) != len(inputs[0].shape):
            raise ValueError(
                f"BatchNormRecalibration: a batch of data has shape {tuple(first.shape)}, not "
                f"that of the model's input {tuple(inputs[0].shape)}: data must yield batches "
                "(e.g. tf.data.Dataset.from_tensor_slices(x).batch(128)), not single sequences"
            )

    def on_test_begin(self, logs=None):
        self.recalibrate()

    def on_train_end(self, logs=None):
        self.recalibrate()

    def get_config(self):
        # `data` is a dataset and is not serialized.
        return {"steps": self.steps, "statistics": self.statistics}


def averaged_statistics(model):
    """`(variable, momentum)` of the moving mean and variance of every BatchNorm that a training pass updates.

    That is every `BatchNormalization` layer in `model` (nested models and
    layers inside custom layers included) that is trainable, built, without
    `renorm` and with a momentum below 1: its training-mode call sets
    `moving = momentum * moving + (1 - momentum) * batch statistic`. A layer
    called more than once per forward pass (shared) breaks that recovery:
    recalibrate such models with `statistics="ema"`.
    """
    found, renorm = [], []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        if not (layer.trainable and layer.built and float(layer.momentum) < 1.0):
            continue
        if layer.renorm:
            renorm.append(layer.name)
            continue
        found += [(layer.moving_mean, float(layer.momentum))]
        found += [(layer.moving_variance, float(layer.momentum))]
    if renorm:
        warnings.warn(
            f"BatchNormRecalibration: {', '.join(renorm)} use renorm: their statistics are blended "
            "by their own momentum, not averaged; use statistics='ema' with enough steps",
            stacklevel=3,
        )
    return found


def _batch_weight(x):
    """The weight of a batch's statistics: its real positions for one-hot `(n, length, 4)`
    input (padding is all-zero and left out of the models' BatchNorm statistics), else its
    number of sequences. A tensor (traceable)."""
    first = keras.tree.flatten(x)[0]
    if len(first.shape) == 3:
        real = keras.ops.sum(keras.ops.cast(first, "float32"), axis=-1) > 0.5
        return keras.ops.sum(keras.ops.cast(real, "float32"))
    return keras.ops.cast(first.shape[0], "float32")


def _as_float64(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)


class _AveragingForward:
    """Training-mode passes whose BatchNorm statistics are averaged instead of blended.

    After each pass of `forward` the batch's own statistic is recovered from
    the layer's update (`(new - momentum * old) / (1 - momentum)`), and the
    weighted sums are kept (`_batch_weight`); `write_back` assigns their means.
    A layer that a pass does not reach keeps its value.
    """

    averages_statistics = True

    def __init__(self, forward, statistics):
        self.forward, self.statistics = forward, statistics
        self._last = [_as_float64(variable) for variable, _ in statistics]
        self._sums = [np.zeros_like(value) for value in self._last]
        self._count = 0

    def __call__(self, x):
        self.forward(x)
        size = float(keras.ops.convert_to_numpy(_batch_weight(x)))
        for k, (variable, momentum) in enumerate(self.statistics):
            new = _as_float64(variable)
            self._sums[k] += size * (new - momentum * self._last[k]) / (1.0 - momentum)
            self._last[k] = new
        self._count += size

    def write_back(self):
        """Assigns the averaged statistics (a no-op when no pass ran)."""
        if hasattr(self.forward, "write_back"):
            self.forward.write_back()
        if not self._count:
            return
        for (variable, _), total in zip(self.statistics, self._sums):
            variable.assign((total / self._count).astype(variable.dtype))


def _trainable_flags(model):
    """`trainable` of the model and of every layer in it (nested models included), in order."""
    return (bool(model.trainable), *(bool(layer.trainable) for layer in all_layers(model)))


def _jax_training_forward(model, average=False):
    """A jitted training-mode forward pass that updates the model's non-trainable variables (JAX).

    An eager Keras call on JAX dispatches every op separately; this compiles
    `model.stateless_call` once (the mask fraction, BatchNorm statistics and
    random-generator states are inputs, so assigning them does not retrace).
    """
    return _JaxTrainingForward(model, average)


class _JaxTrainingForward:
    """Jitted `stateless_call` passes that carry the non-trainable state from batch to batch.

    The weights are read once per recalibration, the updated statistics stay
    on the device between batches and are assigned to the model's variables
    once, by `write_back` (per-batch reads and assignments of every variable
    cost more than the forward pass itself on a GPU at batch 1024). With
    `average=True` the BatchNorm statistics written back are the
    weighted means of the batches' own statistics (see
    `_AveragingForward`), summed on the device.
    """

    def __init__(self, model, average=False):
        import jax

        index = {id(variable): k for k, variable in enumerate(model.non_trainable_variables)}
        averaged = [
            (index[id(variable)], momentum)
            for variable, momentum in (averaged_statistics(model) if average else [])
            if id(variable) in index
        ]

        def step(trainable, non_trainable, sums, x):
            _, updated = model.stateless_call(trainable, non_trainable, x, training=True)
            size = _batch_weight(x)
            sums = [
                total + size * (updated[k] - momentum * non_trainable[k]) / (1.0 - momentum)
                for total, (k, momentum) in zip(sums, averaged)
            ]
            return updated, sums, size

        self.model = model
        self.averages_statistics = bool(average)
        self._averaged = averaged
        self._compiled = jax.jit(step)
        self._trainable = self._state = self._sums = None
        self._count = 0

    def __call__(self, x):
        if self._state is None:
            self._trainable = [v.value for v in self.model.trainable_variables]
            self._state = [v.value for v in self.model.non_trainable_variables]
            self._sums = [self._state[k] * 0.0 for k, _ in self._averaged]
            self._count = 0
        self._state, self._sums, size = self._compiled(self._trainable, self._state, self._sums, x)
        self._count = self._count + size

    def write_back(self):
        """Assigns the carried state to the model's variables (a no-op when nothing ran)."""
        state, self._state, self._trainable = self._state, None, None
        sums, self._sums = self._sums, None
        if state is None:
            return  # the next recalibration reads the weights and statistics afresh either way
        state = list(state)
        for (k, _), total in zip(self._averaged, sums):
            state[k] = total / self._count
        for variable, value in zip(self.model.non_trainable_variables, state):
            variable.assign(value)


def _torch_training_forward(model):
    """A training-mode forward pass without autograd (torch; Keras runs torch eagerly).

    The BatchNorm updates are assignments, which need no graph: `no_grad`
    spares recording one for every op of the pass.
    """
    import torch

    def forward(x):
        with torch.no_grad():
            model(x, training=True)

    return forward
