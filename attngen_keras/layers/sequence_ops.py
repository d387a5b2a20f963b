"""Small layers that carry the per-position validity mask through a model."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="attngen")
class ValidPositions(keras.layers.Layer):
    """Derives the validity mask `(batch, length)` from one-hot DNA.

    Real nucleotides (including N and IUPAC codes, which are encoded as
    uniform distributions over their bases) have a channel sum of 1; padding
    is all-zero. The output is 1.0 for real positions and 0.0 for padding.

    Example:

    >>> x = keras.ops.convert_to_tensor([[[1., 0, 0, 0], [0, 0, 0, 0]]])
    >>> keras.ops.convert_to_numpy(ValidPositions()(x)).tolist()
    [[1.0, 0.0]]
    """

    def call(self, inputs):
        return ops.cast(ops.sum(inputs, axis=-1) > 0.5, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])


@keras.saving.register_keras_serializable(package="attngen")
class ApplyValidity(keras.layers.Layer):
    """Zeroes features at padded positions: `features * valid[..., None]`.

    Call arguments:
        inputs: `[features (batch, length, channels), valid (batch, length)]`.

    Example:

    >>> f = keras.ops.ones((1, 2, 3))
    >>> v = keras.ops.convert_to_tensor([[1., 0.]])
    >>> keras.ops.convert_to_numpy(ApplyValidity()([f, v]))[0, 1].tolist()
    [0.0, 0.0, 0.0]
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # the features may carry a Keras mask (a BatchNormalization called with
        # `mask=valid` passes it on): applied here, and not passed further
        self.supports_masking = True

    def call(self, inputs):
        features, valid = inputs
        return features * ops.expand_dims(ops.cast(valid, features.dtype), -1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


@keras.saving.register_keras_serializable(package="attngen")
class PoolValidity(keras.layers.Layer):
    """Downsamples a validity mask alongside a `MaxPooling1D` of the features.

    A pooled window is valid if any of its positions was valid, matching
    `keras.layers.MaxPooling1D(pool_size, padding="same")`.

    Args:
        pool_size: the pooling window and stride of the feature pooling.

    Example:

    >>> v = keras.ops.convert_to_tensor([[1., 1., 1., 0.]])
    >>> keras.ops.convert_to_numpy(PoolValidity(2)(v)).tolist()
    [[1.0, 1.0]]
    """

    def __init__(self, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, inputs):
        pooled = ops.max_pool(
            ops.expand_dims(inputs, -1),
            pool_size=self.pool_size,
            strides=self.pool_size,
            padding="same",
        )
        return ops.squeeze(pooled, -1)

    def compute_output_shape(self, input_shape):
        length = input_shape[1]
        if length is not None:
            length = -(-length // self.pool_size)
        return (input_shape[0], length)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size})
        return config


@keras.saving.register_keras_serializable(package="attngen")
class MaskedGlobalPooling1D(keras.layers.Layer):
    """Mean and max over the valid positions, concatenated.

    Call arguments:
        inputs: `[features (batch, length, channels), valid (batch, length)]`.

    Returns:
        `(batch, 2 * channels)`: masked mean then masked max.

    Example:

    >>> f = keras.ops.convert_to_tensor([[[1.], [3.], [100.]]])
    >>> v = keras.ops.convert_to_tensor([[1., 1., 0.]])
    >>> keras.ops.convert_to_numpy(MaskedGlobalPooling1D()([f, v])).tolist()
    [[2.0, 3.0]]
    """

    def call(self, inputs):
        features, valid = inputs
        valid = ops.expand_dims(ops.cast(valid, features.dtype), -1)
        count = ops.maximum(ops.sum(valid, axis=1), 1.0)
        mean = ops.sum(features * valid, axis=1) / count
        lowest = ops.min(features, axis=1, keepdims=True) - 1.0
        maximum = ops.max(ops.where(valid > 0, features, lowest), axis=1)
        return ops.concatenate([mean, maximum], axis=-1)

    def compute_output_shape(self, input_shape):
        features = input_shape[0]
        channels = None if features[-1] is None else 2 * features[-1]
        return (features[0], channels)
