"""Faithfulness metrics (comprehensiveness, sufficiency, AOPC), the dinucleotide
shuffle, ISM and the uniform-attention control, on hand-checkable toy cases."""

import json
from collections import Counter

import keras
import numpy as np
import pytest

from attngen_keras.data import encode, one_hot
from attngen_keras.data.alphabet import PAD
from attngen_keras.explain import (
    AOPC_FRACTIONS,
    aopc,
    aopc_summary,
    dinucleotide_shuffle,
    faithfulness_curves,
    importance_scores,
    ism,
    shuffle_tokens,
    uniform_attention_accuracy,
)
from attngen_keras.explain.perturbation import (
    N_TOKEN,
    perturbation_curves,
    removal_orders,
    remove_positions,
    shuffled_background,
)
from attngen_keras.models import attention_model, build_attngen, build_cnn


def _dinucleotides(row):
    row = row[row != PAD]
    return Counter(zip(row[:-1].tolist(), row[1:].tolist()))


def test_dinucleotide_shuffle_keeps_dinucleotide_counts_and_ends_exactly():
    rng = np.random.default_rng(0)
    changed = 0
    for trial in range(300):
        length = int(rng.integers(3, 80))
        row = rng.integers(0, 5 if trial % 3 else 4, length).astype(
            np.uint8
        )  # some with N (token 4)
        if trial % 4 == 0:
            row = np.concatenate([row, np.full(7, PAD, np.uint8)])
        shuffled = dinucleotide_shuffle(row, rng)
        assert shuffled.dtype == np.uint8 and shuffled.shape == row.shape
        assert _dinucleotides(shuffled) == _dinucleotides(row)
        valid = row != PAD
        np.testing.assert_array_equal(shuffled[~valid], row[~valid])  # padding stays put
        assert shuffled[valid][0] == row[valid][0] and shuffled[valid][-1] == row[valid][-1]
        changed += not np.array_equal(shuffled, row)
    assert changed > 250  # it does shuffle
    tokens = encode("ACGTTGCAAGGCTTACGATCGATTACA")
    first = dinucleotide_shuffle(tokens, np.random.default_rng(5))
    np.testing.assert_array_equal(first, dinucleotide_shuffle(tokens, np.random.default_rng(5)))
    # tiny sequences come back unchanged; every Eulerian path is reachable
    np.testing.assert_array_equal(dinucleotide_shuffle(encode("AC"), rng), encode("AC"))
    outcomes = Counter(tuple(dinucleotide_shuffle(encode("ACAGACGA"), rng)) for _ in range(3000))
    assert len(outcomes) == 6 and min(outcomes.values()) > 350  # 6 paths, about 500 each
    assert shuffle_tokens(np.stack([tokens, tokens]), np.random.default_rng(0)).shape == (
        2,
        len(tokens),
    )


def test_keep_and_shuffle_replacement():
    tokens = np.array(
        [[0, 1, 2, 3, 0, 1, 2, 3, 0, 1], [3, 2, 1, 0, 3, PAD, PAD, PAD, PAD, PAD]], np.uint8
    )
    scores = np.array([np.arange(10) / 10.0, [0.5, 0.1, 0.9, 0.3, 0.7, 9, 9, 9, 9, 9]])
    orders = removal_orders(scores, tokens != PAD)
    kept = remove_positions(tokens, orders["top"], 0.4, keep=True)
    # the complement of what removal replaces: row 0 keeps 6..9, row 1 keeps 2 and 4
    assert np.flatnonzero(kept[0] != N_TOKEN).tolist() == [6, 7, 8, 9]
    assert np.flatnonzero(kept[1] != N_TOKEN).tolist() == [2, 4, 5, 6, 7, 8, 9]
    assert np.all(kept[1, 5:] == PAD)
    nothing = remove_positions(tokens, orders["top"], 0.0, keep=True)
    assert np.all(nothing[tokens != PAD] == N_TOKEN) and np.all(nothing[tokens == PAD] == PAD)
    np.testing.assert_array_equal(remove_positions(tokens, orders["top"], 1.0, keep=True), tokens)
    background = shuffled_background(tokens, seed=3)
    for keep in (False, True):
        out = remove_positions(
            tokens, orders["top"], 0.4, "shuffle", keep=keep, background=background
        )
        replaced = remove_positions(tokens, orders["top"], 0.4, keep=keep) == N_TOKEN
        np.testing.assert_array_equal(out[replaced], background[replaced])
        np.testing.assert_array_equal(out[~replaced], tokens[~replaced])
    # without a background the shuffle is drawn from rng
    a = remove_positions(tokens, orders["top"], 0.5, "shuffle", np.random.default_rng(1))
    np.testing.assert_array_equal(
        a, remove_positions(tokens, orders["top"], 0.5, "shuffle", np.random.default_rng(1))
    )


