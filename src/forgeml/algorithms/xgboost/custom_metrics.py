"""The metrics the container computes itself (with scikit-learn) rather than through XGBoost.

Same definitions as scikit-learn's ``accuracy_score``, ``f1_score(average=...)``, ``r2_score``...
(unweighted, like the container), hand-written on one confusion matrix per call because they run
for every dataset on every boosting round and scikit-learn's input checks would dominate that.

Class labels come from the prediction the way the container derives them from the raw margin:
margin > 0 for one output, argmax for several. XGBoost >= 2 hands custom metrics the transformed
prediction, so the margin rule is applied in prediction space (p > 0.5 for logistic links,
p > 1 for log links). Regression metrics use the prediction itself; the container (XGBoost 1.x)
saw the raw margin, which differs only for objectives with a non-identity link.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from forgeml.errors import ClientError

LOGISTIC_LINK = ("binary:logistic", "reg:logistic", "binary:hinge")
LOG_LINK = ("count:poisson", "reg:gamma", "reg:tweedie", "survival:cox")

MetricFn = Callable[[np.ndarray, np.ndarray], float]


def class_labels(predictions: np.ndarray, objective: str) -> np.ndarray:
    """Predicted classes from what ``Booster.predict`` returns for ``objective``."""
    if predictions.ndim == 2:
        return np.argmax(predictions, axis=1)
    if objective == "multi:softmax":
        return predictions.astype(np.int64)
    threshold = 0.5 if objective in LOGISTIC_LINK else 1.0 if objective in LOG_LINK else 0.0
    return (predictions > threshold).astype(np.int64)


class _Confusion:
    """Counts for one (true, predicted) pair of label vectors over the union of their labels."""

    def __init__(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        self.classes, codes = np.unique(np.concatenate([truth, predicted.astype(truth.dtype)]), return_inverse=True)
        k = len(self.classes)
        n = len(truth)
        counts = np.bincount(codes[:n] * k + codes[n:], minlength=k * k).reshape(k, k)
        self.n = n
        self.tp = np.diag(counts).astype(np.float64)
        self.true_sum = counts.sum(axis=1).astype(np.float64)
        self.pred_sum = counts.sum(axis=0).astype(np.float64)

    @staticmethod
    def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        out = np.zeros_like(num)
        np.divide(num, den, out=out, where=den > 0)
        return out

    def precision(self) -> np.ndarray:
        return self._ratio(self.tp, self.pred_sum)

    def recall(self) -> np.ndarray:
        return self._ratio(self.tp, self.true_sum)

    def f1(self) -> np.ndarray:
        return self._ratio(2 * self.tp, self.true_sum + self.pred_sum)

    def positive(self, metric: str) -> int:
        """Index of class 1 for ``average='binary'`` (which needs at most the labels 0 and 1)."""
        if len(self.classes) > 2 or not set(self.classes.tolist()) <= {0.0, 1.0}:
            raise ClientError(
                f"eval_metric {metric} is a binary metric, but the labels are "
                f"{sorted(self.classes.tolist())[:10]}; use {metric}_macro or {metric}_micro for multiclass data"
            )
        where = np.flatnonzero(self.classes == 1.0)
        return int(where[0]) if where.size else -1


def _binary(metric: str, values: Callable[[_Confusion], np.ndarray]) -> Callable[[_Confusion], float]:
    def compute(c: _Confusion) -> float:
        index = c.positive(metric)
        return float(values(c)[index]) if index >= 0 else 0.0

    return compute


def _balanced_accuracy(c: _Confusion) -> float:
    present = c.true_sum > 0
    return float(np.mean(c.tp[present] / c.true_sum[present]))


_CLASSIFICATION: dict[str, Callable[[_Confusion], float]] = {
    "accuracy": lambda c: float(c.tp.sum() / c.n),
    "balanced_accuracy": _balanced_accuracy,
    "f1": lambda c: float(np.mean(c.f1())),
    "f1_macro": lambda c: float(np.mean(c.f1())),
    "f1_binary": _binary("f1", _Confusion.f1),
    "precision": _binary("precision", _Confusion.precision),
    "precision_macro": lambda c: float(np.mean(c.precision())),
    "precision_micro": lambda c: float(c.tp.sum() / c.n),
    "recall": _binary("recall", _Confusion.recall),
    "recall_macro": lambda c: float(np.mean(c.recall())),
    "recall_micro": lambda c: float(c.tp.sum() / c.n),
}


def _r2(truth: np.ndarray, predicted: np.ndarray) -> float:
    residual = float(np.sum((truth - predicted) ** 2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


_REGRESSION: dict[str, MetricFn] = {
    "mse": lambda t, p: float(np.mean((t - p) ** 2)),
    "rmse": lambda t, p: float(np.sqrt(np.mean((t - p) ** 2))),
    "mae": lambda t, p: float(np.mean(np.abs(t - p))),
    "r2": _r2,
}


def evaluate(names: list[str], truth: np.ndarray, predictions: np.ndarray, objective: str) -> list[tuple[str, float]]:
    """``[(name, value), ...]`` in the order asked for."""
    truth = np.asarray(truth, dtype=np.float64)
    results: list[tuple[str, float]] = []
    confusion: _Confusion | None = None
    for name in names:
        if name in _REGRESSION:
            flat = predictions if predictions.ndim == 1 else np.argmax(predictions, axis=1)
            results.append((name, _REGRESSION[name](truth, flat.astype(np.float64))))
            continue
        if predictions.size == 0:
            results.append((name, 0.0))
            continue
        if confusion is None:
            confusion = _Confusion(truth, class_labels(predictions, objective))
        results.append((name, _CLASSIFICATION[name](confusion)))
    return results


def make_custom_metric(names: list[str], objective: str) -> Callable[[np.ndarray, Any], list[tuple[str, float]]]:
    """An ``xgboost.train(custom_metric=...)`` function; labels are read once per DMatrix."""
    labels: dict[int, tuple[Any, np.ndarray]] = {}

    def custom_metric(predictions: np.ndarray, dmatrix: Any) -> list[tuple[str, float]]:
        key = id(dmatrix)
        if key not in labels:
            labels[key] = (dmatrix, dmatrix.get_label())
        return evaluate(names, labels[key][1], predictions, objective)

    return custom_metric
