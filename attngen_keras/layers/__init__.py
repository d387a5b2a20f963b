"""Keras layers of attngen_keras."""

from attngen_keras.layers.saliency_mask import SaliencyMask
from attngen_keras.layers.sequence_ops import (
    ApplyValidity,
    MaskedGlobalPooling1D,
    PoolValidity,
    ValidPositions,
)

__all__ = [
    "ApplyValidity",
    "MaskedGlobalPooling1D",
    "PoolValidity",
    "SaliencyMask",
    "ValidPositions",
]
