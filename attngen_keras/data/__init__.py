"""Data loading: every supported source, encoding, caching and tf.data."""

from attngen_keras.data.alphabet import decode, encode, one_hot
from attngen_keras.data.containers import EncodedSplit, GenomicDataset, RawSplit
from attngen_keras.data.errors import DataError
from attngen_keras.data.loading import detect_source, load_dataset
from attngen_keras.data.pipeline import make_tf_dataset, reverse_complement_tokens

__all__ = [
    "DataError",
    "EncodedSplit",
    "GenomicDataset",
    "RawSplit",
    "decode",
    "detect_source",
    "encode",
    "load_dataset",
    "make_tf_dataset",
    "one_hot",
    "reverse_complement_tokens",
]
