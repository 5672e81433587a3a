"""Streaming FM metrics with SageMaker's names (reference §4.4).

Regression reports ``rmse``; binary classification reports ``binary_classification_accuracy``,
``binary_classification_cross_entropy`` and ``binary_f_1.000`` (F1 at threshold 0.5, named as
SageMaker names F-beta with beta = 1). Sums accumulate batch by batch so one pass yields per-batch,
per-epoch and final values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_LOG_EPS = 1e-12


@dataclass
class MetricAccumulator:
    """Running sums over the batches seen since the last ``reset``."""

    classifier: bool
    rows: int = 0
    squared_error: float = 0.0
    cross_entropy: float = 0.0
    correct: int = 0
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0

    def reset(self) -> None:
        self.rows = 0
        self.squared_error = self.cross_entropy = 0.0
        self.correct = self.true_positive = self.false_positive = self.false_negative = 0

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        """Add a batch: probabilities for a classifier, values for a regressor."""
        self.rows += int(labels.shape[0])
        if not self.classifier:
            diff = predictions - labels
            self.squared_error += float(diff @ diff)
            return
        p = np.clip(predictions, _LOG_EPS, 1.0 - _LOG_EPS)
        positive = labels > 0.5
        self.cross_entropy -= float(np.log(np.where(positive, p, 1.0 - p)).sum())
        predicted = predictions >= 0.5
        self.correct += int((predicted == positive).sum())
        self.true_positive += int((predicted & positive).sum())
        self.false_positive += int((predicted & ~positive).sum())
        self.false_negative += int((~predicted & positive).sum())

    def values(self) -> list[tuple[str, float, bool]]:
        """``(metric, value, maximize)`` for everything accumulated so far."""
        n = max(self.rows, 1)
        if not self.classifier:
            return [("rmse", math.sqrt(self.squared_error / n), False)]
        denominator = 2 * self.true_positive + self.false_positive + self.false_negative
        f1 = 2 * self.true_positive / denominator if denominator else 0.0
        return [
            ("binary_classification_accuracy", self.correct / n, True),
            ("binary_classification_cross_entropy", self.cross_entropy / n, False),
            ("binary_f_1.000", f1, True),
        ]
