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
