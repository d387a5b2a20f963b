"""Classification metrics from predicted probabilities."""

import numpy as np
from sklearn import metrics as skm


def as_class_probabilities(probs):
    """`(n, num_classes)` probabilities from a sigmoid `(n, 1)` or softmax output.

    Example:

    >>> as_class_probabilities(np.array([[0.25]])).tolist()
    [[0.75, 0.25]]
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 1:
        probs = probs[:, None]
    if probs.shape[1] == 1:
        return np.concatenate([1.0 - probs, probs], axis=1)
    return probs


def classification_metrics(labels, probs):
    """Accuracy, AUROC, AUPRC, F1 and cross-entropy loss.

    Binary: AUROC/AUPRC/F1 of class 1 (the second class name). Multi-class:
    one-vs-rest macro averages.

    Args:
        labels: `(n,)` integer class indices.
        probs: model outputs, `(n, 1)` sigmoid or `(n, num_classes)` softmax.

    Returns:
        dict with `accuracy, auroc, auprc, f1, loss, n`.

    Example:

    >>> m = classification_metrics(np.array([0, 1]), np.array([[0.2], [0.9]]))
    >>> m["accuracy"], m["auroc"]
    (1.0, 1.0)
    """
    labels = np.asarray(labels).astype(int)
    class_probs = as_class_probabilities(probs)
    num_classes = class_probs.shape[1]
    predicted = class_probs.argmax(axis=1)
    result = {
        "accuracy": float(np.mean(predicted == labels)),
        "loss": float(
            -np.mean(np.log(np.clip(class_probs[np.arange(len(labels)), labels], 1e-7, 1.0)))
        ),
        "n": int(len(labels)),
    }
    present = np.unique(labels)
    if num_classes == 2:
        # undefined (NaN, written as null) with no positive label and none predicted
        result["f1"] = float(skm.f1_score(labels, predicted, zero_division=np.nan))
        if len(present) == 2:
            result["auroc"] = float(skm.roc_auc_score(labels, class_probs[:, 1]))
            result["auprc"] = float(skm.average_precision_score(labels, class_probs[:, 1]))
    else:
        result["f1"] = float(skm.f1_score(labels, predicted, average="macro", zero_division=0))
        if len(present) == num_classes:
            onehot = np.eye(num_classes)[labels]
            result["auroc"] = float(
                skm.roc_auc_score(labels, class_probs, multi_class="ovr", average="macro")
            )
            result["auprc"] = float(
                skm.average_precision_score(onehot, class_probs, average="macro")
            )
    result.setdefault("auroc", float("nan"))
    result.setdefault("auprc", float("nan"))
    return result
