"""Batched scoring of genome windows through the same model and in-graph preprocessing as `attngen predict`.

`Scorer.load(path)` takes what `attngen predict` takes (an exported
SavedModel, base or version directory, or a run directory) through
`attngen_keras.predict.resolve_endpoints`, so raw window strings go through the
exported `serving_default` / `saliency` / `predict_with_saliency` graphs (or
the identical `export._Serving` module built on a run's model): the scan's and
the variants' probabilities are `predict`'s probabilities for the same strings.
"""

import numpy as np

_COMPLEMENT = bytes.maketrans(
    b"ACGTUNRYSWKMBDHVacgtunryswkmbdhv", b"TGCAANYRSWMKVHDBtgcaanyrswmkvhdb"
)


def reverse_complement(sequence):
    """The reverse complement of a byte string (IUPAC codes complemented, case kept)."""
    return sequence.translate(_COMPLEMENT)[::-1]


class Scorer:
    """Probabilities (and importance) of raw window strings, in batches.

    Args:
        predict: `strings -> {"probabilities": [b, C], ...}` (a signature or tf.function).
        importance: `strings -> {"importance": [b, L]}`.
        facts: `{"class_names": [...], "length": L, ...}`.
        predict_with_saliency: `strings -> {"probabilities", "importance", ...}` from one
            forward pass, or None (then `predict` and `importance` are called in turn).
        target_class: the class whose probability the single-score outputs report
            (`target`); None: the second class of a binary model, none for a
            multi-class one.

    Example:

    >>> scorer = Scorer.load("saved_models/hof")  # doctest: +SKIP
    >>> scorer.probabilities([b"ACGT" * 50])  # doctest: +SKIP
    array([[0.12, 0.88]], dtype=float32)
    """

    def __init__(self, predict, importance, facts, predict_with_saliency=None, target_class=None):
        self._predict, self._importance = predict, importance
        self._predict_with_saliency = predict_with_saliency
        self.facts = facts
        self.class_names = list(facts["class_names"])
        self.length = int(facts["length"])
        self.target_class = None
        if target_class is not None:
            self.target = target_index(self.class_names, target_class, facts.get("source"))
            self.target_class = self.class_names[self.target]
        else:
            self.target = default_target(self.class_names)

    @classmethod
    def load(cls, path, target_class=None):
        """The scorer of an exported SavedModel or a run directory (as `attngen predict` resolves it)."""
        from attngen_keras.predict import resolve_endpoints

        e = resolve_endpoints(path)
        return cls(
            e["predict"], e["saliency"], e["facts"], e["predict_with_saliency"], target_class
        )

    def with_target(self, target_class):
        """This scorer reporting `target_class` (None: the default target); `self` if that changes nothing."""
        if target_class is None or target_class == self.target_class:
            return self
        return Scorer(self._predict, self._importance, self.facts, self._predict_with_saliency,
                      target_class)  # fmt: skip

    @classmethod
    def from_model(cls, model, class_names, length, crop=None):
        """A scorer of an in-memory Keras classifier (one-hot input), through `export._Serving`."""
        import tensorflow as tf

        from attngen_keras.export import _Serving

        serving = _Serving(model, length, crop)
        spec = [tf.TensorSpec([None], tf.string)]
        facts = {
            "class_names": list(class_names),
            "length": int(length),
            "source": "in-memory model",
        }
        return cls(
            tf.function(serving.predict, input_signature=spec),
            tf.function(serving.importance, input_signature=spec),
            facts,
            tf.function(serving.predict_with_saliency, input_signature=spec),
        )

    def probabilities(self, sequences, both_strands=False):
        """`[n, C]` float32 probabilities; with `both_strands` the mean over each window and its reverse complement."""
        import tensorflow as tf

        if not len(sequences):
            return np.zeros((0, len(self.class_names)), np.float32)
        batch = list(sequences)
        if both_strands:
            batch = batch + [reverse_complement(s) for s in batch]
        probs = self._predict(tf.constant(batch))["probabilities"].numpy()
        if both_strands:
            n = len(sequences)
            probs = (probs[:n] + probs[n:]) / np.float32(2)
        return probs

    def probabilities_and_importance(self, sequences, both_strands=False):
        """`([n, C] probabilities, [n, L] importance)`, from one forward pass when the model has
        the `predict_with_saliency` signature (the importance is that of the windows as given,
        also with `both_strands`, which averages the probabilities only)."""
        import tensorflow as tf

        if not len(sequences) or self._predict_with_saliency is None:
            return self.probabilities(sequences, both_strands), self.importance(sequences)
        outputs = self._predict_with_saliency(tf.constant(list(sequences)))
        probs = outputs["probabilities"].numpy()
        if both_strands:
            reverse = self.probabilities([reverse_complement(s) for s in sequences])
            probs = (probs + reverse) / np.float32(2)
        return probs, outputs["importance"].numpy()

    def importance(self, sequences):
        """`[n, L]` per-nucleotide importance (the `saliency` signature: attention, or |gradient x input|)."""
        import tensorflow as tf

        if not len(sequences):
            return np.zeros((0, self.length), np.float32)
        return self._importance(tf.constant(list(sequences)))["importance"].numpy()


def default_target(class_names):
    """The column single-score outputs report by default: a binary model's second class (None: one per class).

    Example:

    >>> default_target(["fungus", "human"]), default_target(["a", "b", "c"])
    (1, None)
    """
    return 1 if len(class_names) == 2 else None


def target_index(class_names, name, source=None):
    """The column of class `name` in `class_names`; a `DataError` naming the classes if it is not one.

    Example:

    >>> target_index(["fungus", "human"], "fungus")
    0
    """
    from attngen_keras.data.errors import DataError

    names = [str(c) for c in class_names]
    if str(name) not in names:
        raise DataError(
            f"--class {name!r} is not one of the model's classes ({', '.join(names)})", source
        )
    return names.index(str(name))


def score_windows(scorer, batches, both_strands=False):
    """Yields `(batch, probabilities)` for lists of `(chrom, start, sequence)` windows: their `[n, C]`
    probabilities."""
    for batch in batches:
        yield batch, scorer.probabilities([w[2] for w in batch], both_strands)
