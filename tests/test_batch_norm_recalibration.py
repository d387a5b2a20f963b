import keras
import numpy as np
import pytest

from attngen_keras.callbacks import BatchNormRecalibration, MaskingSchedule
from attngen_keras.models import build_attngen, compile_classifier


def _x(n=64, length=40, seed=0):
    return np.eye(4, dtype="float32")[np.random.default_rng(seed).integers(0, 4, (n, length))]


def test_recalibrated_statistics_are_those_of_the_unmasked_network():
    model = build_attngen(40, 2, filters=16, dense_units=8)
    x = _x()
    saliency, bn = model.get_layer("saliency_mask"), model.get_layer("bn_0")
    # target: mean of bn_0's input in training mode without masking
    conv_out = keras.Model(model.input, model.get_layer("conv_0").output)
    saliency.mask_fraction.assign(0.0)
    unmasked_mean = np.asarray(conv_out(x, training=True)).mean(axis=(0, 1))
    # accumulate statistics of the masked network
    saliency.mask_fraction.assign(0.5)
    for _ in range(100):
        model(x, training=True)
    masked_gap = np.abs(bn.moving_mean.numpy() - unmasked_mean).max()
    assert masked_gap > 1e-2  # masking really shifts the statistics
    recal = BatchNormRecalibration([x], steps=200)
    recal.set_model(model)
    recal.recalibrate()
    np.testing.assert_allclose(bn.moving_mean.numpy(), unmasked_mean, atol=1e-4)
    assert float(saliency.mask_fraction.numpy()) == pytest.approx(0.5)  # restored


def test_runs_before_every_validation_during_fit():
    model = build_attngen(40, 2, filters=8, dense_units=8)
    compile_classifier(model, 2)
    x, y = _x(), np.arange(64) % 2

    class Counting(BatchNormRecalibration):
        calls = []

        def recalibrate(self):
            self.calls.append(float(self.model.get_layer("saliency_mask").mask_fraction.numpy()))
            super().recalibrate()

    recal = Counting([x, x[:20]], steps=2)  # a full and a smaller batch
    model.fit(x, y, validation_data=(x, y), epochs=3, batch_size=32, verbose=0,
              callbacks=[MaskingSchedule(0.2, warmup_epochs=1), recal])  # fmt: skip
    # once before each of the 3 validations and once at the end of training
    assert Counting.calls == pytest.approx([0.0, 0.2, 0.2, 0.2])
    first = recal._forward
    model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=32, verbose=0,
              callbacks=[recal])  # fmt: skip
    assert recal._forward is first  # the next `fit` of the same model keeps the compiled pass
    if keras.backend.backend() == "tensorflow":
        assert first.experimental_get_tracing_count() == 1  # one trace for both batch sizes
    model.get_layer("bn_0").trainable = False  # traced into the pass: a new one
    recal.recalibrate()
    assert recal._forward is not first
    recal.set_model(build_attngen(40, 2, filters=8, dense_units=8))
    assert recal._forward is None  # another model: another function


def test_rejects_bad_steps():
    with pytest.raises(ValueError):
        BatchNormRecalibration([], steps=0)


def _bn_input_moments(model, x):
    """Mean and (biased) variance over batch and positions of bn_0's input, unmasked, training mode."""
    conv_out = np.asarray(
        keras.Model(model.input, model.get_layer("conv_0").output)(x, training=True), "float64"
    )
    return conv_out.mean(axis=(0, 1)), conv_out.var(axis=(0, 1))


def test_average_statistics_are_the_size_weighted_means_of_the_batches():
    model = build_attngen(40, 2, filters=16, dense_units=8)
    saliency, bn, frozen = (model.get_layer(n) for n in ("saliency_mask", "bn_0", "bn_1"))
    big, small = _x(64, seed=1), _x(20, seed=2)
    saliency.mask_fraction.assign(0.0)
    (mean_big, var_big), (mean_small, var_small) = (
        _bn_input_moments(model, b) for b in (big, small)
    )
    saliency.mask_fraction.assign(0.5)
    for _ in range(5):  # masked statistics, which the recalibration must discard whole
        model(big, training=True)
    frozen.trainable = False
    frozen_before = [np.asarray(v).copy() for v in (frozen.moving_mean, frozen.moving_variance)]
    recal = BatchNormRecalibration([big, small], steps=2)  # statistics="average" by default
    recal.set_model(model)
    recal.recalibrate()
    np.testing.assert_allclose(
        np.asarray(bn.moving_mean), (64 * mean_big + 20 * mean_small) / 84, rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(bn.moving_variance), (64 * var_big + 20 * var_small) / 84, rtol=1e-4, atol=1e-5
    )
    for before, variable in zip(frozen_before, (frozen.moving_mean, frozen.moving_variance)):
        np.testing.assert_array_equal(np.asarray(variable), before)  # frozen: left alone
    assert float(saliency.mask_fraction.numpy()) == pytest.approx(0.5)


