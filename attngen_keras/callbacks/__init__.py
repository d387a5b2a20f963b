"""Keras callbacks of attngen_keras."""

from attngen_keras.callbacks.batch_norm_recalibration import BatchNormRecalibration
from attngen_keras.callbacks.masking_schedule import (
    MaskingSchedule,
    find_saliency_masks,
)

__all__ = ["BatchNormRecalibration", "MaskingSchedule", "find_saliency_masks"]
