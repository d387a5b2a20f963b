"""The attention window (contiguity prior): logits averaged over neighbouring valid positions."""

import keras
import numpy as np
import pytest

from attngen_keras.layers import SaliencyMask
from attngen_keras.layers.saliency_mask import window_mean
from attngen_keras.models import AttnGen, build_attngen


def _brute_window_mean(values, valid, window):
    half = window // 2
    out = np.zeros_like(values)
    for b in range(values.shape[0]):
        for i in range(values.shape[1]):
            lo, hi = max(0, i - half), min(values.shape[1], i + half + 1)
            w = valid[b, lo:hi]
            out[b, i] = (values[b, lo:hi] * w).sum() / w.sum() if w.sum() else 0.0
    return out


def _features_and_raw_logits(seed, length, padded_row, padding_from):
    """Random features `[2, length, 6]` with padding at the end of one row, a built
    window-less SaliencyMask, and its raw per-position logits."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(2, length, 6)).astype("float32")
    valid = np.ones((2, length), "float32")
    valid[padded_row, padding_from:] = 0.0
    raw = SaliencyMask(attention_units=4, return_scores=True)
    raw([features, valid])
    return features, valid, raw, np.asarray(raw.attention_logits(features))


@pytest.mark.parametrize("window", [1, 3, 7])
def test_window_mean_matches_a_loop_with_padding(window):
    rng = np.random.default_rng(window)
    values = rng.normal(size=(3, 12)).astype("float32")
    valid = np.ones((3, 12), "float32")
    valid[1, 9:] = 0.0  # padding at the end of row 1
    got = np.asarray(window_mean(values * valid, valid, window))
    np.testing.assert_allclose(got, _brute_window_mean(values, valid, window), rtol=1e-5, atol=1e-6)


def test_layer_window_smooths_the_raw_logits_of_valid_positions():
    features, valid, raw, raw_logits = _features_and_raw_logits(0, 15, 0, 11)
    smooth = SaliencyMask(attention_units=4, return_scores=True, window=5)
    smooth([features, valid])
    smooth.set_weights(raw.get_weights())
    got = np.asarray(smooth.attention_logits(features, valid > 0))
    np.testing.assert_allclose(got, _brute_window_mean(raw_logits, valid, 5), rtol=1e-5, atol=1e-5)
    # the scores are the softmax of the smoothed logits over the valid positions
    _, scores = smooth([features, valid])
    scores = np.asarray(scores)
    expected = np.exp(got[0, :11] - got[0, :11].max())
    np.testing.assert_allclose(scores[0, :11], expected / expected.sum(), rtol=1e-5, atol=1e-6)
    assert np.all(scores[0, 11:] == 0.0)


def test_window_validation_and_config_round_trip():
    for bad in (0, 2, -3):
        with pytest.raises(ValueError, match="window"):
            SaliencyMask(window=bad)
    layer = SaliencyMask(window=7)
    assert SaliencyMask.from_config(layer.get_config()).window == 7
    assert SaliencyMask().window == 1


def test_attngen_attention_window_round_trips_through_a_keras_file(tmp_path):
    model = build_attngen(40, 2, attention_window=5, seed=0)
    assert model.get_layer("saliency_mask").window == 5
    assert (
        model.attention_window == 5
        and AttnGen.from_config(model.get_config()).attention_window == 5
    )
    x = np.eye(4, dtype="float32")[np.random.default_rng(1).integers(0, 4, (4, 40))]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.attention_window == 5
    np.testing.assert_allclose(
        np.asarray(loaded.nucleotide_attention(x)),
        np.asarray(model.nucleotide_attention(x)),
        atol=1e-6,
    )


def test_default_has_two_scale_logits_and_motif_preset_the_window_mean_alone():
    from attngen_keras.cli import _parser
    from attngen_keras.models import PRESETS

    assert PRESETS["faithful"]["attention_window"] == 9
    assert PRESETS["faithful"]["attention_window_weight"] == 0.75
    assert PRESETS["faithful"]["attention_window_pooling"] == "log_mean_exp"
    assert PRESETS["faithful"]["faithfulness_weight"] == 2.0
    assert PRESETS["faithful"]["attention_window_sharpness"] == 2.0
    assert PRESETS["faithful"]["attention_window_gate"] is True
    # the motif preset stays the window mean alone at the loss weight it was measured with
    assert PRESETS["motif"] == {
        **PRESETS["faithful"],
        "attention_window_weight": 1.0,
        "attention_window_pooling": "mean",
        "faithfulness_weight": 1.5,
        "attention_window_sharpness": 1.0,
        "attention_window_gate": False,
    }
    default = build_attngen(40, 2)
    assert (default.attention_window, default.attention_window_weight) == (9, 0.75)
    layer = default.get_layer("saliency_mask")
    assert (layer.window, layer.window_weight, layer.window_pooling) == (9, 0.75, "log_mean_exp")
    assert layer.window_sharpness == 2.0 and layer.window_gate
    # the previous defaults stay reachable with options
    previous = build_attngen(40, 2, attention_window_gate=False, attention_window_sharpness=1.0)
    assert not previous.get_layer("saliency_mask").window_gate
    argv = ["train", "--data", "x.csv", "--out", "r"]
    assert (
        _parser().parse_args([*argv, "--no-attention-window-gate"]).attention_window_gate is False
    )
    model = build_attngen(40, 2, preset="motif")
    assert model.attention_window == 9 and model.mask_on == "nucleotides"
    assert model.attention_window_weight == 1.0
    assert model.get_layer("saliency_mask").window_pooling == "mean"
    assert build_attngen(40, 2, preset="motif", attention_window=3).attention_window == 3
    args = _parser().parse_args(["train", "--data", "x.csv", "--out", "r", "--preset", "motif"])
    assert args.preset == "motif"
    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "--data", "x.csv", "--out", "r", "--attention-window", "4"])


def test_window_weight_mixes_each_logit_with_its_window_mean():
    features, valid, raw, raw_logits = _features_and_raw_logits(2, 12, 1, 9)
    smooth = _brute_window_mean(raw_logits, valid, 3)
    for weight in (0.0, 0.25, 1.0):
        mixed = SaliencyMask(attention_units=4, return_scores=True, window=3, window_weight=weight)
        mixed([features, valid])
        mixed.set_weights(raw.get_weights())
        got = np.asarray(mixed.attention_logits(features, valid > 0))
        expected = (1.0 - weight) * raw_logits + weight * smooth
        real = valid > 0  # padding logits are masked out of the softmax by `call`
        np.testing.assert_allclose(got[real], expected[real], rtol=1e-5, atol=1e-5)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="window_weight"):
            SaliencyMask(window=3, window_weight=bad)
    layer = SaliencyMask(window=3, window_weight=0.25)
    assert SaliencyMask.from_config(layer.get_config()).window_weight == 0.25
    assert SaliencyMask().window_weight == 1.0


def test_attngen_attention_window_weight_round_trips_and_parses(tmp_path):
    from attngen_keras.cli import _parser

    model = build_attngen(40, 2, attention_window=5, attention_window_weight=0.5, seed=0)
    assert model.get_layer("saliency_mask").window_weight == 0.5
    assert AttnGen.from_config(model.get_config()).attention_window_weight == 0.5
    path = tmp_path / "m.keras"
    model.save(path)
    assert keras.saving.load_model(path).attention_window_weight == 0.5
    argv = ["train", "--data", "x.csv", "--out", "r", "--attention-window", "9"]
    args = _parser().parse_args([*argv, "--attention-window-weight", "0.5"])
    assert args.attention_window_weight == 0.5
    with pytest.raises(SystemExit):
        _parser().parse_args([*argv, "--attention-window-weight", "1.5"])


def _brute_window_log_mean_exp(values, valid, window):
    half = window // 2
    out = np.full_like(values, np.nan)
    for b in range(values.shape[0]):
        for i in range(values.shape[1]):
            lo, hi = max(0, i - half), min(values.shape[1], i + half + 1)
            w = valid[b, lo:hi].astype("float64")
            if w.sum():
                out[b, i] = np.log((np.exp(values[b, lo:hi].astype("float64")) * w).sum() / w.sum())
    return out


@pytest.mark.parametrize("window", [1, 3, 7])
def test_window_log_mean_exp_matches_a_loop_with_padding(window):
    import tensorflow as tf

    from attngen_keras.layers.saliency_mask import window_log_mean_exp

    rng = np.random.default_rng(window)
    values = (rng.normal(size=(4, 12)) * 30).astype("float32")  # exp would overflow unshifted
    values[2, 4] = 95.0
    valid = np.ones((4, 12), "float32")
    valid[1, 9:] = 0.0  # padding at the end of row 1 (its values must not count)
    values[1, 9:] = 500.0
    valid[3] = 0.0  # row 3 is all padding: no window holds weight, so 0 everywhere
    valid[0, 5 : 5 + window] = 0.0  # row 0: a gap as wide as the window (0 at its centre)
    values[0, 5 : 5 + window] = -500.0
    got = np.asarray(window_log_mean_exp(values, valid, window))
    expected = _brute_window_log_mean_exp(values, valid, window)
    real = ~np.isnan(expected)
    assert np.all(np.isfinite(got))
    np.testing.assert_array_equal(got[~real], 0.0)
    assert not real[3].any() and not real[0, 5 + window // 2]  # row 3, and the gap's centre
    x = tf.constant(values)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(window_log_mean_exp(x, valid, window))
    gradient = tape.gradient(total, x).numpy()
    assert np.all(np.isfinite(gradient))
    np.testing.assert_array_equal(gradient[valid == 0], 0.0)  # padding gets no gradient
    np.testing.assert_allclose(got[real], expected[real], rtol=1e-5, atol=1e-4)
    # a soft maximum: between the window's mean and its maximum
    mean = _brute_window_mean(values, valid, window)
    assert np.all(got[real] >= mean[real] - 1e-3)
    top = np.array([[(values[b, max(0, i - window // 2) : i + window // 2 + 1]
                      + np.where(valid[b, max(0, i - window // 2) : i + window // 2 + 1] > 0, 0, -1e9)
                      ).max() for i in range(12)] for b in range(4)])  # fmt: skip
    assert np.all(got[real] <= top[real] + 1e-3)


def test_window_pooling_log_mean_exp_mixes_like_the_mean():
    from attngen_keras.cli import _parser

    features, valid, raw, raw_logits = _features_and_raw_logits(3, 12, 1, 9)
    pooled = _brute_window_log_mean_exp(raw_logits, valid, 5)
    layer = SaliencyMask(
        attention_units=4, return_scores=True, window=5, window_weight=0.75,
        window_pooling="log_mean_exp",
    )  # fmt: skip
    layer([features, valid])
    layer.set_weights(raw.get_weights())
    got = np.asarray(layer.attention_logits(features, valid > 0))
    real = valid > 0
    expected = 0.25 * raw_logits + 0.75 * pooled
    np.testing.assert_allclose(got[real], expected[real], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="window_pooling"):
        SaliencyMask(window=3, window_pooling="max")
    assert SaliencyMask().window_pooling == "mean"  # layers saved before the option: the mean
    config = layer.get_config()
    assert SaliencyMask.from_config(config).window_pooling == "log_mean_exp"
    del config["window_pooling"]
    assert SaliencyMask.from_config(config).window_pooling == "mean"
    argv = ["train", "--data", "x.csv", "--out", "r"]
    args = _parser().parse_args([*argv, "--attention-window-pooling", "log_mean_exp"])
    assert args.attention_window_pooling == "log_mean_exp"
    with pytest.raises(SystemExit):
        _parser().parse_args([*argv, "--attention-window-pooling", "max"])


def test_attngen_window_pooling_round_trips_through_a_keras_file(tmp_path):
    model = build_attngen(40, 2, attention_window=5, attention_window_pooling="mean", seed=0)
    assert model.get_layer("saliency_mask").window_pooling == "mean"
    model = build_attngen(40, 2, attention_window=5, attention_window_pooling="log_mean_exp")
    assert model.get_layer("saliency_mask").window_pooling == "log_mean_exp"
    assert AttnGen.from_config(model.get_config()).attention_window_pooling == "log_mean_exp"
    x = np.eye(4, dtype="float32")[np.random.default_rng(1).integers(0, 4, (4, 40))]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.attention_window_pooling == "log_mean_exp"
    np.testing.assert_allclose(
        np.asarray(loaded.nucleotide_attention(x)),
        np.asarray(model.nucleotide_attention(x)),
        atol=1e-6,
    )


def _analytic_log_mean_exp_gradient(values, valid, window, upstream):
    """d sum(upstream * log_mean_exp) / d values: each window's softmax weights, summed."""
    half = window // 2
    grad = np.zeros_like(values, dtype="float64")
    for b in range(values.shape[0]):
        for i in range(values.shape[1]):
            lo, hi = max(0, i - half), min(values.shape[1], i + half + 1)
            w = valid[b, lo:hi].astype("float64")
            if not w.sum():
                continue
            e = np.exp(values[b, lo:hi].astype("float64") - values[b, lo:hi].max()) * w
            grad[b, lo:hi] += upstream[b, i] * e / e.sum()
    return grad


