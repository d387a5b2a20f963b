"""Synthetic DNA with planted motifs: data with known informative positions.

Positives carry `instances` copies of motifs sampled from their position
weight matrices at random non-overlapping positions; negatives are background
(or carry shuffled copies of the motifs, which keeps their composition but
destroys the motif). The planted positions are returned as ground truth for
interpretability metrics.
"""

from dataclasses import dataclass

import numpy as np

BASES = "ACGT"
# AP-1 (TGAsTCA) and a CTCF-like core, as consensus strings.
DEFAULT_MOTIFS = ("TGACTCA", "CCGCGNGGNGGCAG")


@dataclass
class PlantedMotifData:
    """Sequences with ground truth.

    Attributes:
        sequences: list of str.
        labels: `(n,)` int32, 1 for sequences with planted motifs.
        planted: `(n, length)` bool, True at planted motif positions.
    """

    sequences: list
    labels: np.ndarray
    planted: np.ndarray

    @property
    def ids(self):
        return [f"syn{i}" for i in range(len(self.sequences))]

    def to_frame(self):
        """A pandas DataFrame with `id, seq, label` columns (labels as `pos`/`neg`)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "id": self.ids,
                "seq": self.sequences,
                "label": np.where(self.labels == 1, "pos", "neg"),
            }
        )

    def planted_intervals(self):
        """The planted positions as a DataFrame of `id, start, end` (0-based, end exclusive).

        This is the ground-truth format `attngen explain --ground-truth` reads.
        """
        import pandas as pd

        rows = []
        for record_id, mask in zip(self.ids, self.planted):
            edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
            rows += [
                (record_id, int(a), int(b))
                for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))
            ]
        return pd.DataFrame(rows, columns=["id", "start", "end"])


def consensus_to_pwm(consensus):
    """`(k, 4)` probabilities from a consensus with IUPAC N (uniform).

    Example:

    >>> consensus_to_pwm("AN").tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]]
    """
    pwm = np.zeros((len(consensus), 4))
    for i, char in enumerate(consensus.upper()):
        if char == "N":
            pwm[i] = 0.25
        else:
            pwm[i, BASES.index(char)] = 1.0
    return pwm


def planted_motif_data(
    n=1000,
    length=100,
    motifs=DEFAULT_MOTIFS,
    instances=1,
    gc=0.5,
    negatives="background",
    seed=0,
):
    """Generates a balanced planted-motif dataset.

    Args:
        n: number of sequences (half positive).
        length: sequence length.
        motifs: consensus strings or `(k, 4)` PWMs; each positive gets
            `instances` motifs, each chosen at random among these.
        instances: motif instances per positive sequence.
        gc: background GC content.
        negatives: `"background"` or `"shuffled"` (negatives carry shuffled
            motif instances, so composition alone cannot separate classes).
        seed: random seed.

    Returns:
        `PlantedMotifData`.

    Example:

    >>> data = planted_motif_data(n=10, length=50, seed=1)
    >>> len(data.sequences), int(data.labels.sum()), data.planted.shape
    (10, 5, (10, 50))
    """
    if negatives not in ("background", "shuffled"):
        raise ValueError("negatives must be 'background' or 'shuffled'")
    if n < 2 or length < 1 or instances < 1 or not 0 <= gc <= 1:
        raise ValueError(
            f"need n >= 2, length >= 1, instances >= 1 and 0 <= gc <= 1 (got {n}, {length}, {instances}, {gc})"
        )
    for motif in motifs:
        if isinstance(motif, str) and (not motif or set(motif.upper()) - set("ACGTN")):
            raise ValueError(f"motif {motif!r} must be a non-empty consensus of A, C, G, T and N")
    rng = np.random.default_rng(seed)
    pwms = [consensus_to_pwm(m) if isinstance(m, str) else np.asarray(m, float) for m in motifs]
    for number, pwm in enumerate(pwms, start=1):
        if pwm.ndim != 2 or pwm.shape[1] != 4 or not len(pwm):
            raise ValueError(
                f"motif {number}: a PWM must be (k, 4) for A, C, G, T; got shape {pwm.shape}"
            )
        if (pwm < 0).any() or not np.allclose(pwm.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError(
                f"motif {number}: each PWM row must be probabilities summing to 1; row sums "
                f"{np.round(pwm.sum(axis=1), 4).tolist()}"
            )
    background = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
    labels = np.zeros(n, dtype=np.int32)
    labels[: n // 2] = 1
    rng.shuffle(labels)
    tokens = rng.choice(4, size=(n, length), p=background)
    planted = np.zeros((n, length), dtype=bool)
    for i in range(n):
        taken = np.zeros(length, dtype=bool)
        for _ in range(instances):
            pwm = pwms[rng.integers(len(pwms))]
            k = len(pwm)
            free = [s for s in range(length - k + 1) if not taken[s : s + k].any()]
            if not free:
                raise ValueError("sequence too short for the requested motif instances")
            start = free[rng.integers(len(free))]
            motif = np.array([rng.choice(4, p=row) for row in pwm])
            if labels[i] == 0:
                if negatives == "background":
                    continue
                motif = rng.permutation(motif)
            tokens[i, start : start + k] = motif
            taken[start : start + k] = True
            if labels[i] == 1:
                planted[i, start : start + k] = True
    alphabet = np.array(list(BASES))
    sequences = ["".join(alphabet[row]) for row in tokens]
    return PlantedMotifData(sequences, labels, planted)
