"""Perturbation analysis: removal orders, replacement, curves and their plots."""

import json

import keras
import numpy as np
import pytest

from attngen_keras.data import encode, one_hot
from attngen_keras.data.alphabet import PAD
from attngen_keras.data.containers import EncodedSplit
from attngen_keras.evaluation import classification_metrics
from attngen_keras.explain.perturbation import (
    N_TOKEN,
    deletion_auc,
    perturb_split,
    perturbation_curves,
    removal_orders,
    remove_positions,
    write_perturbation,
)
from attngen_keras.models import build_attngen, compile_classifier
from attngen_keras.synthetic import planted_motif_data
from attngen_keras.training import predict_probabilities


def _tokens_with_padding():
    tokens = np.array(
        [[0, 1, 2, 3, 0, 1, 2, 3, 0, 1], [3, 2, 1, 0, 3, PAD, PAD, PAD, PAD, PAD]], np.uint8
    )
    scores = np.array([np.arange(10) / 10.0, [0.5, 0.1, 0.9, 0.3, 0.7, 9, 9, 9, 9, 9]])
    return tokens, scores


def test_top_and_bottom_remove_the_expected_positions_and_never_padding():
    tokens, scores = _tokens_with_padding()
    orders = removal_orders(scores, tokens != PAD)
    top = remove_positions(tokens, orders["top"], 0.4)
    # row 0 (10 valid): the 4 highest scores are positions 6..9; row 1 (5 valid): floor(2.0) = 2 -> positions 2, 4
    assert np.flatnonzero(top[0] == N_TOKEN).tolist() == [6, 7, 8, 9]
    assert np.flatnonzero(top[1] == N_TOKEN).tolist() == [2, 4]
    bottom = remove_positions(tokens, orders["bottom"], 0.4)
    assert np.flatnonzero(bottom[0] == N_TOKEN).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(bottom[1] == N_TOKEN).tolist() == [1, 3]
    # padding is never "removed", even at f = 1, and f = 0 changes nothing
    everything = remove_positions(tokens, orders["random"], 1.0)
    assert np.all(everything[1, 5:] == PAD) and np.all(everything[1, :5] == N_TOKEN)
    np.testing.assert_array_equal(remove_positions(tokens, orders["top"], 0.0), tokens)


def test_random_removal_is_seeded_nested_and_random_bases_are_bases():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 4, (50, 40)).astype(np.uint8)
    scores = rng.random((50, 40))
    first = removal_orders(scores, tokens != PAD, seed=3)["random"]
    np.testing.assert_array_equal(first, removal_orders(scores, tokens != PAD, seed=3)["random"])
    assert not np.array_equal(first, removal_orders(scores, tokens != PAD, seed=4)["random"])
    small = remove_positions(tokens, first, 0.1) == N_TOKEN
    large = remove_positions(tokens, first, 0.3) == N_TOKEN
    assert np.all(large[small]) and small.sum() == 50 * 4 and large.sum() == 50 * 12
    swapped = remove_positions(tokens, first, 0.5, "random", np.random.default_rng(1))
    assert swapped.max() < 4 and np.mean(swapped != tokens) > 0.3  # ~3/4 of 50% changed
    np.testing.assert_array_equal(
        swapped, remove_positions(tokens, first, 0.5, "random", np.random.default_rng(1))
    )
    with pytest.raises(ValueError, match="replacement"):
        remove_positions(tokens, first, 0.5, "X")