def test_window_log_mean_exp_gradient_is_the_windows_softmax():
    import tensorflow as tf

    from attngen_keras.layers.saliency_mask import window_log_mean_exp

    rng = np.random.default_rng(4)
    values = rng.normal(size=(2, 10)).astype("float32") * 3
    values[0, 4] = values[0, 5]  # a tie for a window's maximum
    valid = np.ones((2, 10), "float32")
    valid[1, 7:] = 0.0
    upstream = rng.normal(size=(2, 10)).astype("float32") * valid
    x = tf.Variable(values)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(window_log_mean_exp(x, valid, 3) * upstream)
    got = tape.gradient(loss, x).numpy()
    expected = _analytic_log_mean_exp_gradient(values, valid, 3, upstream)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.all(got[1, 7:] == 0.0)  # padding takes no gradient


def test_window_sharpness_scales_the_log_mean_exp():
    from attngen_keras.cli import _parser

    features, valid, raw, raw_logits = _features_and_raw_logits(5, 12, 0, 10)
    for sharpness in (0.5, 3.0):
        layer = SaliencyMask(
            attention_units=4, return_scores=True, window=3, window_weight=0.75,
            window_pooling="log_mean_exp", window_sharpness=sharpness,
        )  # fmt: skip
        layer([features, valid])
        layer.set_weights(raw.get_weights())
        got = np.asarray(layer.attention_logits(features, valid > 0))
        pooled = _brute_window_log_mean_exp(raw_logits * sharpness, valid, 3) / sharpness
        real = valid > 0
        np.testing.assert_allclose(
            got[real], (0.25 * raw_logits + 0.75 * pooled)[real], rtol=1e-5, atol=1e-5
        )
        config = layer.get_config()
        assert SaliencyMask.from_config(config).window_sharpness == sharpness
    # towards 0 it is the window's mean
    from attngen_keras.layers.saliency_mask import window_log_mean_exp

    tiny = np.asarray(window_log_mean_exp(raw_logits * 1e-3, valid, 3)) / 1e-3
    real = valid > 0
    mean = _brute_window_mean(raw_logits, valid, 3)
    np.testing.assert_allclose(tiny[real], mean[real], atol=2e-3)
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="window_sharpness"):
            SaliencyMask(window=3, window_pooling="log_mean_exp", window_sharpness=bad)
    assert SaliencyMask().window_sharpness == 1.0
    model = build_attngen(
        40, 2, attention_window_pooling="log_mean_exp", attention_window_sharpness=0.5
    )
    assert model.get_layer("saliency_mask").window_sharpness == 0.5
    assert AttnGen.from_config(model.get_config()).attention_window_sharpness == 0.5
    argv = ["train", "--data", "x.csv", "--out", "r"]
    args = _parser().parse_args([*argv, "--attention-window-sharpness", "0.5"])
    assert args.attention_window_sharpness == 0.5
    with pytest.raises(SystemExit):
        _parser().parse_args([*argv, "--attention-window-sharpness", "0"])