def test_average_weighs_batches_of_padded_sequences_by_their_real_positions():
    """Short (padded) and full-length batches: the stem BatchNorm gets the mean over every
    real position of both, as one batch of all of them would give."""
    model = build_attngen(
        40, 2, filters=16, dense_units=8
    )  # (a CNN has no mask to recalibrate for)
    stem, bn = model.get_layer("stem_conv"), model.get_layer("stem_bn")
    short, full = _x(8, seed=4), _x(8, seed=5)
    short[:, 10:] = 0.0  # 10 real positions of 40
    features = keras.Model(model.input, stem.output)
    real = [(batch.sum(axis=-1) > 0.5) for batch in (short, full)]
    values = [
        np.asarray(features(b, training=True), "float64")[r] for b, r in zip((short, full), real)
    ]
    pooled_mean = np.concatenate(values).mean(axis=0)
    model.get_layer("saliency_mask").mask_fraction.assign(0.5)  # (unmasked while recalibrating)
    recal = BatchNormRecalibration([short, full], steps=2)
    recal.set_model(model)
    recal.recalibrate()
    np.testing.assert_allclose(np.asarray(bn.moving_mean), pooled_mean, rtol=1e-4, atol=1e-5)
    # weighting by sequences instead would be off by far more than that tolerance
    by_sequences = (values[0].mean(axis=0) + values[1].mean(axis=0)) / 2
    assert np.abs(by_sequences - pooled_mean).max() > 1e-3


def test_ema_statistics_blend_the_old_ones_with_the_layer_momentum():
    model = build_attngen(40, 2, filters=16, dense_units=8)
    saliency, bn = model.get_layer("saliency_mask"), model.get_layer("bn_0")
    x = _x(32, seed=3)
    saliency.mask_fraction.assign(0.0)
    mean, _ = _bn_input_moments(model, x)
    saliency.mask_fraction.assign(0.5)
    model(x, training=True)
    old = np.asarray(bn.moving_mean).copy()
    recal = BatchNormRecalibration([x], steps=1, statistics="ema")
    recal.set_model(model)
    recal.recalibrate()
    m = bn.momentum
    np.testing.assert_allclose(np.asarray(bn.moving_mean), m * old + (1 - m) * mean, atol=1e-5)


def test_config_and_bad_arguments():
    assert BatchNormRecalibration([], steps=3, statistics="ema").get_config() == {
        "steps": 3,
        "statistics": "ema",
    }
    with pytest.raises(ValueError, match="statistics"):
        BatchNormRecalibration([], statistics="median")


def test_batch_norm_inside_a_custom_layer_is_found_and_renorm_is_warned_of():
    from attngen_keras.callbacks.batch_norm_recalibration import averaged_statistics

    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(4)
            self.norm = keras.layers.BatchNormalization(momentum=0.9)

        def call(self, x, training=None):
            return self.norm(self.dense(x), training=training)

    inputs = keras.Input((3,))
    outputs = keras.layers.BatchNormalization(renorm=True)(Block()(inputs))
    model = keras.Model(inputs, outputs)
    with pytest.warns(UserWarning, match="renorm"):
        found = averaged_statistics(model)
    block = model.layers[1]
    assert [v for v, _ in found] == [block.norm.moving_mean, block.norm.moving_variance]
    assert [m for _, m in found] == [0.9, 0.9]


def test_data_that_does_not_yield_batches_is_named():
    x = _x(8)
    with pytest.raises(ValueError, match="data must yield batches .* not whole arrays"):
        BatchNormRecalibration(x, steps=2)
    with pytest.raises(ValueError, match="not whole arrays"):
        BatchNormRecalibration((x, np.zeros(8)), steps=2)
    model = build_attngen(40, 2)
    model.get_layer("saliency_mask").mask_fraction.assign(0.2)
    for data, message in (
        ([], "data yields no batch"),
        ([x[0]], r"a batch of data has shape \(40, 4\)"),
    ):
        recalibration = BatchNormRecalibration(data, steps=2)
        recalibration.set_model(model)
        with pytest.raises(ValueError, match=message):
            recalibration.recalibrate()
        assert float(model.get_layer("saliency_mask").mask_fraction) == pytest.approx(0.2)
    recalibration = BatchNormRecalibration([x[:4], x[4:]], steps=3)  # a list of batches works
    recalibration.set_model(model)
    recalibration.recalibrate()
