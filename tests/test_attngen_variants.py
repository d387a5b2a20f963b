"""Semantics of the AttnGen options: mask placement, hard inference, temperature,
fill value, uniform-attention control, the faithfulness loss and the presets."""

import keras
import numpy as np
import pytest

from attngen_keras.callbacks import BatchNormRecalibration
from attngen_keras.explain.importance import project_to_nucleotides
from attngen_keras.layers import SaliencyMask
from attngen_keras.layers.saliency_mask import (
    lowest_fraction_mask,
    mean_normalized_entropy,
    sparsemax,
)
from attngen_keras.models import (
    PRESETS,
    AttnGen,
    attention_projection_conv,
    build_attngen,
    compile_classifier,
)
from attngen_keras.models.classifiers import N_ENCODING, project_scores


def _restart_faithfulness_draws(model):
    """The faithfulness loss's random generator back at its first draw."""
    state = model._faithfulness_seed.state
    state.assign(np.array([np.asarray(state)[0], 0], dtype=np.asarray(state).dtype))


def _one_hot(n=6, length=30, seed=0):
    return np.eye(4, dtype="float32")[np.random.default_rng(seed).integers(0, 4, (n, length))]


def _features(batch=3, length=20, channels=5, seed=0):
    return (
        np.random.default_rng(seed).normal(size=(batch, length, channels)).astype("float32") + 2.0
    )


def test_lowest_fraction_mask_counts_and_padding():
    ranking = np.array([[5.0, 1.0, 3.0, 2.0, 4.0, 0.0]], "float32")
    valid = np.array([[True, True, True, True, True, False]])
    got = np.asarray(lowest_fraction_mask(ranking, valid, 0.4))  # floor(0.4 * 5) = 2
    assert got.tolist() == [[False, True, False, True, False, False]]
    top = np.asarray(lowest_fraction_mask(-ranking, valid, 0.4))
    assert top.tolist() == [[True, False, False, False, True, False]]


def test_hard_inference_keeps_exactly_the_top_positions_unchanged_at_inference():
    features = _features()
    valid = np.ones(features.shape[:2], "float32")
    layer = SaliencyMask(
        attention_units=4, mask_fraction=0.25, return_scores=True, inference="hard"
    )
    out, scores = layer([features, valid], training=False)
    out, scores = np.asarray(out), np.asarray(scores)
    for i in range(len(features)):
        dropped = np.all(out[i] == 0, axis=-1)
        assert dropped.sum() == 5  # floor(0.25 * 20)
        assert set(np.flatnonzero(dropped)) == set(np.argsort(scores[i])[:5])
        np.testing.assert_array_equal(out[i][~dropped], features[i][~dropped])


def test_soft_inference_masks_nothing_and_reweights():
    features = _features()
    valid = np.ones(features.shape[:2], "float32")
    layer = SaliencyMask(attention_units=4, mask_fraction=0.25, return_scores=True)
    out, scores = layer([features, valid], training=False)
    expected = features * (np.asarray(scores) * 20)[..., None]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5)


def test_hard_training_forward_is_the_mask_and_gradient_reaches_attention():
    import tensorflow as tf

    features = _features()
    valid = np.ones(features.shape[:2], "float32")
    layer = SaliencyMask(attention_units=4, mask_fraction=0.25, inference="hard")
    inference = np.asarray(layer([features, valid], training=False))
    with tf.GradientTape() as tape:
        out = layer([features, valid], training=True)
        loss = tf.reduce_sum(out**2)
    np.testing.assert_allclose(np.asarray(out), inference, rtol=1e-6)
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_fill_value_and_context_input():
    x = _one_hot(3, 20)
    valid = np.ones((3, 20), "float32")
    context = _features(3, 20, 7, seed=1)
    layer = SaliencyMask(
        attention_units=4, mask_fraction=0.3, return_scores=True, inference="hard", fill_value=0.25
    )
    out, scores = layer([x, valid, context], training=False)
    out = np.asarray(out)
    # masked nucleotides become N (0.25 each), exactly floor(0.3 * 20) = 6 per sequence
    is_n = np.all(np.isclose(out, 0.25), axis=-1)
    assert is_n.sum(axis=1).tolist() == [6, 6, 6]
    np.testing.assert_array_equal(out[~is_n], x[~is_n])
    # the attention depends on the context only, not on the masked values
    _, scores_other = layer([_one_hot(3, 20, seed=9), valid, context], training=False)
    np.testing.assert_allclose(np.asarray(scores), np.asarray(scores_other), rtol=1e-6)