class ToyModel:
    """Sigmoid output p(class 1) = 0.1 + 0.4 * [A at position 0] + 0.4 * [A at position 1] (N counts 0.25)."""

    output_shape = (None, 1)

    def predict_on_batch(self, x):
        x = np.asarray(x, dtype=np.float64)
        return (0.1 + 0.4 * x[:, 0, 0] + 0.4 * x[:, 1, 0])[:, None]


def _toy_data():
    tokens = np.array([encode("AAGTCAGTCA"), np.r_[encode("CCGTA"), [PAD] * 5]], np.uint8)
    scores = np.tile(np.arange(10, 0, -1, dtype=float), (2, 1))  # position 0 first, then 1, ...
    return tokens, np.array([1, 0]), scores


def test_comprehensiveness_sufficiency_and_aopc_by_hand():
    tokens, labels, scores = _toy_data()
    curves = faithfulness_curves(
        ToyModel(), tokens, labels, scores, AOPC_FRACTIONS, rankings=("top",)
    )
    # sequence 1 (AA..., 10 nt): p = 0.9, class 1. Removing position 0 -> 0.1 + 0.1 + 0.4 = 0.6,
    # positions 0 and 1 -> 0.3. Sequence 2 (CC..., 5 nt): p = 0.1, class 0 (target 1 - p = 0.9);
    # with 1 or 2 positions replaced by N the target probability is 0.8 or 0.7.
    # removed/kept counts at k = 1, 5, 10, 20, 50 %: sequence 1: 0 0 1 2 5; sequence 2: 0 0 0 1 2
    assert curves["baseline"] == pytest.approx({"accuracy": 1.0, "probability": 0.9})
    comprehensiveness = curves["probability_drop"]["comprehensiveness"]["top"]
    sufficiency = curves["probability_drop"]["sufficiency"]["top"]
    # comprehensiveness drops: seq 1 [0, 0, 0.3, 0.6, 0.6], seq 2 [0, 0, 0, 0.1, 0.2]
    assert comprehensiveness == pytest.approx([0, 0, 0.15, 0.35, 0.4], abs=1e-9)
    # sufficiency drops (0 kept = everything N): seq 1 [0.6, 0.6, 0.3, 0, 0], seq 2 [0.2, 0.2, 0.2, 0.1, 0]
    assert sufficiency == pytest.approx([0.4, 0.4, 0.25, 0.05, 0], abs=1e-9)
    assert curves["accuracy"]["comprehensiveness"]["top"] == [1, 1, 1, 0.5, 0.5]
    assert curves["accuracy"]["sufficiency"]["top"] == [0.5, 0.5, 1, 1, 1]
    assert aopc(comprehensiveness) == pytest.approx(0.18) and aopc(sufficiency) == pytest.approx(
        0.22
    )
    table, _ = aopc_summary(ToyModel(), tokens, labels, scores)
    assert table["comprehensiveness"]["top"] == pytest.approx(0.18)
    assert table["sufficiency"]["top"] == pytest.approx(0.22)
    # the random ranking: the same formula on the seeded random order
    order = removal_orders(scores, tokens != PAD, seed=0)["random"]
    p_ref = np.array([0.9, 0.9])
    expected = []
    for k in AOPC_FRACTIONS:
        p = ToyModel().predict_on_batch(one_hot(remove_positions(tokens, order, k)))[:, 0]
        expected.append(np.mean(p_ref - np.array([p[0], 1 - p[1]])))
    assert table["comprehensiveness"]["random"] == pytest.approx(np.mean(expected))
    # comprehensiveness at k is the deletion curve's probability drop (each replacement has
    # one seeded base per position, shared by both functions)
    for replacement in ("N", "shuffle", "random"):
        deletion = perturbation_curves(
            ToyModel(), tokens, labels, scores, [0, 0.2, 0.5], replacement
        )
        again = faithfulness_curves(
            ToyModel(), tokens, labels, scores, [0, 0.2, 0.5], replacement=replacement
        )
        for ranking in ("top", "random"):
            assert deletion["probability_drop"][ranking] == pytest.approx(
                again["probability_drop"]["comprehensiveness"][ranking]
            )
            assert deletion["accuracy"][ranking] == again["accuracy"]["comprehensiveness"][ranking]
    with pytest.raises(ValueError, match="replacement"):
        faithfulness_curves(ToyModel(), tokens, labels, scores, replacement="X")
    with pytest.raises(ValueError, match="modes"):
        faithfulness_curves(ToyModel(), tokens, labels, scores, modes=("insertion",))


