"""Wrongly shaped inputs to the explanation functions: one-line errors naming the argument."""

import numpy as np
import pytest

from attngen_keras.explain.faithfulness import faithfulness_curves, uniform_attention_accuracy
from attngen_keras.explain.importance import importance_scores
from attngen_keras.explain.ism import ism
from attngen_keras.explain.metrics import concentration_summary, localization_metrics
from attngen_keras.explain.perturbation import perturbation_curves
from attngen_keras.models import build_attngen, build_cnn


@pytest.fixture(scope="module")
def model():
    return build_cnn(40, 3)


def _x(n=2, length=40):
    return np.eye(4, dtype="float32")[np.random.default_rng(0).integers(0, 4, (n, length))]


@pytest.mark.parametrize(
    "x, targets, message",
    [
        (np.zeros((2, 40), "uint8"), None, r"x: shape \(2, 40\) looks like tokens; one-hot encode"),
        (np.zeros((40, 4)), None, r"x: shape \(40, 4\) is one sequence; pass a batch of one"),
        (np.zeros((2, 40, 5)), None, r"x: shape \(2, 40, 5\) is not one-hot sequences"),
        (np.zeros((2, 50, 4)), None, "x: sequences of length 50, but the model takes 40"),
        (_x(), [7, 7], r"targets: class 7 is not a class of the model \(0-2\)"),
        (_x(), [-1, 0], "targets: class -1 is not"),
        (_x(), [1], r"targets: shape \(1,\); give one class index per sequence \(2,\)"),
        (_x(), [0.5, 1], "targets: class indices must be integers"),
    ],
)
@pytest.mark.parametrize("method", ["saliency", "input_x_gradient", "ism"])
def test_importance_scores_name_the_bad_argument(model, method, x, targets, message):
    with pytest.raises(ValueError, match=message):
        importance_scores(model, x, method, targets=targets)


def test_whole_number_targets_of_any_dtype_are_accepted(model):
    a = importance_scores(model, _x(), "input_x_gradient", targets=np.array([1.0, 2.0]))
    b = importance_scores(model, _x(), "input_x_gradient", targets=[1, 2])
    np.testing.assert_array_equal(a, b)
    c = importance_scores(model, _x(), "input_x_gradient", targets=np.array([True, False]))
    np.testing.assert_array_equal(
        c, importance_scores(model, _x(), "input_x_gradient", targets=[1, 0])
    )
    assert ism(model, _x(), targets=np.array([2, 0], "uint8"))[0].shape == (2, 40)


def test_curves_check_tokens_labels_and_scores(model):
    tokens = np.random.default_rng(1).integers(0, 4, (4, 40)).astype("uint8")
    labels, scores = np.array([0, 1, 2, 0]), np.random.default_rng(2).random((4, 40))
    perturbation_curves(model, tokens, labels, scores, fractions=(0, 0.5))  # well formed
    for curves in (perturbation_curves, faithfulness_curves):
        with pytest.raises(
            ValueError, match="tokens: sequences of length 50, but the model takes 40"
        ):
            curves(model, np.zeros((4, 50), "uint8"), labels, np.zeros((4, 50)))
        with pytest.raises(ValueError, match=r"tokens: shape \(4, 40, 4\) looks one-hot"):
            curves(model, np.zeros((4, 40, 4), "uint8"), labels, scores)
        with pytest.raises(ValueError, match="labels: class 3 is not a class of the model"):
            curves(model, tokens, np.array([0, 1, 2, 3]), scores)
        with pytest.raises(ValueError, match=r"scores: shape \(4, 30\), not \(4, 40\)"):
            curves(model, tokens, labels, scores[:, :30])
    with pytest.raises(ValueError, match="tokens: values outside the alphabet's tokens 0-15"):
        perturbation_curves(model, np.full((4, 40), 200, "uint8"), labels, scores)
    with pytest.raises(ValueError, match="x: sequences of length 30"):
        uniform_attention_accuracy(build_attngen(40, 2), _x(2, 30), [0, 1])


def test_metrics_refuse_one_sequence_and_lengths_for_a_mask():
    scores = np.random.default_rng(3).random((2, 10))
    with pytest.raises(ValueError, match=r"scores: shape \(10,\) is not \(n, length\); for one "
                       r"sequence pass scores\[None\]"):  # fmt: skip
        concentration_summary(scores[0])
    with pytest.raises(ValueError, match=r"valid: shape \(2,\), not a mask of the scores' shape"):
        concentration_summary(scores, np.array([10, 8]))
    assert concentration_summary(scores[:1])["n"] == 1
    with pytest.raises(ValueError, match=r"planted: shape \(2, 9\), not \(2, 10\)"):
        localization_metrics(scores, np.zeros((2, 9), bool))
    with pytest.raises(ValueError, match=r"valid: shape \(10,\) .*pass valid\[None\]"):
        localization_metrics(scores, scores > 0.5, np.ones(10, bool))


def test_repeated_attention_calls_reuse_one_attention_model():
    """A loop of importance_scores calls traces the attention's prediction once (no TensorFlow
    retracing warnings), and the cached attention model goes with its model."""
    import gc
    import weakref

    from attngen_keras.explain import importance

    model = build_attngen(40, 2)
    first = importance_scores(model, _x(), "attention")
    cached = importance._ATTENTION_MODELS[model]
    for _ in range(3):
        np.testing.assert_array_equal(importance_scores(model, _x(), "attention"), first)
        assert importance._ATTENTION_MODELS[model] is cached
    alive = weakref.ref(model)
    del model, cached
    gc.collect()
    assert alive() is None  # the cache does not keep the model alive