def test_temperature_divides_the_logits():
    features = _features()
    valid = np.ones(features.shape[:2], "float32")
    sharp = SaliencyMask(attention_units=4, return_scores=True, temperature=0.5)
    sharp([features, valid])
    plain = SaliencyMask(attention_units=4, return_scores=True)
    plain([features, valid])
    plain.set_weights(sharp.get_weights())
    logits = np.asarray(plain.attention_logits(features))
    _, scores = sharp([features, valid])
    expected = np.exp(2 * logits) / np.exp(2 * logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(scores), expected, rtol=1e-4)


def test_uniform_attention_control_gives_uniform_scores_and_no_masking():
    features = _features()
    valid = np.ones(features.shape[:2], "float32")
    layer = SaliencyMask(attention_units=4, mask_fraction=0.4, return_scores=True, inference="hard")
    layer([features, valid])
    layer.uniform_attention.assign(1.0)
    out, scores = layer([features, valid], training=False)
    np.testing.assert_allclose(np.asarray(scores), 1 / 20, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(out), features, rtol=1e-6)


def test_layer_loads_weights_saved_before_uniform_attention_existed():
    features = _features()
    valid = np.ones(features.shape[:2], "float32")
    layer = SaliencyMask(attention_units=4, mask_fraction=0.2)
    layer([features, valid])
    old = {str(i): v for i, v in enumerate(layer.get_weights()[:-1])}  # the 4 old variables
    clone = SaliencyMask(attention_units=4)
    clone([features, valid])
    clone.load_own_variables(old)
    assert float(np.asarray(clone.mask_fraction)) == pytest.approx(0.2)
    assert float(np.asarray(clone.uniform_attention)) == 0.0


@pytest.mark.parametrize("kernel, dilation, length", [(9, 1, 30), (4, 1, 17), (5, 2, 25)])
def test_project_scores_matches_numpy_projection(kernel, dilation, length):
    scores = np.random.default_rng(0).random((3, length)).astype("float32")
    conv = keras.layers.Conv1D(1, kernel, padding="same", dilation_rate=dilation)
    np.testing.assert_allclose(
        np.asarray(project_scores(scores, kernel, dilation)),
        project_to_nucleotides(scores, conv),
        rtol=1e-5,
    )


def test_presets_and_placements():
    faithful = build_attngen(40, 2)
    paper = build_attngen(40, 2, preset="paper")
    assert (faithful.mask_on, faithful.faithfulness_weight) == (
        "nucleotides",
        PRESETS["faithful"]["faithfulness_weight"],
    )
    assert (paper.mask_on, paper.faithfulness_weight, paper.inference) == ("features", 0.0, "soft")
    assert attention_projection_conv(faithful) is None
    assert attention_projection_conv(paper).name == "stem_conv"
    # the paper's SaliencyMask reads the stem; the faithful one reads the one-hot input
    assert faithful.get_layer("saliency_mask").fill_value == N_ENCODING
    assert paper.get_layer("saliency_mask").fill_value == 0.0
    assert build_attngen(40, 2, preset="paper", inference="hard").inference == "hard"
    assert (
        build_attngen(40, 2, stem_activation="exponential")
        .get_layer("stem_relu")
        .activation.__name__
        == "exponential"
    )
    with pytest.raises(ValueError, match="preset"):
        build_attngen(40, 2, preset="nope")
    with pytest.raises(ValueError, match="mask_on"):
        AttnGen(40, 2, mask_on="pooled")


def test_nucleotide_attention_is_the_ranking_explain_uses():
    x = _one_hot()
    for preset in ("faithful", "paper"):
        model = build_attngen(30, 2, preset=preset)
        from attngen_keras.models import attention_model

        raw = np.asarray(attention_model(model)(x))
        conv = attention_projection_conv(model)
        expected = project_to_nucleotides(raw, conv) if conv is not None else raw
        np.testing.assert_allclose(
            np.asarray(model.nucleotide_attention(x)), expected, rtol=1e-5, atol=1e-7
        )


