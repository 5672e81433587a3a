"""Evaluation metrics with SageMaker's names (§1.6) and the regexes SageMaker attaches to them.

Each report is a list of ``(name, value, maximize)``: ``maximize`` picks the ``<score>`` or
``<loss>`` tag of the ``#quality_metric`` line, as the container prints it (it prints
``multiclass_log_loss`` as a ``<score>`` although lower is better, and so do we).
"""

from __future__ import annotations

import math

import numpy as np

from forgeml.algorithms.logging import progress_metric_definitions

Report = list[tuple[str, float, bool]]


def _definition(name: str, regex: str) -> dict[str, str]:
    return {"Name": name, "Regex": regex}


def _split_definitions(split: str) -> list[dict[str, str]]:
    head = rf"#quality_metric: host=\S+, {split} "
    return [
        _definition(
            f"{split}:binary_classification_accuracy", head + r"binary_classification_accuracy <score>=(\S+)"
        ),
        _definition(f"{split}:binary_f_beta", head + r"binary_f_\S+ <score>=(\S+)"),
        _definition(f"{split}:precision", head + r"precision <score>=(\S+)"),
        _definition(f"{split}:recall", head + r"recall <score>=(\S+)"),
        _definition(f"{split}:roc_auc_score", head + r"roc_auc_score <score>=(\S+)"),
        _definition(f"{split}:mse", head + r"mse <loss>=(\S+)"),
        _definition(f"{split}:absolute_loss", head + r"absolute_loss <loss>=(\S+)"),
        _definition(f"{split}:multiclass_accuracy", head + r"multiclass_accuracy <score>=(\S+)"),
        _definition(
            f"{split}:multiclass_top_k_accuracy", head + r"multiclass_top_k_accuracy_\S+ <score>=(\S+)"
        ),
        _definition(f"{split}:dcg", head + r"dcg <score>=(\S+)"),
        _definition(f"{split}:macro_precision", head + r"macro_precision <score>=(\S+)"),
        _definition(f"{split}:macro_recall", head + r"macro_recall <score>=(\S+)"),
        _definition(f"{split}:macro_f_beta", head + r"macro_f_\S+ <score>=(\S+)"),
    ]


METRIC_DEFINITIONS: tuple[dict[str, str], ...] = (
    *progress_metric_definitions(),
    _definition(
        "train:objective_loss", r"#quality_metric: host=\S+, epoch=\S+, train \S+_objective <loss>=(\S+)"
    ),
    _definition(
        "validation:objective_loss",
        r"#quality_metric: host=\S+, epoch=\S+, validation \S+_objective <loss>=(\S+)",
    ),
    _definition("train:objective_loss:final", r"#quality_metric: host=\S+, train \S+_objective <loss>=(\S+)"),
    _definition(
        "validation:objective_loss:final", r"#quality_metric: host=\S+, validation \S+_objective <loss>=(\S+)"
    ),
    _definition("test:objective_loss", r"#quality_metric: host=\S+, test \S+_objective <loss>=(\S+)"),
    *_split_definitions("validation"),
    _definition("validation:rmse", r"#quality_metric: host=\S+, validation rmse <loss>=(\S+)"),
    *_split_definitions("test"),
)


def beta_suffix(beta: float) -> str:
    """SageMaker embeds beta with three decimals: ``binary_f_1.000``, ``macro_f_0.500``."""
    return f"{beta:.3f}"


# -- binary ------------------------------------------------------------------------------------


