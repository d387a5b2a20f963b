"""Interpretability: per-nucleotide importance and its metrics."""

from attngen_keras.explain.importance import (
    METHODS,
    importance_scores,
    predicted_targets,
    project_to_nucleotides,
)
from attngen_keras.explain.metrics import (
    concentration_summary,
    gini,
    localization_metrics,
    normalized_entropy,
    top_mass,
)

__all__ = [
    "METHODS",
    "concentration_summary",
    "gini",
    "importance_scores",
    "localization_metrics",
    "normalized_entropy",
    "predicted_targets",
    "project_to_nucleotides",
    "top_mass",
]