def test_faithfulness_loss_matches_a_hand_built_perturbed_batch():
    # two sequences: the first gets its top 20% replaced by N (pulled to p = 0.5),
    # the second keeps only its top 20% (trained on its label)
    model = build_attngen(30, 2, dropout=0.0, faithfulness_fraction=0.2)
    x, y = _one_hot(2, 30, seed=3), np.array([1, 0])
    ranking = np.asarray(model.nucleotide_attention(x))
    top = np.zeros_like(ranking, dtype=bool)
    for i in range(2):
        top[i, np.argsort(-ranking[i], kind="stable")[:6]] = True
    perturbed = x.copy()
    perturbed[0][top[0]] = N_ENCODING
    perturbed[1][~top[1]] = N_ENCODING
    p = np.asarray(model(perturbed, training=False))[:, 0].astype("float64")
    expected = np.mean([-0.5 * (np.log(p[0]) + np.log(1 - p[0])) - np.log(2), -np.log(1 - p[1])])
    assert float(model.faithfulness_loss(x, y)) == pytest.approx(expected, rel=1e-4)


def test_faithfulness_batch_fraction_scores_the_leading_rows_only():
    x, y = _one_hot(6, 30, seed=5), np.array([1, 0, 1, 1, 0, 0])
    full = build_attngen(30, 2, dropout=0.0, seed=2)
    half = build_attngen(30, 2, dropout=0.0, seed=2, faithfulness_batch_fraction=0.5)
    half.set_weights(full.get_weights())
    # ceil(0.5 * 6) = 3 rows: the loss of the first 3 sequences alone (one per group)
    expected = float(full.faithfulness_loss(x[:3], y[:3]))
    assert float(half.faithfulness_loss(x, y)) == pytest.approx(expected, rel=1e-5)
    assert float(half.faithfulness_loss(x, y)) != pytest.approx(float(full.faithfulness_loss(x, y)))
    # ceil(0.3 * 5) = 2 rows; a tiny fraction still scores one row
    third = build_attngen(30, 2, dropout=0.0, seed=2, faithfulness_batch_fraction=0.3)
    third.set_weights(full.get_weights())
    _restart_faithfulness_draws(full)  # (the groups of 2 rows turn from call to call)
    assert float(third.faithfulness_loss(x[:5], y[:5])) == pytest.approx(
        float(full.faithfulness_loss(x[:2], y[:2])), rel=1e-5
    )
    tiny = build_attngen(30, 2, dropout=0.0, seed=2, faithfulness_batch_fraction=0.01)
    tiny.set_weights(full.get_weights())
    _restart_faithfulness_draws(full)
    assert float(tiny.faithfulness_loss(x, y)) == pytest.approx(
        float(full.faithfulness_loss(x[:1], y[:1])), rel=1e-5
    )
    assert half.get_config()["faithfulness_batch_fraction"] == 0.5
    assert AttnGen.from_config(half.get_config()).faithfulness_batch_fraction == 0.5
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="faithfulness_batch_fraction"):
            build_attngen(30, 2, faithfulness_batch_fraction=bad)


def test_faithfulness_batch_fraction_trains_in_a_compiled_step():
    x, y = _one_hot(20, 30), np.arange(20) % 2
    model = build_attngen(30, 2, faithfulness_weight=2.0, faithfulness_batch_fraction=0.5, seed=4)
    compile_classifier(model, 2, jit_compile=False)
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)  # batches of 8, 8 and 4
    assert np.isfinite(history.history["loss"]).all()


def test_faithfulness_loss_only_in_training_and_round_trip(tmp_path):
    x, y = _one_hot(32, 30), np.arange(32) % 2
    model = build_attngen(30, 2, faithfulness_weight=2.0, seed=4)
    compile_classifier(model, 2, jit_compile=False)
    evaluated = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    bce = keras.losses.BinaryCrossentropy()(y, model.predict(x, verbose=0))
    assert evaluated == pytest.approx(float(bce), rel=1e-4)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, AttnGen)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_recalibration_skips_hard_masks_and_recalibrates_soft_ones():
    x = _one_hot(16, 30)
    for inference, changes in (("hard", False), ("soft", True)):
        model = build_attngen(30, 2, inference=inference)
        layer = model.get_layer("saliency_mask")
        layer.mask_fraction.assign(0.2)
        bn = model.get_layer("stem_bn")
        before = np.asarray(bn.moving_mean).copy()
        recal = BatchNormRecalibration([x], steps=2)
        recal.set_model(model)
        recal.recalibrate()
        assert float(np.asarray(layer.mask_fraction)) == pytest.approx(0.2)
        assert (not np.allclose(np.asarray(bn.moving_mean), before)) == changes


