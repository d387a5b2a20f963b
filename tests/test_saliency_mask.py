import keras
import numpy as np
import pytest
import tensorflow as tf

from attngen_keras.layers import SaliencyMask


def _inputs(batch=4, length=20, channels=6, seed=0, valid_lengths=None):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(batch, length, channels)).astype("float32") + 3.0
    valid = np.ones((batch, length), "float32")
    for i, n in enumerate(valid_lengths or []):
        valid[i, n:] = 0
    return features, valid


def _layer(fraction, **kwargs):
    layer = SaliencyMask(attention_units=8, mask_fraction=fraction, return_scores=True, **kwargs)
    return layer


def test_shapes_and_scores_are_a_distribution_over_valid_positions():
    features, valid = _inputs(valid_lengths=[20, 15, 7, 1])
    out, scores = _layer(0.0)([features, valid])
    assert out.shape == features.shape and scores.shape == valid.shape
    scores = np.asarray(scores)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
    assert np.all(scores[valid == 0] == 0)
    assert np.all(scores[valid == 1] > 0)


def test_exactly_lowest_fraction_of_valid_positions_masked_in_training():
    features, valid = _inputs(valid_lengths=[20, 15, 10, 7])
    layer = _layer(0.3)
    out, scores = layer([features, valid], training=True)
    out, scores = np.asarray(out), np.asarray(scores)
    zeroed = np.all(out == 0, axis=-1)
    for i in range(4):
        n_valid = int(valid[i].sum())
        n_drop = int(np.floor(0.3 * n_valid + 1e-4))
        real = np.flatnonzero(valid[i])
        expected = set(real[np.argsort(scores[i, real])[:n_drop]])
        assert set(np.flatnonzero(zeroed[i] & (valid[i] == 1))) == expected
        # padding is never kept
        assert np.all(zeroed[i][valid[i] == 0])


def test_tied_scores_still_drop_exactly_the_fraction_leftmost_first():
    # identical features give identical attention logits at every position
    features = np.ones((3, 12, 6), "float32")
    valid = np.ones((3, 12), "float32")
    valid[1, 9:] = 0
    valid[2, 1:] = 0
    keep = SaliencyMask(attention_units=8, mask_fraction=0.25)([features, valid], training=True)
    zeroed = np.all(np.asarray(keep) == 0, axis=-1)
    assert np.flatnonzero(zeroed[0]).tolist() == [0, 1, 2]  # floor(0.25 * 12) = 3
    assert np.flatnonzero(zeroed[1] & (valid[1] == 1)).tolist() == [0, 1]  # floor(0.25 * 9) = 2
    assert not zeroed[2, 0]  # floor(0.25 * 1) = 0: the only position stays


def test_no_masking_at_inference():
    features, valid = _inputs()
    layer = _layer(0.5)
    out, scores = layer([features, valid], training=False)
    assert not np.any(np.all(np.asarray(out) == 0, axis=-1))
    # inference output is features reweighted by score * n_valid
    expected = features * (np.asarray(scores) * valid.sum(1, keepdims=True))[..., None]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5)


def test_fraction_not_exactly_representable_in_float32():
    features, valid = _inputs(batch=1, length=10)
    out, _ = _layer(0.7)([features, valid], training=True)
    assert int(np.all(np.asarray(out) == 0, axis=-1).sum()) == 7


def test_gradients_reach_attention_weights_through_masking():
    features, valid = _inputs()
    layer = _layer(0.25)
    layer([features, valid])
    with tf.GradientTape() as tape:
        out, _ = layer([features, valid], training=True)
        loss = tf.reduce_sum(out**2)
    grads = tape.gradient(loss, layer.trainable_variables)
    names = [v.name for v in layer.trainable_variables]
    assert set(names) == {"attention_kernel", "attention_bias", "score_kernel"}
    for name, grad in zip(names, grads):
        assert grad is not None and float(tf.reduce_max(tf.abs(grad))) > 0, name
    assert "mask_fraction" not in names
    assert [v.name for v in layer.non_trainable_variables] == ["mask_fraction", "uniform_attention"]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_compiled_train_step_sees_new_mask_fraction(jit_compile):
    """A model compiled (and traced) before mask_fraction changes uses the new value."""
    length = 10
    inputs = keras.Input((length, 3))
    layer = SaliencyMask(attention_units=4, mask_fraction=0.0, name="sm")
    model = keras.Model(inputs, layer(inputs))
    # Uniform attention: every weight is 1, so the output is `features * keep`.
    layer.score_kernel.assign(np.zeros(layer.score_kernel.shape, "float32"))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", jit_compile=jit_compile)
    x_data = np.ones((2, length, 3), "float32")
    target = np.zeros((2, length, 3), "float32")
    # mse against zeros = mean(keep) = 1 - masked / length
    assert model.train_on_batch(x_data, target) == pytest.approx(1.0)
    layer.mask_fraction.assign(0.3)
    assert model.train_on_batch(x_data, target) == pytest.approx(0.7)
    layer.mask_fraction.assign(0.5)
    assert model.train_on_batch(x_data, target) == pytest.approx(0.5)
    # inference never masks
    np.testing.assert_allclose(np.asarray(model.predict(x_data, verbose=0)), 1.0, rtol=1e-6)


def test_config_round_trip_and_keras_file(tmp_path):
    features, valid = _inputs()
    layer = SaliencyMask(attention_units=5, mask_fraction=0.2, return_scores=True, name="s")
    inputs = [keras.Input((20, 6)), keras.Input((20,))]
    outputs = layer(inputs)
    model = keras.Model(inputs, outputs)
    config = layer.get_config()
    assert config["attention_units"] == 5 and config["return_scores"] is True
    assert config["mask_fraction"] == pytest.approx(0.2)
    clone = SaliencyMask.from_config(config)
    assert clone.get_config() == config
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(model([features, valid]), loaded([features, valid])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(loaded.layers[-1].mask_fraction.numpy()) == pytest.approx(0.2)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mask_fraction"):
        SaliencyMask(mask_fraction=1.0)
    with pytest.raises(ValueError, match="attention_units"):
        SaliencyMask(attention_units=0)
