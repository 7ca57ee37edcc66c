"""Metrics that are right for 10 classes, computed from predicted classes with scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from fashion.storage.classes import CLASS_NAMES, NUM_CLASSES


def compute_metrics(y_true: np.ndarray, probabilities: np.ndarray, split: str = "test") -> dict:
    """Return loss, accuracy, top-2 accuracy, per-class and macro P/R/F1 and the confusion matrix.

    Macro figures average over the classes that occur in the labels or the predictions
    (scikit-learn's default), so a hand-made example with 3 of the 10 classes is not dragged
    down by 7 empty ones; on Fashion-MNIST every class occurs and all 10 count.

    Args:
        y_true: integer labels, shape (n,).
        probabilities: softmax outputs, shape (n, 10).
        split: name recorded beside the figures, e.g. "test".
    """
    labels = list(range(NUM_CLASSES))
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    macro = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    predicted = np.bincount(y_pred, minlength=NUM_CLASSES)
    return {
        "split": split,
        "n_images": int(len(y_true)),
        "loss": float(log_loss(y_true, probabilities, labels=labels)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "top2_accuracy": float(top_k_accuracy_score(y_true, probabilities, k=2, labels=labels)),
        "macro_precision": float(macro[0]),
        "macro_recall": float(macro[1]),
        "macro_f1": float(macro[2]),
        "per_class": [
            {"class_id": i, "label": CLASS_NAMES[i], "precision": float(precision[i]),
             "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i]),
             "predicted": int(predicted[i])}
            for i in labels
        ],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def predict_probabilities(model, x: np.ndarray) -> np.ndarray:
    """Return a Keras model's softmax outputs for `x`, shape (n, 10), as `fashion predict` does."""
    from fashion.inference.predict import Predictor

    return Predictor(model).probabilities(x)


def evaluate_model(model, x: np.ndarray, y_true: np.ndarray, split: str = "test") -> dict:
    """Predict `x` with a Keras model and return `compute_metrics` of the result."""
    return compute_metrics(y_true, predict_probabilities(model, x), split)


def most_confused_pairs(matrix, n: int = 5) -> list[dict]:
    """Return the `n` largest off-diagonal cells of a confusion matrix: where the model fails.

    Each item is {"true", "predicted", "count", "share"}, share being the fraction of that true
    class's images sent to the wrong class.
    """
    matrix = np.asarray(matrix)
    off_diagonal = matrix * (1 - np.eye(len(matrix), dtype=matrix.dtype))
    order = np.argsort(off_diagonal, axis=None, kind="stable")[::-1][:n]
    pairs = []
    for true, pred in zip(*np.unravel_index(order, matrix.shape), strict=True):
        count = int(off_diagonal[true, pred])
        if count:
            pairs.append({"true": CLASS_NAMES[true], "predicted": CLASS_NAMES[pred],
                          "count": count, "share": count / int(matrix[true].sum())})
    return pairs


def worst_misclassified(y_true: np.ndarray, probabilities: np.ndarray, n: int = 24) -> np.ndarray:
    """Return the indices of the `n` wrong predictions made with the highest confidence.

    Confident mistakes are the informative ones: ambiguous images, or labels that look wrong.
    """
    y_pred = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(y_pred != y_true)
    confidence = probabilities[wrong, y_pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:n]


def format_metrics(metrics: dict) -> str:
    """Return the metrics as a plain-text table for a terminal."""
    lines = [
        f"{metrics['split']} split, {metrics['n_images']} images",
        f"  loss {metrics['loss']:.4f}   accuracy {metrics['accuracy']:.4f}   "
        f"top-2 accuracy {metrics['top2_accuracy']:.4f}   macro F1 {metrics['macro_f1']:.4f}",
        f"  {'class':<12} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>7}",
    ]
    for row in metrics["per_class"]:
        lines.append(f"  {row['label']:<12} {row['precision']:>9.3f} {row['recall']:>7.3f} "
                     f"{row['f1']:>6.3f} {row['support']:>7d}")
    return "\n".join(lines)