def test_sigmoid_gates_do_not_renormalize_when_a_position_changes():
    features = _features(1, 12, 5)
    valid = np.ones((1, 12), "float32")
    changed = features.copy()
    changed[0, 3] = -5.0  # one position's features change
    for normalization, others_unchanged in (("sigmoid", True), ("softmax", False)):
        layer = SaliencyMask(attention_units=4, normalization=normalization, fill_value=0.0)
        layer([features, valid])
        ratio = np.asarray(layer([features, valid])) / features
        ratio_changed = np.asarray(layer([changed, valid])) / changed
        others = [i for i in range(12) if i != 3]
        same = np.allclose(ratio[0, others], ratio_changed[0, others], rtol=1e-5)
        assert same == others_unchanged, normalization
        if normalization == "sigmoid":
            logits = np.asarray(layer.attention_logits(features))
            np.testing.assert_allclose(ratio[0, :, 0], 1 / (1 + np.exp(-logits[0])), rtol=1e-5)


def _sparsemax_reference(z):
    """The simplex projection by its textbook sort-and-threshold rule, in NumPy."""
    ordered = np.sort(z)[::-1]
    k = np.arange(1, len(z) + 1)
    support = k[1 + k * ordered > np.cumsum(ordered)].max()
    tau = (np.cumsum(ordered)[support - 1] - 1) / support
    return np.maximum(z - tau, 0.0)


def test_sparsemax_is_the_simplex_projection_with_its_jacobian():
    import tensorflow as tf

    rng = np.random.default_rng(3)
    z = (rng.normal(size=(6, 15)) * 2).astype("float32")
    valid = np.ones((6, 15), bool)
    valid[1, 9:] = False
    valid[4, 1:] = False  # a single real position
    got = np.asarray(sparsemax(z, valid))
    for row in range(6):
        n = valid[row].sum()
        np.testing.assert_allclose(got[row, :n], _sparsemax_reference(z[row, :n]), atol=1e-6)
        assert (got[row, n:] == 0).all()
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)
    assert ((got == 0) & valid).any(), "some real positions get exactly 0"
    # d/dz of sum(v * sparsemax(z)) = s * (v - mean of v over the support S)
    v = np.arange(15, dtype="float32")
    x = tf.Variable(z[:1])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(sparsemax(x, valid[:1]) * v)
    support = (got[0] > 0).astype("float32")
    expected = support * (v - (support * v).sum() / support.sum())
    np.testing.assert_allclose(tape.gradient(loss, x).numpy()[0], expected, atol=1e-5)


def test_sparsemax_weights_zero_positions_become_fill_at_inference():
    features = _features(2, 12, 5, seed=1)
    valid = np.ones((2, 12), "float32")
    keras.utils.set_random_seed(7)
    layer = SaliencyMask(attention_units=4, normalization="sparsemax", fill_value=0.25,
                         return_scores=True)  # fmt: skip
    layer([features, valid])
    # logits of spread 1 over 12 positions: a support of a few positions
    spread = float(np.std(np.asarray(layer.attention_logits(features))))
    layer.score_kernel.assign(np.asarray(layer.score_kernel) / spread)
    outputs, scores = (np.asarray(t) for t in layer([features, valid]))
    logits = np.asarray(layer.attention_logits(features))
    for row in range(2):
        expected = _sparsemax_reference(logits[row])
        np.testing.assert_allclose(scores[row], expected, atol=1e-6)
        weights = expected * 12
        np.testing.assert_allclose(
            outputs[row], 0.25 + (features[row] - 0.25) * weights[:, None], rtol=1e-5, atol=1e-5
        )
        assert 0 < (expected == 0).sum() < 12
    layer.uniform_attention.assign(1.0)  # the control: uniform scores, weights 1
    outputs, scores = (np.asarray(t) for t in layer([features, valid]))
    np.testing.assert_allclose(scores, 1 / 12, rtol=1e-6)
    np.testing.assert_allclose(outputs, features, rtol=1e-6)


