import keras
import numpy as np
import pytest

from attngen_keras.data.alphabet import PAD, one_hot
from attngen_keras.models import (
    attention_model,
    build_attngen,
    build_cnn,
    build_gb_cnn,
    build_model,
    compile_classifier,
    predict_batched,
)


def _batch(n=6, length=40, seed=0):
    return np.eye(4, dtype="float32")[np.random.default_rng(seed).integers(0, 4, (n, length))]


@pytest.mark.parametrize("builder", [build_attngen, build_cnn, build_gb_cnn])
@pytest.mark.parametrize("num_classes, width", [(2, 1), (4, 4)])
def test_output_heads(builder, num_classes, width):
    model = builder(80, num_classes)
    probs = np.asarray(model(_batch(length=80)))
    assert probs.shape == (6, width)
    assert np.all((probs >= 0) & (probs <= 1))
    if num_classes > 2:
        np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_gb_cnn_rejects_too_short_sequences():
    build_gb_cnn(57, 2)
    with pytest.raises(ValueError, match="at least 57"):
        build_gb_cnn(56, 2)


def test_gb_cnn_matches_reference_architecture():
    model = build_gb_cnn(200, 2)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert [c.filters for c in convs] == [32, 16, 4]
    assert all(c.kernel_size == (8,) for c in convs)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 3
    assert sum(isinstance(layer, keras.layers.MaxPooling1D) for layer in model.layers) == 3
    (dropout,) = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropout.rate == pytest.approx(0.3)
    assert any(isinstance(layer, keras.layers.GlobalAveragePooling1D) for layer in model.layers)


@pytest.mark.parametrize(
    "preset, extra",
    [("paper", ["saliency_mask"]), ("faithful", ["saliency_mask", "attention_context"])],
)
def test_cnn_is_attngen_without_saliency_mask(preset, extra):
    """The CNN is AttnGen minus its attention: the SaliencyMask (and the faithful preset's scoring context)."""
    a, c = build_attngen(50, 2, preset=preset), build_cnn(50, 2)
    names_a = [layer.name for layer in a.layers if layer.name not in extra]
    assert sorted(names_a) == sorted(
        layer.name for layer in c.layers
    )  # same layers (graph order differs)
    for name in names_a:
        assert [w.shape for w in a.get_layer(name).weights] == [
            w.shape for w in c.get_layer(name).weights
        ], name
    # plus the model's own scalar `faithfulness_scale`
    assert (
        a.count_params() - c.count_params()
        == sum(a.get_layer(name).count_params() for name in extra) + 1
    )


@pytest.mark.parametrize("builder", [build_attngen, build_cnn])
@pytest.mark.parametrize("seq_length, pad", [(33, 17), (34, 16), (34, 1)])
def test_padding_does_not_change_prediction(builder, seq_length, pad):
    """Appending padding leaves predictions unchanged (full default backbone)."""
    rng = np.random.default_rng(seq_length)
    tokens = rng.integers(0, 4, seq_length).astype(np.uint8)
    short = builder(seq_length, 2)
    long = builder(seq_length + pad, 2)
    long.set_weights(short.get_weights())
    x_short = one_hot(tokens)[None]
    x_long = one_hot(np.concatenate([tokens, np.full(pad, PAD, np.uint8)]))[None]
    np.testing.assert_allclose(
        np.asarray(short(x_short)), np.asarray(long(x_long)), rtol=1e-5, atol=1e-6
    )
    if builder is build_attngen:
        scores_long = np.asarray(attention_model(long)(x_long))[0]
        np.testing.assert_allclose(
            scores_long[:seq_length], np.asarray(attention_model(short)(x_short))[0], rtol=1e-5
        )
        assert np.all(scores_long[seq_length:] == 0)


@pytest.mark.parametrize("builder", [build_attngen, build_cnn])
def test_padding_does_not_change_training(builder):
    """In training mode too: BatchNorm's batch statistics leave padding out, so a
    batch padded to 5x its length trains the same network (same outputs, same
    BatchNorm statistics after a step)."""
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 4, (8, 30)).astype(np.uint8)
    short = builder(30, 2, dropout=0.0)
    long = builder(150, 2, dropout=0.0)
    long.set_weights(short.get_weights())
    x_short = one_hot(tokens)
    x_long = one_hot(np.concatenate([tokens, np.full((8, 120), PAD, np.uint8)], axis=1))
    np.testing.assert_allclose(
        np.asarray(short(x_short, training=True)),
        np.asarray(long(x_long, training=True)),
        rtol=1e-4,
        atol=1e-5,
    )
    for layer in ("stem_bn", "bn_0", "bn_1"):  # the moving statistics the step updated
        for a, b in zip(short.get_layer(layer).weights, long.get_layer(layer).weights):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


def test_attention_model_scores_and_errors():
    model = build_attngen(40, 2)
    x = _batch()
    x[:, 30:] = 0  # padding
    scores = np.asarray(attention_model(model)(x))
    assert scores.shape == (6, 40)
    np.testing.assert_allclose(scores.sum(1), 1.0, rtol=1e-5)
    assert np.all(scores[:, 30:] == 0)
    with pytest.raises(ValueError, match="no SaliencyMask"):
        attention_model(build_cnn(40, 2))


def test_keras_round_trip_identical_outputs(tmp_path):
    model = build_attngen(40, 3, mask_fraction=0.1)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    x = _batch()
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(loaded(x)))
    np.testing.assert_array_equal(
        np.asarray(attention_model(model)(x)), np.asarray(attention_model(loaded)(x))
    )