def test_window_gate_learns_the_window_weight_per_position(tmp_path):
    """`window_gate=True`: each position's window weight is `sigmoid(u . hidden + c)`, starting at
    `window_weight` everywhere (u = 0), trainable, and round-tripped by config and a .keras file."""
    from attngen_keras.cli import _parser

    features, valid, raw, raw_logits = _features_and_raw_logits(6, 12, 1, 8)
    pooled = _brute_window_log_mean_exp(raw_logits, valid, 5)
    real = valid > 0
    options = dict(attention_units=4, return_scores=True, window=5, window_pooling="log_mean_exp")
    fixed = SaliencyMask(window_weight=0.75, **options)
    fixed([features, valid])
    gated = SaliencyMask(window_weight=0.75, window_gate=True, **options)
    gated([features, valid])
    assert not hasattr(fixed, "gate_kernel")  # a layer without the gate keeps its variables
    assert len(gated.trainable_weights) == len(fixed.trainable_weights) + 2
    for layer in (fixed, gated):
        for name in ("attention_kernel", "attention_bias", "score_kernel"):
            getattr(layer, name).assign(getattr(raw, name))
    np.testing.assert_allclose(np.asarray(gated.gate_bias), np.log(3.0), rtol=1e-6)  # 0.75
    assert not np.any(np.asarray(gated.gate_kernel))
    at_start = np.asarray(gated.attention_logits(features, real))
    np.testing.assert_allclose(
        at_start, np.asarray(fixed.attention_logits(features, real)), atol=1e-6
    )
    # a learned gate: weights by hand from the scorer's hidden units
    kernel, bias = np.array([[1.5], [-2.0], [0.5], [3.0]], "float32"), np.float32(-0.3)
    gated.gate_kernel.assign(kernel)
    gated.gate_bias.assign(bias)
    hidden = np.tanh(features @ np.asarray(raw.attention_kernel) + np.asarray(raw.attention_bias))
    weight = 1.0 / (1.0 + np.exp(-((hidden @ kernel)[..., 0] + bias)))
    assert weight.std() > 0.1  # the weights differ between positions
    expected = (1.0 - weight) * raw_logits + weight * pooled
    got = np.asarray(gated.attention_logits(features, real))
    np.testing.assert_allclose(got[real], expected[real], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(gated.window_weights(features)), weight, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(fixed.window_weights(features)), 0.75)
    config = gated.get_config()
    assert config["window_gate"] is True and SaliencyMask.from_config(config).window_gate
    del config["window_gate"]  # layers saved before the option: no gate
    assert SaliencyMask.from_config(config).window_gate is False
    for bad in (dict(window=1, window_weight=0.5), dict(window=5, window_weight=1.0),
                dict(window=5, window_weight=0.0)):  # fmt: skip
        with pytest.raises(ValueError, match="window_gate"):
            SaliencyMask(window_gate=True, **bad)
    model = build_attngen(40, 2, attention_window_gate=True, seed=0)
    layer = model.get_layer("saliency_mask")
    assert layer.window_gate and model.attention_window_gate
    assert AttnGen.from_config(model.get_config()).attention_window_gate
    layer.gate_kernel.assign(np.random.default_rng(2).normal(size=(32, 1)).astype("float32"))
    x = np.eye(4, dtype="float32")[np.random.default_rng(1).integers(0, 4, (4, 40))]
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(
        np.asarray(loaded.nucleotide_attention(x)), np.asarray(model.nucleotide_attention(x)),
        atol=1e-6,
    )  # fmt: skip
    assert build_attngen(40, 2).attention_window_gate  # the default (since the thirteenth session)
    # the default's gate gives way where there is nothing to mix; asked for, it is an error
    for options in (dict(attention_window=1), dict(attention_window_weight=1.0),
                    dict(attention_window_weight=0.0)):  # fmt: skip
        assert not build_attngen(40, 2, **options).get_layer("saliency_mask").window_gate
        with pytest.raises(ValueError, match="window_gate"):
            build_attngen(40, 2, attention_window_gate=True, **options)
    assert not build_attngen(40, 2, preset="motif").attention_window_gate
    argv = ["train", "--data", "x.csv", "--out", "r"]
    assert _parser().parse_args([*argv, "--attention-window-gate"]).attention_window_gate is True
    assert _parser().parse_args(argv).attention_window_gate is None


def test_window_gate_takes_gradients():
    import tensorflow as tf

    features, valid, _, _ = _features_and_raw_logits(7, 12, 0, 12)
    layer = SaliencyMask(
        attention_units=4, window=5, window_weight=0.75, window_gate=True,
        window_pooling="log_mean_exp", mask_fraction=0.2,
    )  # fmt: skip
    layer([features, valid])
    with tf.GradientTape() as tape:
        out = layer([features, valid], training=True)
        loss = tf.reduce_sum(out * np.linspace(-1, 1, 6, dtype="float32"))
    grads = tape.gradient(loss, [layer.gate_kernel, layer.gate_bias])
    assert all(g is not None and np.any(np.asarray(g) != 0) for g in grads)