def test_entropy_penalty_is_added_in_training_only_and_round_trips(tmp_path):
    scores = np.array([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], "float32")
    # row 1: log 2 / log 4 = 0.5 (4 real positions); row 2: 0
    assert float(mean_normalized_entropy(scores, np.array([[4.0], [4.0]]))) == pytest.approx(0.25)
    features = _features(3, 10, 5)
    valid = np.ones((3, 10), "float32")
    valid[2, 6:] = 0.0
    layer = SaliencyMask(attention_units=4, entropy_weight=0.3, return_scores=True)
    _, scores = layer([features, valid], training=True)
    scores = np.asarray(scores)
    terms = np.where(scores > 0, -scores * np.log(np.maximum(scores, 1e-12)), 0.0).sum(axis=1)
    expected = 0.3 * np.mean(terms / np.log(valid.sum(axis=1)))
    assert [float(loss) for loss in layer.losses] == pytest.approx([expected], rel=1e-5)
    layer([features, valid], training=False)
    assert layer.losses == []
    x, y = _one_hot(24, 30), np.arange(24) % 2
    model = build_attngen(30, 2, attention_entropy_weight=0.3, normalization="sparsemax", seed=2)
    assert model.get_layer("saliency_mask").entropy_weight == 0.3
    compile_classifier(model, 2, jit_compile=False)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model(x[:8], training=True)
    assert len(model.losses) == 1 and float(model.losses[0]) > 0
    model(x[:8], training=False)
    assert model.losses == []
    # the penalty enters the training loss
    plain = build_attngen(30, 2, attention_entropy_weight=0.3, faithfulness_weight=0.0)
    compile_classifier(plain, 2, jit_compile=False)
    y_pred = plain(x[:8], training=True)
    penalty = float(plain.losses[0])
    bce = float(keras.losses.BinaryCrossentropy()(y[:8], y_pred))
    total = float(plain.compute_loss(x[:8], y[:8], y_pred, training=True))
    assert total == pytest.approx(bce + penalty, rel=1e-5) and penalty > 0.01
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_config() == model.get_config()
    assert loaded.attention_entropy_weight == 0.3
    assert loaded.get_layer("saliency_mask").entropy_weight == 0.3
    assert loaded.get_layer("saliency_mask").get_config()["normalization"] == "sparsemax"
    again = SaliencyMask.from_config(layer.get_config())
    assert (again.entropy_weight, again.normalization) == (0.3, "softmax")
    with pytest.raises(ValueError, match="entropy_weight"):
        SaliencyMask(entropy_weight=float("inf"))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_entropy_penalty_reaches_the_training_step_beside_the_faithfulness_loss():
    """The penalty survives the faithfulness loss's second forward pass."""
    x, y = _one_hot(12, 30, seed=3), np.arange(12) % 2
    models = []
    for weight in (0.0, 0.4):
        model = build_attngen(30, 2, attention_entropy_weight=weight, dropout=0.0, seed=5)
        compile_classifier(model, 2, jit_compile=False)
        models.append(model)
    plain, penalized = models
    penalized.set_weights(plain.get_weights())
    scores = np.asarray(penalized._attention_function(x))
    penalty = 0.4 * float(mean_normalized_entropy(scores, np.full((12, 1), 30.0)))
    losses = [float(m.train_on_batch(x, y, return_dict=True)["loss"]) for m in models]
    assert penalized.faithfulness_weight > 0
    assert losses[1] - losses[0] == pytest.approx(penalty, rel=1e-3)