def _tiny(builder, classes, length=12):
    keras.utils.set_random_seed(3)
    return builder(length, classes, filters=6, kernel_size=3, conv_blocks=1, dense_units=8)


def _brute_force_ism(model, x):
    probs = model.predict(x, verbose=0)
    sigmoid = probs.shape[1] == 1
    target = (probs[:, 0] >= 0.5).astype(int) if sigmoid else probs.argmax(1)

    def p_target(out, i):
        return (out[0, 0] if target[i] == 1 else 1 - out[0, 0]) if sigmoid else out[0, target[i]]

    per_base = np.zeros(x.shape, np.float64)
    scores = np.zeros(x.shape[:2], np.float64)
    for i in range(len(x)):
        p_ref = p_target(probs[i : i + 1], i)
        for pos in range(x.shape[1]):
            if x[i, pos].sum() < 0.5:
                continue  # padding: not mutated
            drops = []
            for base in range(4):
                if x[i, pos, base] == 1.0:
                    continue  # the observed base
                mutant = x[i : i + 1].copy()
                mutant[0, pos] = np.eye(4)[base]
                p = p_target(np.asarray(model(mutant, training=False)), i)
                per_base[i, pos, base] = p - p_ref
                drops.append(p_ref - p)
            scores[i, pos] = max(drops)
    return scores, per_base


@pytest.mark.parametrize("builder, classes", [(build_attngen, 2), (build_cnn, 3)])
def test_ism_matches_a_brute_force_loop(builder, classes):
    model = _tiny(builder, classes)
    tokens = np.array(
        [encode("ACGTTGCAACGT"), encode("GGATCNATTACA"), np.r_[encode("TTGACTCA"), [PAD] * 4]],
        np.uint8,
    )
    x = one_hot(tokens)
    scores, per_base = ism(model, x, batch_size=7)  # batches that split sequences
    expected_scores, expected_map = _brute_force_ism(model, x)
    np.testing.assert_allclose(per_base, expected_map, atol=2e-6)
    np.testing.assert_allclose(scores, expected_scores, atol=2e-6)
    assert (
        per_base.shape == (3, 12, 4) and per_base.dtype == np.float32 and scores.dtype == np.float32
    )
    assert np.all(scores[2, 8:] == 0) and np.all(per_base[2, 8:] == 0)
    assert np.all(per_base[x == 1.0] == 0)  # 0 at the observed base
    assert np.count_nonzero(per_base[1, 5]) in (
        3,
        4,
    )  # N: all 4 bases mutated (one may tie exactly)
    np.testing.assert_allclose(importance_scores(model, x, "ism"), scores, atol=1e-6)


