"""Scoring RCF's labelled ``test`` channel (reference §7.5).

A point is called anomalous when its score exceeds the mean score plus three standard deviations;
SageMaker documents that rule but not over which scores the mean is taken, so it is taken over the
test set's own scores (UNVERIFIED). ``eval_metrics`` picks what is logged: ``accuracy``, and/or
``precision_recall_fscore`` for the anomalous class (label 1: ``precision``, ``recall``, ``f1``, the
last being the tuning objective ``test:f1``) and for the normal class (``negative_precision``,
``negative_recall``, ``negative_f1``). The per-class metric names are UNVERIFIED.
"""

from __future__ import annotations

import numpy as np

SIGMAS = 3.0


def anomaly_threshold(scores: np.ndarray) -> float:
    return float(scores.mean() + SIGMAS * scores.std())


def _precision_recall_f1(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float, float]:
    true_positive = float(np.sum(predicted & actual))
    predicted_count = float(predicted.sum())
    actual_count = float(actual.sum())
    precision = true_positive / predicted_count if predicted_count else 0.0
    recall = true_positive / actual_count if actual_count else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def test_metrics(scores: np.ndarray, labels: np.ndarray, eval_metrics: list[str]) -> list[tuple[str, float]]:
    """``(metric, value)`` pairs in log order for the selected ``eval_metrics``."""
    predicted = scores > anomaly_threshold(scores)
    actual = labels > 0.5
    found: list[tuple[str, float]] = []
    if "accuracy" in eval_metrics:
        found.append(("accuracy", float(np.mean(predicted == actual))))
    if "precision_recall_fscore" in eval_metrics:
        precision, recall, f1 = _precision_recall_f1(predicted, actual)
        found += [("precision", precision), ("recall", recall), ("f1", f1)]
        precision, recall, f1 = _precision_recall_f1(~predicted, ~actual)
        found += [("negative_precision", precision), ("negative_recall", recall), ("negative_f1", f1)]
    return found
