"""The container's k-fold mode (``_kfold``, ``_num_cv_round``), used by Autopilot.

Train and validation are merged; each of ``_num_cv_round`` repeats splits them into ``_kfold``
folds (stratified for classification), trains one model per fold, prints the mean of the last
round's metrics as a CV line ``[<num_round>]#011train-m:..#011validation-m:..``, saves the models
as ``xgboost-model-<i>`` and writes the out-of-fold predictions to ``predictions.csv``.

Differences from the container, on purpose: each fold is evaluated (and early-stopped) on its
own held-out rows, where the container's watchlist stays the original channels, which overlap
the fold's training rows; and the folds are seeded with ``seed`` so a job can be repeated.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

from forgeml.algorithms.base import TrainingContext
from forgeml.algorithms.xgboost.callbacks import TAB, EvalLinePrinter
from forgeml.algorithms.xgboost.config import TrainingPlan
from forgeml.algorithms.xgboost.data import Labelled, build_matrix
from forgeml.algorithms.xgboost.train import MODEL_NAME, fit, save_booster

PREDICTIONS_FILE = "predictions.csv"


def _merge(train: Labelled, validation: Labelled | None) -> Labelled:
    if validation is None:
        return train
    import scipy.sparse as sp

    def stack(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        return None if a is None or b is None else np.concatenate([a, b])

    if sp.issparse(train.features) or sp.issparse(validation.features):
        features: Any = sp.vstack([sp.csr_matrix(train.features), sp.csr_matrix(validation.features)], format="csr")
    else:
        features = np.concatenate([train.features, validation.features])
    return Labelled(
        features,
        np.concatenate([train.labels, validation.labels]),
        stack(train.weights, validation.weights),
        stack(train.lower_bound, validation.lower_bound),
        stack(train.upper_bound, validation.upper_bound),
    )


def cv_line(num_round: int, results: list[dict[str, dict[str, list[float]]]]) -> str:
    """Mean of each metric's last value over ``results``, train and validation side by side."""
    parts = [f"[{num_round}]"]
    for metric in results[0]["train"]:
        for data in ("train", "validation"):
            mean = float(np.mean([result[data][metric][-1] for result in results]))
            parts.append(f"{data}-{metric}:{mean:.5f}")
    return TAB.join(parts)


class _OutOfFold:
    """Held-out predictions per row and repeat, aggregated like the container's recorder."""

    def __init__(self, truth: np.ndarray, repeats: int, classification: bool) -> None:
        self.truth = truth
        self.classification = classification
        self.predicted = np.zeros((len(truth), repeats))
        self.probability = np.zeros((len(truth), repeats))
        self.filled = np.zeros(len(truth), dtype=np.int64)

    def record(self, rows: np.ndarray, predictions: np.ndarray) -> None:
        column = self.filled[rows]
        if self.classification:
            if predictions.ndim > 1:
                labels = np.argmax(predictions, axis=1)
                probability = predictions[np.arange(len(labels)), labels]
            else:
                labels = (predictions > 0.5).astype(np.int64)
                probability = predictions
            self.predicted[rows, column] = labels
            self.probability[rows, column] = probability
        else:
            self.predicted[rows, column] = predictions
        self.filled[rows] += 1

    def table(self) -> np.ndarray:
        columns = [self.truth]
        if self.classification:
            columns.append(self.probability.mean(axis=1))
            columns.append(stats.mode(self.predicted, axis=1, keepdims=False).mode)
        else:
            columns.append(self.predicted.mean(axis=1))
        return np.column_stack(columns)


def run_kfold(ctx: TrainingContext, plan: TrainingPlan, train: Labelled, validation: Labelled | None) -> None:
    data = _merge(train, validation)
    kfold, repeats = int(plan.kfold or 2), plan.num_cv_round
    ctx.log.info(f"Run {repeats}-round of {kfold}-fold cross validation with {data.n_rows} rows")
    seed = int(plan.params.get("seed", 0))
    if plan.is_classification:
        splits = RepeatedStratifiedKFold(n_splits=kfold, n_repeats=repeats, random_state=seed).split(
            np.zeros(data.n_rows), data.labels
        )
    else:
        splits = RepeatedKFold(n_splits=kfold, n_repeats=repeats, random_state=seed).split(np.zeros(data.n_rows))
    out_of_fold = _OutOfFold(data.labels, repeats, plan.is_classification)
    results: list[dict[str, dict[str, list[float]]]] = []
    for fold, (train_rows, held_out) in enumerate(splits):
        ctx.log.info(f"Train cross validation fold {fold % kfold + 1}")
        dtrain = build_matrix(data.take(train_rows), plan)
        dheld_out = build_matrix(data.take(held_out), plan, ref=dtrain)
        history: dict[str, dict[str, list[float]]] = {}
        booster = fit(plan, dtrain, dheld_out, [EvalLinePrinter(ctx.log.stream)], plan.num_round, history=history)
        save_booster(booster, ctx.model_dir / f"{MODEL_NAME}-{fold}")
        out_of_fold.record(held_out, np.asarray(booster.predict(dheld_out)))
        results.append(history)
        if len(results) % kfold == 0:
            ctx.log.info(f"The metrics of round {len(results) // kfold} cross validation")
            _print(ctx, cv_line(plan.num_round, results[-kfold:]))
    if repeats > 1:
        ctx.log.info(f"The overall metrics of {repeats}-round cross validation")
        _print(ctx, cv_line(plan.num_round, results))
    path = ctx.output_data_dir / PREDICTIONS_FILE
    ctx.log.info(f"Storing predictions on validation set(s) in {path}")
    np.savetxt(path, out_of_fold.table(), delimiter=",", fmt="%f")


def _print(ctx: TrainingContext, line: str) -> None:
    ctx.log.stream.write(line + "\n")
    ctx.log.stream.flush()

