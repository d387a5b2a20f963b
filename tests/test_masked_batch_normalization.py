"""MaskedBatchNormalization: Keras' masked statistics (values and gradients), cheaper."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from attngen_keras.layers import MaskedBatchNormalization
from attngen_keras.models import build_attngen


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(4, 7, 3)) * [1.0, 5.0, 0.1] + [0.0, 40.0, -3.0]).astype("float32")
    mask = (rng.random((4, 7)) < 0.6).astype("float32")
    mask[0, 0] = 1.0
    return x, mask


def _pair(**kwargs):
    """A Keras BatchNormalization and a MaskedBatchNormalization with the same weights."""
    keras_bn = keras.layers.BatchNormalization(**kwargs)
    ours = MaskedBatchNormalization(**kwargs)
    for layer in (keras_bn, ours):
        layer.build((None, 7, 3))
    ours.set_weights(keras_bn.get_weights())
    ours.gamma.assign([0.5, 2.0, -1.0])
    keras_bn.gamma.assign([0.5, 2.0, -1.0])
    return keras_bn, ours


def test_masked_moments_equal_keras_and_hand_computed():
    x, mask = _data()
    keras_bn, ours = _pair(momentum=0.0, epsilon=1e-3)
    y_keras = keras_bn(x, mask=mask, training=True)
    y_ours = ours(x, mask=mask, training=True)
    np.testing.assert_allclose(y_ours.numpy(), y_keras.numpy(), rtol=1e-4, atol=1e-4)
    chosen = x[mask.astype(bool)]  # [real positions, channels]
    np.testing.assert_allclose(ours.moving_mean.numpy(), chosen.mean(0), rtol=1e-5)
    np.testing.assert_allclose(ours.moving_variance.numpy(), chosen.var(0), rtol=1e-4)
    np.testing.assert_allclose(keras_bn.moving_variance.numpy(), chosen.var(0), rtol=1e-4)


def test_gradients_equal_keras():
    x, mask = _data(1)
    keras_bn, ours = _pair(momentum=0.9)
    upstream = np.random.default_rng(2).normal(size=x.shape).astype("float32")
    grads = []
    for layer in (keras_bn, ours):
        inputs = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(layer(inputs, mask=mask, training=True) * upstream)
        grads.append(tape.gradient(loss, [inputs, layer.gamma, layer.beta]))
    for g_keras, g_ours in zip(*grads):
        np.testing.assert_allclose(g_ours.numpy(), g_keras.numpy(), rtol=1e-3, atol=1e-4)


def test_without_mask_and_at_inference_it_is_keras_batch_normalization():
    x, mask = _data(3)
    keras_bn, ours = _pair(momentum=0.5)
    np.testing.assert_array_equal(
        ours(x, training=True).numpy(), keras_bn(x, training=True).numpy()
    )
    np.testing.assert_array_equal(ours.moving_mean.numpy(), keras_bn.moving_mean.numpy())
    np.testing.assert_array_equal(
        ours(x, mask=mask, training=False).numpy(), keras_bn(x, mask=mask, training=False).numpy()
    )


def test_padding_does_not_change_the_statistics():
    """A batch padded with masked positions of any value gives the unpadded statistics."""
    x, _ = _data(4)
    full = np.ones(x.shape[:2], "float32")
    padded = np.concatenate([x, np.full((4, 5, 3), 1e3, "float32")], axis=1)
    padded_mask = np.concatenate([full, np.zeros((4, 5), "float32")], axis=1)
    a, b = MaskedBatchNormalization(momentum=0.0), MaskedBatchNormalization(momentum=0.0)
    ya = a(x, mask=full, training=True)
    yb = b(padded, mask=padded_mask, training=True)
    np.testing.assert_allclose(b.moving_mean.numpy(), a.moving_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(b.moving_variance.numpy(), a.moving_variance.numpy(), rtol=1e-4)
    np.testing.assert_allclose(yb.numpy()[:, :7], ya.numpy(), rtol=1e-4, atol=1e-5)


def test_only_the_last_axis():
    with pytest.raises(ValueError, match="last axis"):
        MaskedBatchNormalization(axis=1).build((None, 7, 3))


def test_config_round_trip_and_saved_model(tmp_path):
    layer = MaskedBatchNormalization(momentum=0.7, epsilon=1e-4, name="bn")
    again = MaskedBatchNormalization.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    model = build_attngen(40, 2)
    assert isinstance(model.get_layer("stem_bn"), MaskedBatchNormalization)
    x = np.eye(4, dtype="float32")[np.random.default_rng(5).integers(0, 4, (3, 40))]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.get_layer("bn_0")) is MaskedBatchNormalization
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
