"""Keras layers of attngen_keras."""

from attngen_keras.layers.masked_batch_normalization import MaskedBatchNormalization
from attngen_keras.layers.saliency_mask import SaliencyMask
from attngen_keras.layers.sequence_ops import (
    ApplyValidity,
    MaskedGlobalPooling1D,
    PoolValidity,
    ValidPositions,
)

__all__ = [
    "ApplyValidity",
    "MaskedBatchNormalization",
    "MaskedGlobalPooling1D",
    "PoolValidity",
    "SaliencyMask",
    "ValidPositions",
]