def confusion_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn) when ``score >= threshold`` predicts 1."""
    predicted = scores >= threshold
    actual = labels > 0.5
    tp = int(np.count_nonzero(predicted & actual))
    fp = int(np.count_nonzero(predicted & ~actual))
    fn = int(np.count_nonzero(~predicted & actual))
    return tp, fp, int(labels.shape[0]) - tp - fp - fn, fn


def f_beta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    denominator = b2 * precision + recall
    return (1 + b2) * precision * recall / denominator if denominator > 0 else 0.0


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties share ranks); NaN with one class only."""
    actual = labels > 0.5
    positives = int(np.count_nonzero(actual))
    negatives = int(labels.shape[0]) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1))
    ends = np.concatenate((starts[1:], [ordered.shape[0]]))
    ranks = np.empty(ordered.shape[0], dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return float((ranks[actual].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def binary_report(
    objective: tuple[str, float], scores: np.ndarray, labels: np.ndarray, threshold: float, beta: float
) -> Report:
    tp, fp, tn, fn = confusion_at(scores, labels, threshold)
    total = max(1, tp + fp + tn + fn)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return [
        (objective[0], objective[1], False),
        ("binary_classification_accuracy", (tp + tn) / total, True),
        (f"binary_f_{beta_suffix(beta)}", f_beta(precision, recall, beta), True),
        ("precision", precision, True),
        ("recall", recall, True),
        ("roc_auc_score", roc_auc(scores, labels), True),
    ]


def calibrate(
    scores: np.ndarray,
    labels: np.ndarray,
    criterion: str,
    *,
    beta: float = 1.0,
    target_recall: float = 0.8,
    target_precision: float = 0.8,
) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``scores`` (rows × models): the threshold that maximises ``criterion`` and its value.

    Every distinct score is a candidate cut (``score >= cut`` is positive), plus "nothing positive".
    ``precision_at_target_recall`` keeps cuts whose recall reaches the target and maximises precision;
    ``recall_at_target_precision`` the converse (a model that never reaches the target precision
    scores 0, at its most precise cut). Works model-major (one contiguous row per model) because
    sorting along a contiguous axis is several times faster than along a strided one.
    """
    rows, models = scores.shape
    if rows == 0:
        return np.zeros(models), np.zeros(models)
    by_model = np.ascontiguousarray(scores.T)
    order = np.argsort(-by_model, axis=1)
    ordered = np.take_along_axis(by_model, order, axis=1)
    tp = np.cumsum((labels > 0.5)[order], axis=1, dtype=np.float64)
    taken = np.arange(1, rows + 1, dtype=np.float64)
    fp = taken - tp
    total_positive = tp[:, -1:]
    negatives = rows - total_positive
    # a cut is valid at the end of a run of equal scores (ties move together)
    valid = np.ones((models, rows), dtype=bool)
    valid[:, :-1] = ordered[:, :-1] != ordered[:, 1:]
    precision = tp / taken
    recall = np.divide(tp, total_positive, out=np.zeros_like(tp), where=total_positive > 0)
    if criterion == "accuracy":
        value = (tp + negatives - fp) / rows
        empty = negatives[:, 0] / rows
    elif criterion == "f_beta":
        b2 = beta * beta
        denominator = b2 * precision + recall
        value = np.divide(
            (1 + b2) * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0
        )
        empty = np.zeros(models)
    elif criterion == "precision_at_target_recall":
        value = np.where(recall >= target_recall, precision, -1.0)
        empty = np.full(models, -1.0)
    elif criterion == "recall_at_target_precision":
        value = np.where(precision >= target_precision, recall, -1.0)
        empty = np.full(models, -1.0)
    else:
        raise ValueError(f"unknown criterion {criterion}")
    value[~valid] = -np.inf
    model_index = np.arange(models)
    best_cut = np.argmax(value, axis=1)
    best_value = value[model_index, best_cut]
    thresholds = ordered[model_index, best_cut].astype(np.float64)
    use_empty = empty > best_value
    above_all = np.nextafter(ordered[:, 0].astype(np.float32), np.float32(np.inf)).astype(np.float64)
    thresholds = np.where(use_empty, above_all, thresholds)
    best_value = np.where(use_empty, empty, best_value)
    if criterion == "recall_at_target_precision" and np.any(best_value < 0):
        unreachable = best_value < 0
        most_precise = np.argmax(np.where(valid, precision, -np.inf), axis=1)
        thresholds = np.where(unreachable, ordered[model_index, most_precise], thresholds)
        best_value = np.where(unreachable, 0.0, best_value)
    return thresholds, np.maximum(best_value, 0.0)


# -- multiclass --------------------------------------------------------------------------------


def multiclass_report(
    objective: tuple[str, float], probabilities: np.ndarray, labels: np.ndarray, top_k: int, beta: float
) -> Report:
    classes = probabilities.shape[1]
    truth = labels.astype(np.intp)
    rows = np.arange(truth.shape[0])
    predicted = np.argmax(probabilities, axis=1)
    true_score = probabilities[rows, truth]
    rank = (probabilities > true_score[:, None]).sum(axis=1) + 1
    n = max(1, truth.shape[0])
    hits = np.bincount(truth[predicted == truth], minlength=classes).astype(np.float64)
    actual = np.bincount(truth, minlength=classes).astype(np.float64)
    guessed = np.bincount(predicted, minlength=classes).astype(np.float64)
    present = (actual > 0) | (guessed > 0)
    precision = np.divide(hits, guessed, out=np.zeros(classes), where=guessed > 0)
    recall = np.divide(hits, actual, out=np.zeros(classes), where=actual > 0)
    b2 = beta * beta
    f_denominator = b2 * precision + recall
    f_scores = np.divide(
        (1 + b2) * precision * recall, f_denominator, out=np.zeros(classes), where=f_denominator > 0
    )
    log_loss = float(-np.mean(np.log(np.clip(true_score.astype(np.float64), 1e-15, 1.0))))
    return [
        (objective[0], objective[1], False),
        ("multiclass_accuracy", float(np.count_nonzero(predicted == truth)) / n, True),
        (f"multiclass_top_k_accuracy_{top_k}", float(np.count_nonzero(rank <= top_k)) / n, True),
        ("dcg", float(np.mean(1.0 / np.log2(1.0 + rank))) if truth.size else 0.0, True),
        ("macro_recall", float(recall[present].mean()) if present.any() else 0.0, True),
        ("macro_precision", float(precision[present].mean()) if present.any() else 0.0, True),
        (f"macro_f_{beta_suffix(beta)}", float(f_scores[present].mean()) if present.any() else 0.0, True),
        (
            "multiclass_balanced_accuracy",
            float(recall[actual > 0].mean()) if (actual > 0).any() else 0.0,
            True,
        ),
        ("multiclass_log_loss", log_loss, True),
    ]


# -- regression --------------------------------------------------------------------------------


def regression_report(objective: tuple[str, float], predictions: np.ndarray, labels: np.ndarray) -> Report:
    residual = predictions.astype(np.float64) - labels.astype(np.float64)
    mse = float(np.mean(residual * residual)) if residual.size else 0.0
    spread = float(np.sum((labels - labels.mean()) ** 2)) if labels.size else 0.0
    r2 = 1.0 - float(np.sum(residual * residual)) / spread if spread > 0 else math.nan
    return [
        (objective[0], objective[1], False),
        ("mse", mse, False),
        ("rmse", math.sqrt(mse), False),
        ("absolute_loss", float(np.mean(np.abs(residual))) if residual.size else 0.0, False),
        # r2 is printed for users; SageMaker defines no regex for it, so tuning cannot target it
        ("r2", r2, True),
    ]
