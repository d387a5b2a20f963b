"""Containers for parsed sequences: ragged raw splits and padded datasets."""

from dataclasses import dataclass, field

import numpy as np

from attngen_keras.data import alphabet
from attngen_keras.data.errors import SequenceTooLongError
from attngen_keras.files import plural

SPLITS = ("train", "val", "test")
CROP_MODES = ("left", "center", "right")


@dataclass
class RawSplit:
    """Parsed, tokenized, variable-length records of one split.

    Attributes:
        flat: all tokens concatenated, `uint8`.
        offsets: `(n + 1,)` int64; record `i` is `flat[offsets[i]:offsets[i+1]]`.
        ids: `(n,)` record ids (str).
        labels: `(n,)` class names (str).
        file_index: `(n,)` index into `files` of each record's source file.
        files: the source files.
    """

    flat: np.ndarray
    offsets: np.ndarray
    ids: np.ndarray
    labels: np.ndarray
    file_index: np.ndarray
    files: list

    def __len__(self):
        return len(self.ids)

    @property
    def lengths(self):
        return np.diff(self.offsets)

    def subset(self, indices):
        """A new RawSplit holding records `indices` (in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if len(indices):
            starts = self.offsets[indices]
            gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
            flat = self.flat[gather]
        else:
            flat = np.zeros(0, dtype=np.uint8)
        return RawSplit(
            flat, offsets, self.ids[indices], self.labels[indices],
            self.file_index[indices], list(self.files),
        )  # fmt: skip


class RawSplitBuilder:
    """Accumulates records into a `RawSplit`, tokenizing as it goes.

    Example:

    >>> builder = RawSplitBuilder()
    >>> builder.add("s1", "pos", "ACGT", "x.fa")
    >>> len(builder.build())
    1
    """

    def __init__(self):
        self._chunks, self._lengths, self._ids, self._labels = [], [], [], []
        self._file_index, self._files = [], {}

    def add(self, record_id, label, sequence, file, stored_file=None):
        """Tokenizes and adds one record.

        Args:
            record_id: the record's id.
            label: its class name.
            sequence: the sequence (str or bytes).
            file: the file it was read from (named in encoding errors).
            stored_file: the file to name in later errors (default `file`).
        """
        tokens = alphabet.encode(sequence, file=file, record=record_id)
        self._chunks.append(tokens)
        self._lengths.append(len(tokens))
        self._ids.append(str(record_id))
        self._labels.append(str(label))
        stored = str(file if stored_file is None else stored_file)
        self._file_index.append(self._files.setdefault(stored, len(self._files)))

    def __len__(self):
        return len(self._ids)

    def build(self):
        offsets = np.zeros(len(self._lengths) + 1, dtype=np.int64)
        np.cumsum(self._lengths, out=offsets[1:])
        flat = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.uint8)
        return RawSplit(
            flat=flat.astype(np.uint8, copy=False),
            offsets=offsets,
            ids=np.asarray(self._ids, dtype=str),
            labels=np.asarray(self._labels, dtype=str),
            file_index=np.asarray(self._file_index, dtype=np.int32),
            files=list(self._files),
        )


@dataclass
class EncodedSplit:
    """Fixed-length tokens and integer labels of one split.

    Attributes:
        tokens: `(n, length)` `uint8`, right-padded with `alphabet.PAD`.
        labels: `(n,)` int32 class indices.
        ids: `(n,)` record ids.
    """

    tokens: np.ndarray
    labels: np.ndarray
    ids: np.ndarray

    def __len__(self):
        return len(self.labels)

    @property
    def lengths(self):
        return np.sum(self.tokens != alphabet.PAD, axis=1).astype(np.int32)

    def _lengths_in_chunks(self, chunk_bytes=1 << 24):
        """The sequences' lengths (padding left out), one array per chunk of about `chunk_bytes`
        of tokens (a memory-mapped cache is read once, never whole)."""
        rows = max(1, chunk_bytes // max(1, int(self.tokens.shape[1])))
        for start in range(0, len(self), rows):
            chunk = np.asarray(self.tokens[start : start + rows])
            yield (chunk != alphabet.PAD).sum(axis=1)

    def shortest_length(self, chunk_bytes=1 << 24):
        """The length of the shortest sequence (0 for an empty split), read `chunk_bytes` of
        tokens at a time."""
        shortest = int(self.tokens.shape[1]) if len(self) else 0
        for lengths in self._lengths_in_chunks(chunk_bytes):
            shortest = min(shortest, int(lengths.min()))
        return shortest

    def count_shorter(self, length, chunk_bytes=1 << 24):
        """How many sequences are shorter than `length` (padding left out), read `chunk_bytes`
        of tokens at a time.

        Example:

        >>> split = EncodedSplit.from_sequences(["ACGT", "AC"], [0, 1], 4)
        >>> split.count_shorter(4)
        1
        """
        chunks = self._lengths_in_chunks(chunk_bytes)
        return sum(int((lengths < length).sum()) for lengths in chunks)

    def one_hot(self):
        """`(n, length, 4)` float32 one-hot (padding all-zero)."""
        return alphabet.one_hot(self.tokens)

    def sequences(self):
        """The sequences as upper-case strings (padding removed)."""
        return [alphabet.decode(row) for row in self.tokens]

    @classmethod
    def from_sequences(cls, sequences, labels, length, ids=None, crop=None, source="sequences"):
        """Encodes DNA strings (e.g. TensorFlow Datasets examples) for `make_tf_dataset`.

        Args:
            sequences: DNA strings (str or bytes), encoded as `load_dataset` encodes files.
            labels: their integer class indices.
            length: the model's length: shorter sequences are right-padded.
            ids: record ids (str or bytes; default `"0"`, `"1"`, ...), named in errors.
            crop: `None` (a longer sequence is an error), `"left"` (keep the first
                `length` bases), `"center"` or `"right"`.
            source: what to name as the file in errors.

        Example:

        >>> split = EncodedSplit.from_sequences([b"ACGT", "ggcn\\n"], [0, 1], 5)
        >>> split.tokens.shape, split.sequences(), split.ids.tolist()
        ((2, 5), ['ACGT', 'GGCN'], ['0', '1'])
        """
        if isinstance(sequences, (str, bytes)):
            raise ValueError(
                "sequences must be a list of DNA strings, got one string (wrap it: [sequence])"
            )
        builder = RawSplitBuilder()
        given = np.asarray(labels)
        if given.ndim != 1 or (given.size and (given.dtype.kind not in "iu" or given.min() < 0)):
            raise ValueError(
                f"labels must be one non-negative integer class index per sequence, got an "
                f"array of shape {given.shape} and dtype {given.dtype}"
            )
        labels = given.astype(np.int32)
        # surrounding whitespace (a line end) is dropped, as the file readers drop it
        sequences = [seq.strip() for seq in sequences]
        if ids is None:
            ids = range(len(sequences))
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in ids]
        if not len(ids) == len(sequences) == len(labels):
            raise ValueError(
                f"{len(sequences)} sequences, {len(labels)} labels and {len(ids)} ids: "
                "give one of each per record"
            )
        for record_id, label, sequence in zip(ids, labels, sequences):
            builder.add(record_id, label, sequence, source)
        try:
            tokens = pad_tokens(builder.build(), int(length), crop, split_name=source)
        except SequenceTooLongError as error:  # named as this function's arguments
            raise error.with_advice(
                "raise length or pass crop='left', 'center' or 'right'", length_name="length"
            ) from None
        return cls(tokens, labels, np.asarray(ids, dtype=str))


@dataclass
class GenomicDataset:
    """A classification dataset ready for training.

    Attributes:
        class_names: class names; label `i` is `class_names[i]`.
        length: the fixed (padded) length of every sequence.
        splits: `{"train", "val", "test"}` -> `EncodedSplit` (some may be
            absent, e.g. a dataset loaded for evaluation only).
        source: a description of where the data came from.
        kind: the detected source kind.
    """

    class_names: list
    length: int
    splits: dict
    source: str = ""
    kind: str = ""
    info: dict = field(default_factory=dict)

    @property
    def num_classes(self):
        return len(self.class_names)

    def __getitem__(self, split):
        if split not in self.splits:
            raise KeyError(f"dataset has no {split!r} split (has {sorted(self.splits)})")
        return self.splits[split]

    def summary(self):
        """Counts per split and class, as a dict."""
        return {
            split: {name: int(np.sum(data.labels == i)) for i, name in enumerate(self.class_names)}
            for split, data in self.splits.items()
        }


def check_lengths(splits, length):
    """Raises one `SequenceTooLongError` for records longer than `length`, naming the first and counting every split.

    Args:
        splits: `{split name: RawSplit}`, in the order to report them.
        length: the longest length allowed.
    """
    counts = {name: int((split.lengths > length).sum()) for name, split in splits.items()}
    if not any(counts.values()):
        return
    name = next(name for name, count in counts.items() if count)
    split = splits[name]
    first = int(np.flatnonzero(split.lengths > length)[0])
    total = sum(counts.values())
    where = ", ".join(f"{count} in {name}" for name, count in counts.items() if count)
    raise SequenceTooLongError(
        split.lengths[first],
        length,
        f"{plural(total, 'such record')}: {where}",
        split.files[split.file_index[first]] if split.files else None,
        str(split.ids[first]),
    )


def pad_tokens(raw, length, crop=None, split_name=""):
    """Pads (or crops) a `RawSplit` to `(n, length)` tokens.

    Args:
        raw: the split.
        length: target length.
        crop: `None` (longer records are an error), `"left"` (keep the first
            `length` bases), `"center"` or `"right"` (keep the last ones).
        split_name: named in errors.
    """
    if crop is not None and crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {CROP_MODES} or None, got {crop!r}")
    lengths = raw.lengths
    if crop is None:
        check_lengths({split_name: raw}, length)
    n = len(raw)
    if n and np.all(lengths == length):
        return raw.flat.reshape(n, length).copy()
    tokens = np.full((n, length), alphabet.PAD, dtype=np.uint8)
    for i in range(n):
        row = raw.flat[raw.offsets[i] : raw.offsets[i + 1]]
        if len(row) > length:
            excess = len(row) - length
            start = {"left": 0, "center": excess // 2, "right": excess}[crop]
            row = row[start : start + length]
        tokens[i, : len(row)] = row
    return tokens
