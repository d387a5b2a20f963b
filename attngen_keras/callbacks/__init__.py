"""Keras callbacks of attngen_keras."""

from attngen_keras.callbacks.batch_norm_recalibration import (
    RECALIBRATION_SEQUENCES,
    BatchNormRecalibration,
    recalibration_steps,
)
from attngen_keras.callbacks.masking_schedule import (
    MaskingSchedule,
    find_saliency_masks,
)

__all__ = [
    "RECALIBRATION_SEQUENCES",
    "BatchNormRecalibration",
    "MaskingSchedule",
    "find_saliency_masks",
    "recalibration_steps",
]
