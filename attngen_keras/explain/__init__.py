"""Interpretability: per-nucleotide importance, its metrics and its faithfulness."""

from attngen_keras.explain.faithfulness import (
    AOPC_FRACTIONS,
    aopc,
    aopc_summary,
    faithfulness_curves,
    uniform_attention_accuracy,
)
from attngen_keras.explain.importance import (
    METHODS,
    importance_scores,
    predicted_targets,
    project_to_nucleotides,
    target_probability,
)
from attngen_keras.explain.ism import ism
from attngen_keras.explain.metrics import (
    concentration_summary,
    gini,
    localization_metrics,
    normalized_entropy,
    top_mass,
)
from attngen_keras.explain.shuffle import dinucleotide_shuffle, shuffle_tokens

__all__ = [
    "AOPC_FRACTIONS",
    "METHODS",
    "aopc",
    "aopc_summary",
    "concentration_summary",
    "dinucleotide_shuffle",
    "faithfulness_curves",
    "gini",
    "importance_scores",
    "ism",
    "localization_metrics",
    "normalized_entropy",
    "predicted_targets",
    "project_to_nucleotides",
    "shuffle_tokens",
    "target_probability",
    "top_mass",
    "uniform_attention_accuracy",
]
