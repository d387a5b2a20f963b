"""Planted-motif data: bad motifs are named before anything is drawn."""

import numpy as np
import pytest

from attngen_keras.synthetic import planted_motif_data


@pytest.mark.parametrize(
    "motif, message",
    [
        ("TGAXTCA", "must be a non-empty consensus of A, C, G, T and N"),
        (
            np.full((3, 4), 0.3),
            r"motif 1: each PWM row must be probabilities summing to 1; row sums \[1.2",
        ),
        (
            np.full((3, 3), 1 / 3),
            r"motif 1: a PWM must be \(k, 4\) for A, C, G, T; got shape \(3, 3\)",
        ),
        (np.array([[1.5, -0.5, 0, 0]]), "must be probabilities"),
    ],
)
def test_bad_motifs_are_named(motif, message):
    with pytest.raises(ValueError, match=message):
        planted_motif_data(n=10, length=20, motifs=(motif,), seed=0)


def test_a_pwm_motif_is_planted():
    pwm = np.eye(4)[[0, 1, 2, 3]]  # ACGT
    data = planted_motif_data(n=20, length=30, motifs=(pwm,), seed=0).to_frame()
    positives = data[data["label"] == data["label"].max()]
    assert positives["seq"].str.contains("ACGT").all()
