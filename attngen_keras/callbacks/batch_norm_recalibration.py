"""`BatchNormRecalibration`: BatchNorm statistics of the unmasked network."""

import keras

from attngen_keras.callbacks.masking_schedule import all_layers, find_saliency_masks


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

    SaliencyMasks with `inference="hard"` keep their fraction (they mask at
    inference as well, so their training statistics are the right ones).

    Args:
        data: a `tf.data.Dataset` (or iterable) of training batches `x` or
            `(x, y)`.
        steps: batches per recalibration; with BatchNorm momentum `m` the old
            statistics keep weight `m ** steps`.

    Example:

    >>> recal = BatchNormRecalibration(train_ds, steps=50)  # doctest: +SKIP
    >>> model.fit(train_ds, validation_data=val_ds,
    ...           callbacks=[MaskingSchedule(0.15), recal])  # doctest: +SKIP
    """

    def __init__(self, data, steps=50):
        super().__init__()
        if int(steps) < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.data = data
        self.steps = int(steps)
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
                forward = _jax_training_forward(model)
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
                    forward = self._training_forward(x)
                forward(x)
        finally:
            try:
                # a forward pass that carries the statistics between batches writes them back now
                if forward is not None and hasattr(forward, "write_back"):
                    forward.write_back()
            finally:  # the masks get their fractions back whatever happened
                for layer, value in zip(soft, saved):
                    layer.mask_fraction.assign(value)

    def _next_batch(self):
        if self._iterator is None:
            self._iterator = iter(self.data)
        try:
            return next(self._iterator)
        except StopIteration:
            self._iterator = iter(self.data)
            return next(self._iterator)

    def on_test_begin(self, logs=None):
        self.recalibrate()

    def on_train_end(self, logs=None):
        self.recalibrate()

    def get_config(self):
        # `data` is a dataset and is not serialized.
        return {"steps": self.steps}


def _trainable_flags(model):
    """`trainable` of the model and of every layer in it (nested models included), in order."""
    return (bool(model.trainable), *(bool(layer.trainable) for layer in all_layers(model)))


def _jax_training_forward(model):
    """A jitted training-mode forward pass that updates the model's non-trainable variables (JAX).

    An eager Keras call on JAX dispatches every op separately; this compiles
    `model.stateless_call` once (the mask fraction, BatchNorm statistics and
    random-generator states are inputs, so assigning them does not retrace).
    """
    return _JaxTrainingForward(model)


class _JaxTrainingForward:
    """Jitted `stateless_call` passes that carry the non-trainable state from batch to batch.

    The weights are read once per recalibration, the updated statistics stay
    on the device between batches and are assigned to the model's variables
    once, by `write_back` (per-batch reads and assignments of every variable
    cost more than the forward pass itself on a GPU at batch 1024).
    """

    def __init__(self, model):
        import jax

        def step(trainable, non_trainable, x):
            _, updated = model.stateless_call(trainable, non_trainable, x, training=True)
            return updated

        self.model = model
        self._compiled = jax.jit(step)
        self._trainable = self._state = None

    def __call__(self, x):
        if self._state is None:
            self._trainable = [v.value for v in self.model.trainable_variables]
            self._state = [v.value for v in self.model.non_trainable_variables]
        self._state = self._compiled(self._trainable, self._state, x)

    def write_back(self):
        """Assigns the carried state to the model's variables (a no-op when nothing ran)."""
        state, self._state, self._trainable = self._state, None, None
        if state is None:
            return  # the next recalibration reads the weights and statistics afresh either way
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