def test_build_model_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("transformer", 40, 2)
    with pytest.raises(TypeError, match="unknown backbone"):
        build_attngen(40, 2, filterz=3)


def _count_train_step_traces(model):
    traces = []
    original = model.train_step

    def counting(data):
        traces.append(1)  # runs once per trace of the compiled step, not per batch
        return original(data)

    model.train_step = counting
    x = np.random.default_rng(0).random((32, 20, 4)).astype("float32")
    model.fit(x, np.arange(32) % 2, epochs=2, batch_size=8, verbose=0)
    return len(traces)


def test_compile_classifier_builds_the_optimizer_so_the_train_step_is_traced_once():
    model = compile_classifier(build_cnn(20, 2), 2)
    assert model.optimizer.built
    assert _count_train_step_traces(model) == 1
    # the reason: Keras left alone creates the optimizer's variables inside the first trace,
    # and TensorFlow then traces the step again
    plain = build_cnn(20, 2)
    plain.compile(optimizer="adam", loss="binary_crossentropy")
    assert _count_train_step_traces(plain) == (2 if keras.backend.backend() == "tensorflow" else 1)


def test_predict_batched_equals_predict_and_traces_at_most_twice():
    model = build_attngen(30, 3, filters=8, dense_units=8)
    x = one_hot(np.random.default_rng(1).integers(0, 4, (23, 30)).astype("uint8"))
    outputs = {batch_size: predict_batched(model, x, batch_size) for batch_size in (5, 7, 23, 100)}
    if keras.backend.backend() == "tensorflow":
        # one trace for full batches, one for any other size: none per call
        assert model.predict_function.experimental_get_tracing_count() <= 2
    expected = model.predict(x, batch_size=5, verbose=0)
    for got in outputs.values():
        assert got.dtype == np.float32 and got.shape == (23, 3)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert predict_batched(model, x[:0]).shape == (0, 3)
    with pytest.raises(ValueError, match="batch_size"):
        predict_batched(model, x, 0)
    inputs = keras.Input((30, 4))
    pooled = keras.layers.GlobalAveragePooling1D()(inputs)
    two_heads = keras.Model(inputs, [keras.layers.Dense(1)(pooled), keras.layers.Dense(2)(pooled)])
    with pytest.raises(ValueError, match="single-output"):
        predict_batched(two_heads, x)


def test_predict_batched_leaves_multi_replica_models_to_predict():
    class Replicated:  # what predict_batched reads of a model under a 2-replica strategy
        class distribute_strategy:
            num_replicas_in_sync = 2

        def predict(self, x, batch_size, verbose):
            return ("predict", len(x), batch_size)

        def predict_on_batch(self, x):
            raise AssertionError("predict_on_batch would not split the batch across replicas")

    assert predict_batched(Replicated(), np.zeros((5, 3, 4)), 2) == ("predict", 5, 2)


def test_compile_classifier_passes_steps_per_execution():
    from attngen_keras.models import build_cnn, compile_classifier

    model = compile_classifier(build_cnn(20, 2), 2, steps_per_execution=8)
    assert model.steps_per_execution == 8
    assert compile_classifier(build_cnn(20, 2), 2).steps_per_execution == 1


def test_bad_lengths_classes_and_compile_mismatches_are_named():
    for length in (None, 0, 40.0, True):
        with pytest.raises(ValueError, match="length must be a positive integer"):
            build_attngen(length, 2)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        build_attngen(40, 1)
    assert build_attngen(np.int64(40), 2).length == 40
    with pytest.raises(ValueError, match=r"num_classes=3 needs 3 output unit\(s\), but model "
                       r"'attngen' has 1 \(a sigmoid: num_classes=2\)"):  # fmt: skip
        compile_classifier(build_attngen(40, 2), 3)
    with pytest.raises(ValueError, match="num_classes=2 needs 1 output"):
        compile_classifier(build_cnn(40, 3), 2)


def test_a_nested_attngen_is_named_where_its_attention_is():
    """Keras clones and nests a functional subclass as a plain model: an AttnGen inside another
    model keeps its attention in its own graph, and the error says which model to explain."""
    inner = build_attngen(40, 2)
    inputs = keras.Input((40, 4))
    outer = keras.Model(inputs, inner(inputs), name="outer")
    with pytest.raises(ValueError, match=r"inside the nested model 'attngen'; explain that model"):
        attention_model(outer)
    np.testing.assert_allclose(
        np.asarray(attention_model(outer.get_layer("attngen"))(_batch())),
        np.asarray(attention_model(inner)(_batch())),
    )
    # training the outer model leaves the nested faithfulness loss out: said, not silent
    from attngen_keras.callbacks import MaskingSchedule

    compile_classifier(outer, 2)
    with pytest.warns(UserWarning, match="nests AttnGen 'attngen', whose faithfulness loss is not"):
        outer.fit(_batch(), np.array([0, 1] * 3), epochs=1, verbose=0,
                  callbacks=[MaskingSchedule(0.1, 0)])  # fmt: skip


def test_an_attngen_copy_from_its_config_keeps_its_class_and_faithfulness_loss():
    """The documented way to copy an AttnGen (keras.models.clone_model returns a plain
    Functional model, which has no faithfulness loss)."""
    model = build_attngen(40, 2, seed=3)
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    assert type(copy) is type(model) and copy.faithfulness_weight == model.faithfulness_weight > 0
    np.testing.assert_allclose(np.asarray(copy(_batch())), np.asarray(model(_batch())), rtol=1e-6)