def test_sparsemax_zero_scores_fill_the_rationale_in_random_order():
    """With exact zeros, the faithfulness loss's top group takes every positive score
    and then zeros at random, not the leftmost ones."""
    x = _one_hot(12, 30, seed=6)
    model = build_attngen(30, 2, normalization="sparsemax", faithfulness_fraction=0.3, seed=2)
    layer = model.get_layer("saliency_mask")
    layer.score_kernel.assign(np.asarray(layer.score_kernel) * 50.0)  # a support of few positions
    ranking = np.asarray(model.nucleotide_attention(x))
    perturbed, group, _ = (np.asarray(t) for t in model.faithfulness_inputs(x))
    replaced = (perturbed == N_ENCODING).all(axis=-1)
    leftmost_only = True
    for row in np.flatnonzero(group == 0):
        positive = ranking[row] > 0
        assert positive.sum() < 9, "the test needs a support smaller than the rationale"
        assert replaced[row].sum() == 9 and replaced[row][positive].all()
        zeros_taken = np.flatnonzero(replaced[row] & ~positive)
        leftmost_zeros = np.flatnonzero(~positive)[: len(zeros_taken)]
        leftmost_only &= np.array_equal(zeros_taken, leftmost_zeros)
    assert not leftmost_only


def test_cli_preset_paper_and_variant_options(tmp_path, capsys):
    """`attngen train --preset paper` builds the paper's AttnGen; options override the preset."""
    import json

    from helpers import run_cli

    from attngen_keras.synthetic import planted_motif_data

    data = tmp_path / "motifs.csv"
    planted_motif_data(n=200, length=40, motifs=("TGACTCA",), seed=2).to_frame().to_csv(
        data, index=False
    )
    runs = {}
    for name, extra in (
        ("paper", ["--preset", "paper"]),
        (
            "hard",
            [
                "--inference",
                "hard",
                "--normalization",
                "sigmoid",
                "--faithfulness-batch-fraction",
                "0.5",
                "--attention-entropy-weight",
                "0.1",
            ],
        ),
    ):
        out = tmp_path / name
        result = run_cli(capsys, "train", "--data", data, "--epochs", "1", "--no-jit", "--out", out,
                         *extra)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        runs[name] = (
            json.loads((out / "config.json").read_text()),
            keras.models.load_model(out / "model.keras"),
        )
    config, model = runs["paper"]
    assert config["preset"] == "paper" and config["attention"] == {}
    assert (model.mask_on, model.faithfulness_weight) == ("features", 0.0)
    config, model = runs["hard"]
    assert config["preset"] == "faithful"
    assert config["attention"] == {"inference": "hard", "normalization": "sigmoid",
                                   "faithfulness_batch_fraction": 0.5,
                                   "attention_entropy_weight": 0.1}  # fmt: skip
    assert model.attention_entropy_weight == 0.1
    assert (model.mask_on, model.inference, model.normalization) == (
        "nucleotides",
        "hard",
        "sigmoid",
    )
    assert model.faithfulness_batch_fraction == 0.5
    assert model.faithfulness_weight == PRESETS["faithful"]["faithfulness_weight"]
    result = run_cli(capsys, "train", "--data", data, "--model", "cnn", "--preset", "paper",
                     "--out", tmp_path / "cnn")  # fmt: skip
    assert result.returncode == 2
    assert (
        "attngen train: error: --preset and the AttnGen variant options apply to --model attngen only"
        in (result.stderr)
    )


def test_faithfulness_inputs_groups():
    x = _one_hot(6, 30, seed=5)
    x[5, 25:] = 0.0  # padding
    model = build_attngen(30, 2, faithfulness_fraction=0.2, seed=1)
    perturbed, group, valid = (np.asarray(a) for a in model.faithfulness_inputs(x))
    ranking = np.asarray(model.nucleotide_attention(x))
    assert group.tolist() == [0, 1, 2, 0, 1, 2]
    is_n = np.all(np.isclose(perturbed, N_ENCODING), axis=-1)
    for i in range(6):
        n = int(valid[i].sum())
        k = int(np.floor(0.2 * n + 1e-4))
        real = np.flatnonzero(valid[i])
        top = set(real[np.argsort(-ranking[i, real], kind="stable")[:k]])
        replaced = set(np.flatnonzero(is_n[i]))
        if group[i] == 0:
            assert replaced == top
        elif group[i] == 1:
            assert replaced == set(real) - top
        else:
            assert len(replaced) == k and not replaced & top
        np.testing.assert_array_equal(perturbed[i][~valid[i]], 0.0)  # padding stays padding
        untouched = [j for j in real if j not in replaced]
        np.testing.assert_array_equal(perturbed[i][untouched], x[i][untouched])


