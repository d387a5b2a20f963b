import numpy as np
import pytest

from attngen_keras.data import make_tf_dataset, reverse_complement_tokens
from attngen_keras.data.alphabet import PAD, decode, encode
from attngen_keras.data.containers import EncodedSplit


def _split(sequences, length):
    tokens = np.full((len(sequences), length), PAD, np.uint8)
    for i, s in enumerate(sequences):
        tokens[i, : len(s)] = encode(s)
    return EncodedSplit(
        tokens, np.arange(len(sequences)) % 2, np.array([str(i) for i in range(len(sequences))])
    )


def _decode_batch(x):
    x = np.asarray(x)
    out = []
    for row in x:
        real = row.sum(-1) > 0
        out.append("".join("ACGT"[i] for i in row[real].argmax(-1)))
    return out


def test_batches_one_hot_and_labels():
    split = _split(["ACGT", "GGA", "TTTTT"], 6)
    x, y = next(iter(make_tf_dataset(split, batch_size=3)))
    assert x.shape == (3, 6, 4) and x.dtype == "float32"
    assert _decode_batch(x) == ["ACGT", "GGA", "TTTTT"]
    assert np.all(np.asarray(x)[1, 3:] == 0)  # padding is all-zero
    assert y.numpy().tolist() == [0, 1, 0]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            make_tf_dataset(split, batch_size=bad)


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    split = _split([c * 3 for c in "ACGTACGTAC"], 3)

    def order(ds):
        return [_decode_batch(x) for x, _ in ds]

    a = make_tf_dataset(split, 10, shuffle=True, seed=5)
    b = make_tf_dataset(split, 10, shuffle=True, seed=5)
    first_a, first_b = order(a), order(b)
    assert first_a == first_b
    assert order(a) != first_a  # new order next epoch
    assert sorted(first_a[0]) == sorted(_decode_batch(next(iter(make_tf_dataset(split, 10)))[0]))


def test_reverse_complement_augmentation_keeps_padding_right():
    seqs = ["AACGT", "GATTACA", "CCG"]
    split = _split(seqs * 20, 8)
    x, _ = next(iter(make_tf_dataset(split, 60, reverse_complement=True, seed=1)))
    decoded = _decode_batch(x)
    rc = {s: decode(reverse_complement_tokens(_split([s], 8).tokens)[0]) for s in seqs}
    assert rc == {"AACGT": "ACGTT", "GATTACA": "TGTAATC", "CCG": "CGG"}
    flipped = 0
    for original, got in zip(seqs * 20, decoded):
        assert got in (original, rc[original])
        flipped += got == rc[original] and got != original
    assert 15 < flipped < 45  # about half
    lengths = (np.asarray(x).sum(-1) > 0).sum(1)
    assert np.all(np.asarray(x).sum(-1)[np.arange(60), lengths - 1] > 0)


def test_without_labels():
    x = next(iter(make_tf_dataset(_split(["ACGT"], 4), 1, include_labels=False)))
    assert x.shape == (1, 4, 4)


def test_reverse_complement_is_reproducible_for_a_seed():
    split = _split(["AACGTT", "GATTACA", "CCGA"] * 30, 8)

    def epoch(seed):
        return [
            _decode_batch(x)
            for x, _ in make_tf_dataset(split, 16, reverse_complement=True, seed=seed)
        ]

    assert epoch(3) == epoch(3)
    assert epoch(3) != epoch(4)
