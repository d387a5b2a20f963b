import keras
import numpy as np
import pytest

from attngen_keras.callbacks import MaskingSchedule, find_saliency_masks
from attngen_keras.models import build_attngen, build_cnn, compile_classifier


@pytest.mark.parametrize(
    "shape, expected",
    [
        ("linear", [0.0, 0.0, 0.0, 0.1, 0.2, 0.3, 0.3]),
        ("cosine", [0.0, 0.0, 0.0, 0.075, 0.225, 0.3, 0.3]),
        ("step", [0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.3]),
    ],
)
def test_schedule_values(shape, expected):
    schedule = MaskingSchedule(target=0.3, warmup_epochs=3, start_epoch=2, shape=shape)
    np.testing.assert_allclose([schedule.value(e) for e in range(7)], expected, atol=1e-9)


def test_zero_warmup_jumps_to_target():
    schedule = MaskingSchedule(target=0.2, warmup_epochs=0, start_epoch=1)
    assert [schedule.value(e) for e in range(3)] == [0.0, 0.2, 0.2]


def test_config_round_trip_and_validation():
    schedule = MaskingSchedule(target=0.1, warmup_epochs=4, start_epoch=1, shape="cosine")
    assert MaskingSchedule.from_config(schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(ValueError):
        MaskingSchedule(target=1.5)
    with pytest.raises(ValueError):
        MaskingSchedule(shape="exp")


def test_fit_assigns_fraction_and_logs_it():
    model = build_attngen(30, 2, filters=8, attention_units=4, dense_units=8)
    compile_classifier(model, 2)
    x = np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (32, 30))]
    y = np.random.default_rng(1).integers(0, 2, 32)
    schedule = MaskingSchedule(target=0.2, warmup_epochs=2)
    history = model.fit(x, y, epochs=4, batch_size=16, callbacks=[schedule], verbose=0)
    np.testing.assert_allclose(history.history["mask_fraction"], [0.0, 0.1, 0.2, 0.2])
    (layer,) = find_saliency_masks(model)
    assert float(layer.mask_fraction.numpy()) == pytest.approx(0.2)


def test_finds_layers_in_nested_models():
    inner = build_attngen(30, 2, filters=8)
    outer = keras.Sequential([keras.Input((30, 4)), inner])
    assert len(find_saliency_masks(outer)) == 1


def test_refuses_model_without_saliency_mask():
    model = build_cnn(30, 2, filters=8)
    compile_classifier(model, 2)
    x = np.zeros((4, 30, 4), "float32")
    with pytest.raises(ValueError, match="SaliencyMask"):
        model.fit(x, np.zeros(4), epochs=1, callbacks=[MaskingSchedule()], verbose=0)