def test_uniform_attention_control_restores_weights_and_is_uniform(monkeypatch):
    keras.utils.set_random_seed(1)
    model = build_attngen(20, 2, filters=8, conv_blocks=1, dense_units=8)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 4, (30, 20)).astype(np.uint8)
    tokens[:10, 14:] = PAD
    x, labels = one_hot(tokens), rng.integers(0, 2, 30)
    before = [np.array(w) for w in model.get_weights()]
    attention = attention_model(model)
    learned = attention.predict(x, verbose=0)
    seen = {}
    predict = model.predict_on_batch

    def spy(inputs):
        seen["attention"] = attention.predict(inputs, verbose=0)
        seen["probs"] = predict(inputs)
        return seen["probs"]

    monkeypatch.setattr(model, "predict_on_batch", spy)
    valid = tokens != PAD
    n_valid = valid.sum(axis=1, keepdims=True)
    accuracy = uniform_attention_accuracy(model, x, labels)
    np.testing.assert_allclose(seen["attention"], np.where(valid, 1.0 / n_valid, 0.0), atol=1e-6)
    assert accuracy == pytest.approx(np.mean((seen["probs"][:, 0] >= 0.5) == labels))
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    np.testing.assert_allclose(attention.predict(x, verbose=0), learned, atol=1e-7)
    assert not np.allclose(
        learned[valid], np.broadcast_to(1.0 / n_valid, valid.shape)[valid], atol=1e-4
    )
    # a layer without a `uniform_attention` variable: its score kernel is zeroed instead
    layer = model.get_layer("saliency_mask")
    flag = layer.__dict__.pop("uniform_attention", None)  # hidden from getattr, restored below
    try:
        assert getattr(layer, "uniform_attention", None) is None
        fallback = uniform_attention_accuracy(model, x, labels)
    finally:
        if flag is not None:
            object.__setattr__(layer, "uniform_attention", flag)  # bypasses Keras' state tracking
    np.testing.assert_allclose(seen["attention"], np.where(valid, 1.0 / n_valid, 0.0), atol=1e-6)
    assert fallback == accuracy
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)

    def failing(inputs):
        raise RuntimeError("boom")

    monkeypatch.setattr(model, "predict_on_batch", failing)
    with pytest.raises(RuntimeError, match="boom"):
        uniform_attention_accuracy(model, x, labels)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert uniform_attention_accuracy(build_cnn(20, 2), x, labels) is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny AttnGen run directory: 300 sequences of 40 nt, 1 epoch."""
    from attngen_keras.synthetic import planted_motif_data
    from attngen_keras.training import TrainConfig, train

    root = tmp_path_factory.mktemp("faithfulness")
    data = root / "motifs.csv"
    planted_motif_data(n=300, length=40, motifs=("TGACTCA",), seed=1).to_frame().to_csv(
        data, index=False
    )
    config = TrainConfig(data=[str(data)], out=str(root / "run"), epochs=1, batch_size=32, patience=0,
                         cache_dir="none", jit_compile=False)  # fmt: skip
    train(config, verbose=0)
    return root / "run", data


def test_cli_perturb_writes_sufficiency_aopc_and_uniform_attention(tiny_run, tmp_path, capsys):
    from attngen_keras.cli import main

    run, data = tiny_run
    out = tmp_path / "perturb"
    code = main(["perturb", str(run), "--data", str(data), "--cache-dir", "none", "--n", "40",
                 "--fractions", "0", "0.2", "0.5", "--replacement", "shuffle", "--out", str(out)])  # fmt: skip
    assert code == 0
    saved = json.loads((out / "perturb.json").read_text())
    assert saved["replacement"] == "shuffle" and saved["fractions"] == [0.0, 0.2, 0.5]
    assert set(saved["accuracy"]) == set(saved["deletion_auc"]) == {"top", "random", "bottom"}
    assert set(saved["sufficiency"]) == {"top", "random"}
    for curve in saved["sufficiency"].values():
        assert len(curve) == 3 and all(0 <= a <= 1 for a in curve)
    # keeping everything (f = 1 is not asked) vs keeping nothing: f = 0 replaces every nucleotide
    drops = saved["probability_drop"]
    assert [len(v) for v in drops["comprehensiveness"].values()] == [3, 3, 3]
    assert [len(v) for v in drops["sufficiency"].values()] == [3, 3]
    assert drops["comprehensiveness"]["top"][0] == 0.0  # nothing removed at f = 0
    assert saved["aopc_fractions"] == list(AOPC_FRACTIONS)
    for mode in ("comprehensiveness", "sufficiency"):
        assert set(saved["aopc"][mode]) == {"top", "random"}
    uniform = saved["uniform_attention"]
    assert (
        0 <= uniform["accuracy"] <= 1
        and uniform["baseline_accuracy"] == saved["accuracy"]["top"][0]
    )
    assert (out / "perturbation_curve.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert (
        "sufficiency" in printed
        and "AOPC comprehensiveness" in printed
        and "uniform attention" in printed
    )


def test_cli_explain_ism_saves_the_per_base_map(tiny_run, tmp_path, capsys):
    from attngen_keras.cli import main

    run, data = tiny_run
    out = tmp_path / "explain"
    code = main(["explain", str(run), "--data", str(data), "--cache-dir", "none", "--method", "ism",
                 "--n", "6", "--out", str(out)])  # fmt: skip
    assert code == 0
    assert "ISM of 6 sequences" in capsys.readouterr().err  # the progress of the slow method
    with np.load(out / "importance.npz") as arrays:
        assert arrays["ism"].shape == (6, 40, 4) and arrays["scores"].shape == (6, 40)
        per_base, scores, sequences = arrays["ism"], arrays["scores"], arrays["sequences"]
    observed = one_hot(np.stack([encode(s) for s in sequences])) == 1.0
    assert np.all(per_base[observed] == 0)
    # the position score is the largest drop over the 3 substitutions
    np.testing.assert_allclose(
        scores, np.where(observed, -np.inf, -per_base).max(axis=-1), atol=1e-7
    )
    assert json.loads((out / "summary.json").read_text())["method"] == "ism"


def test_random_bases_are_shared_by_every_ranking_fraction_and_mode():
    """Common random numbers: a position is replaced by the same random base whichever ranking,
    fraction or mode replaces it, so top and random differ only in which positions they
    replace; at sufficiency 0 (every position replaced) they are the same input."""
    from attngen_keras.explain.perturbation import random_background

    rng = np.random.default_rng(5)
    tokens = rng.integers(0, 4, (6, 30)).astype(np.uint8)
    tokens[5, 25:] = PAD
    scores, labels = rng.random((6, 30)), np.arange(6) % 2
    model = build_cnn(30, 2)
    curves = faithfulness_curves(model, tokens, labels, scores, [0, 0.2], replacement="random")
    for name in ("accuracy", "probability_drop"):
        sufficiency = curves[name]["sufficiency"]
        assert sufficiency["top"][0] == sufficiency["random"][0]
    bases = random_background(tokens, seed=0)
    orders = removal_orders(scores, tokens != PAD, seed=0)
    for ranking in ("top", "random"):
        for fraction, keep in ((0.2, False), (0.5, False), (0.3, True)):
            out = remove_positions(tokens, orders[ranking], fraction, "random", keep=keep,
                                   background=bases)  # fmt: skip
            changed = out != tokens
            np.testing.assert_array_equal(out[changed], bases[changed])
            assert (out[tokens == PAD] == PAD).all()