def test_faithfulness_target_baseline_pulls_towards_the_all_n_output():
    model = build_attngen(30, 2, dropout=0.0, faithfulness_target="baseline")
    x, y = _one_hot(2, 30, seed=3), np.array([1, 0])
    perturbed, _, _ = model.faithfulness_inputs(x)
    _restart_faithfulness_draws(model)  # the loss's call perturbs as the first call did
    p = np.asarray(model(perturbed, training=False))[:, 0].astype("float64")
    q = float(np.asarray(model(np.full((1, 30, 4), N_ENCODING, "float32"), training=False))[0, 0])
    kl = q * np.log(q / p[0]) + (1 - q) * np.log((1 - q) / (1 - p[0]))
    expected = np.mean([kl, -np.log(1 - p[1])])
    assert float(model.faithfulness_loss(x, y)) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="faithfulness_target"):
        build_attngen(30, 2, faithfulness_target="zero")


def test_masking_schedule_ramps_the_faithfulness_loss():
    from attngen_keras.callbacks import MaskingSchedule

    model = build_attngen(30, 2)
    for ramp, expected in ((True, [0.0, 0.5, 1.0, 1.0]), (False, [1.0, 1.0, 1.0, 1.0])):
        model.faithfulness_scale.assign(1.0)
        schedule = MaskingSchedule(target=0.2, warmup_epochs=2, ramp_faithfulness=ramp)
        schedule.set_model(model)
        seen = []
        for epoch in range(4):
            schedule.on_epoch_begin(epoch)
            seen.append(round(float(np.asarray(model.faithfulness_scale)), 3))
        assert seen == expected
        assert MaskingSchedule.from_config(schedule.get_config()).ramp_faithfulness is ramp
    x, y = _one_hot(6, 30), np.arange(6) % 2
    compile_classifier(model, 2, jit_compile=False)
    model.faithfulness_scale.assign(0.0)
    plain = float(model.compute_loss(x, y, model(x), training=True))
    model.faithfulness_scale.assign(1.0)
    assert float(model.compute_loss(x, y, model(x), training=True)) > plain
    model.load_own_variables({})  # a file saved before the variable existed


def test_cli_help_states_each_presets_faithfulness_weight():
    import argparse

    from attngen_keras.cli import _parser

    subcommands = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    option = next(
        a
        for a in subcommands.choices["train"]._actions
        if "--faithfulness-weight" in a.option_strings
    )
    weight = {name: PRESETS[name]["faithfulness_weight"] for name in PRESETS}
    expected = (
        f"faithful: {weight['faithful']:g}, motif: {weight['motif']:g}, paper: {weight['paper']:g})"
    )
    assert expected in option.help


def test_faithfulness_groups_rotate_in_batches_of_fewer_than_three_rows():
    """Batch size 1 or 2 (or a short last batch): every group is trained in turn, not only the
    first; batches of 3 rows or more keep row i in group i % 3."""
    model = build_attngen(30, 2, seed=1)
    x = _one_hot(4, 30, seed=2)
    for rows in (1, 2):
        calls = [np.asarray(model.faithfulness_inputs(x[:rows])[1]).tolist() for _ in range(3)]
        assert sorted(groups[0] for groups in calls) == [0, 1, 2]
        assert all(groups == [(groups[0] + i) % 3 for i in range(rows)] for groups in calls)
        assert np.asarray(model.faithfulness_inputs(x)[1]).tolist() == [0, 1, 2, 0]


def test_faithfulness_groups_turn_inside_the_compiled_train_step(monkeypatch):
    """The train step is traced once for an unknown batch size: its groups still turn."""
    import tensorflow as tf

    from attngen_keras.models.classifiers import AttnGen

    seen, original = [], AttnGen.faithfulness_inputs

    def spy(self, x):
        out = original(self, x)
        tf.py_function(lambda g: seen.append(g.numpy().tolist()) or 0, [out[1]], tf.int32)
        return out

    monkeypatch.setattr(AttnGen, "faithfulness_inputs", spy)
    model = build_attngen(30, 2, seed=1)
    compile_classifier(model, 2)
    history = model.fit(_one_hot(3, 30), np.array([0, 1, 0]), batch_size=1, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert sorted(g for (g,) in seen[:3]) == [0, 1, 2] and len(seen) == 6
    assert [g for (g,) in seen[3:]] == [g for (g,) in seen[:3]]  # a steady turn