def test_deletion_auc_is_the_mean_height_of_the_curve():
    assert deletion_auc([0, 0.5, 1], [1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert deletion_auc([0, 0.1, 0.5], [1.0, 0.5, 0.5]) == pytest.approx((0.075 + 0.2) / 0.5)
    assert deletion_auc([0.0], [0.7]) == pytest.approx(0.7)


@pytest.fixture(scope="module")
def motif_model():
    """A small AttnGen (the paper's preset) that has learned one planted motif (trained once per module)."""
    data = planted_motif_data(n=1400, length=60, motifs=("TGACTCA",), seed=5)
    tokens = np.stack([encode(s) for s in data.sequences])
    keras.utils.set_random_seed(0)
    model = build_attngen(60, 2, preset="paper")
    compile_classifier(model, 2)
    model.fit(one_hot(tokens[:1000]), data.labels[:1000], epochs=6, batch_size=64, verbose=0)
    held_out = EncodedSplit(
        tokens[1000:], data.labels[1000:], np.array([f"s{i}" for i in range(400)])
    )
    return model, held_out


def test_f0_reproduces_accuracy_and_top_removal_hurts_most(motif_model, tmp_path):
    model, split = motif_model
    result = perturb_split(model, split, "attention", n=300, fractions=[0, 0.1, 0.3], seed=0)
    subset = EncodedSplit(
        *(
            a[np.sort(np.random.default_rng(0).choice(400, 300, replace=False))]
            for a in (split.tokens, split.labels, split.ids)
        )
    )
    expected = classification_metrics(subset.labels, predict_probabilities(model, subset))[
        "accuracy"
    ]
    assert expected >= 0.9
    for ranking in ("top", "random", "bottom"):
        assert result["accuracy"][ranking][0] == expected
    # removing the most important 10% (6 of 60 nucleotides: about the 7-bp motif)
    # drops to chance; random or least-important removal barely hurts.
    # measured (attention and saliency alike): top 0.51, random 0.91, bottom 0.99
    top, random, bottom = (result["accuracy"][r][1] for r in ("top", "random", "bottom"))
    assert top < 0.65 and top < random - 0.25 and top < bottom - 0.3, result["accuracy"]
    assert result["deletion_auc"]["top"] < result["deletion_auc"]["bottom"]
    # sufficiency: keeping only the top 30% keeps the accuracy, only a random 30% does not;
    # f = 0 keeps nothing (every nucleotide N): one class for all.
    # measured: top 0.49 / 0.63 / 0.99, random 0.49 / 0.49 / 0.49 at f = 0 / 0.1 / 0.3
    sufficiency = result["sufficiency"]
    assert set(sufficiency) == {"top", "random"} and all(len(v) == 3 for v in sufficiency.values())
    assert sufficiency["top"][0] == sufficiency["random"][0]
    assert max(sufficiency["top"][0], 1 - sufficiency["top"][0]) == pytest.approx(result["chance"])
    assert sufficiency["top"][2] > 0.9 and sufficiency["random"][2] < 0.65, sufficiency
    # AOPC (measured): comprehensiveness top 0.37 vs random 0.17; sufficiency top 0.28 vs random 0.50
    aopc = result["aopc"]
    assert aopc["comprehensiveness"]["top"] > aopc["comprehensiveness"]["random"] + 0.1, aopc
    assert aopc["sufficiency"]["top"] < aopc["sufficiency"]["random"] - 0.1, aopc
    drops = result["probability_drop"]
    assert drops["comprehensiveness"]["top"][0] == 0 and len(drops["sufficiency"]["random"]) == 3
    # this model needs its attention: uniform weights drop it to chance (measured 0.49 vs 0.99)
    uniform = result["uniform_attention"]
    assert uniform["baseline_accuracy"] == expected and uniform["accuracy"] < 0.7, uniform
    # the same seed gives the same curves
    assert (
        perturb_split(model, split, "attention", n=300, fractions=[0, 0.1, 0.3], seed=0) == result
    )
    write_perturbation(result, tmp_path)
    saved = json.loads((tmp_path / "perturb.json").read_text())
    assert set(saved) >= {"method", "n", "fractions", "accuracy", "deletion_auc", "sufficiency", "aopc",
                          "aopc_fractions", "probability_drop", "uniform_attention", "replacement"}  # fmt: skip
    assert (
        saved["n"] == 300 and saved["method"] == "attention" and saved["fractions"] == [0, 0.1, 0.3]
    )
    assert set(saved["accuracy"]) == set(saved["deletion_auc"]) == {"top", "random", "bottom"}
    assert (tmp_path / "perturbation_curve.png").stat().st_size > 10_000


def test_invalid_fractions_are_rejected(motif_model):
    model, split = motif_model
    for bad in ([0.5, 0.1], [0, 1.5], []):
        with pytest.raises(ValueError, match="fractions"):
            perturbation_curves(model, split.tokens[:5], split.labels[:5], np.zeros((5, 60)), bad)


def test_ties_are_broken_at_random_not_by_position():
    scores = np.zeros((200, 20))  # a flat map: every position ties
    orders = removal_orders(scores, np.ones((200, 20), bool), seed=0)
    first_removed = orders["bottom"][:, 0]
    assert len(set(first_removed.tolist())) > 10  # not always position 0
    np.testing.assert_array_equal(
        orders["top"], removal_orders(scores, np.ones((200, 20), bool), seed=0)["top"]
    )
