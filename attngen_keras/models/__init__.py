"""Model builders of attngen_keras."""

from attngen_keras.models.batched_prediction import predict_batched
from attngen_keras.models.classifiers import (
    BACKBONE_DEFAULTS,
    BUILDERS,
    PRESETS,
    AttnGen,
    attention_model,
    attention_projection_conv,
    build_attngen,
    build_cnn,
    build_gb_cnn,
    build_model,
    compile_classifier,
    saliency_mask_layer,
)

__all__ = [
    "BACKBONE_DEFAULTS",
    "BUILDERS",
    "PRESETS",
    "AttnGen",
    "attention_model",
    "attention_projection_conv",
    "build_attngen",
    "build_cnn",
    "build_gb_cnn",
    "build_model",
    "compile_classifier",
    "predict_batched",
    "saliency_mask_layer",
]
