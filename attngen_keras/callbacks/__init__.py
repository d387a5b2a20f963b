"""Keras callbacks of attngen_keras."""

from attngen_keras.callbacks.masking_schedule import (
    MaskingSchedule,
    find_saliency_masks,
)

__all__ = ["MaskingSchedule", "find_saliency_masks"]
