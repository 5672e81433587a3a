"""Training FM with mini-batch Adam on sparse or dense RecordIO-protobuf, logged as SageMaker does.

SageMaker does not name FM's optimizer (UNVERIFIED). Its hyperparameters are MXNet optimizer
arguments (``eps``, ``clip_gradient``, ``rescale_grad``) plus a learning rate and a weight decay per
term, and its learning-rate defaults (0.1 / 0.001 / 0.0001) are Adam-sized steps, so MXNet's Adam
runs here with one ``AdamSlot`` per term: ``bias_lr``/``bias_wd``, ``linear_lr``/``linear_wd``,
``factors_lr``/``factors_wd``. The loss
gradient per row is ``prediction - label`` (MXNet's ``LinearRegressionOutput`` and
``LogisticRegressionOutput``), summed over the batch and scaled by ``rescale_grad`` (default
``1/batch size``). Sparse batches update only the feature rows they touch, as MXNet's lazy update.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from forgeml.algorithms.base import TrainingContext
from forgeml.algorithms.common.adam import DEFAULT_EPS, Adam, AdamSlot
from forgeml.algorithms.factorization_machines import artifact
from forgeml.algorithms.factorization_machines.batches import LabelledBatches
from forgeml.algorithms.factorization_machines.hyperparameters import SCHEMA
from forgeml.algorithms.factorization_machines.metrics import MetricAccumulator
from forgeml.algorithms.factorization_machines.model import (
    Features,
    FMModel,
    forward,
    initial_parameters,
    sigmoid,
)
from forgeml.algorithms.logging import AlgorithmLogger

# Batch-level metric lines every this many batches, starting with each epoch's first batch
# (SageMaker's FM interval is not documented; UNVERIFIED).
BATCH_METRICS_INTERVAL = 500
SEED = 1


class FMTrainer:
    """Holds the parameters and optimizer state; ``fit_batch`` is one Adam step."""

    def __init__(self, hp: dict[str, Any], rng: np.random.Generator) -> None:
        self.classifier = hp["predictor_type"] == "binary_classifier"
        w0, w, v = initial_parameters(hp, hp["feature_dim"], hp["num_factors"], rng)
        self.bias = AdamSlot(w0, hp["bias_lr"], hp["bias_wd"])
        self.linear = AdamSlot(w, hp["linear_lr"], hp["linear_wd"])
        self.factors = AdamSlot(v, hp["factors_lr"], hp["factors_wd"])
        self.adam = Adam(eps=hp["eps"] if hp["eps"] is not None else DEFAULT_EPS, clip=hp["clip_gradient"])
        self.rescale_grad: float | None = hp["rescale_grad"]

    def model(self, predictor_type: str) -> FMModel:
        return FMModel(predictor_type, self.bias.weight, self.linear.weight, self.factors.weight)

    def fit_batch(self, x: Features, y: np.ndarray) -> np.ndarray:
        """One update from a batch; returns the batch's predictions made before the update."""
        if sp.issparse(x):
            rows, local = _compact_columns(x)
        else:
            rows, local = None, x
        w = self.linear.weight if rows is None else self.linear.weight[rows]
        v = self.factors.weight if rows is None else self.factors.weight[rows]
        predictions, grad_w0, grad_w, grad_v = gradients(local, y, self.bias.weight, w, v, self.classifier)
        rescale = self.rescale_grad if self.rescale_grad is not None else 1.0 / y.shape[0]
        self.adam.step(self.bias, grad_w0, rescale)
        self.adam.step(self.linear, grad_w, rescale, rows)
        self.adam.step(self.factors, grad_v, rescale, rows)
        return predictions


def gradients(
    x: Features, y: np.ndarray, w0: np.ndarray, w: np.ndarray, v: np.ndarray, classifier: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Predictions and the batch-summed loss gradients for ``w0``, ``w`` and ``v``.

    ``d loss / d raw = prediction - label`` for both losses; ``d raw / d v_if =
    x_i (x V)_f - v_if x_i^2``.
    """
    raw, xv, x2 = forward(x, w0, w, v)
    predictions = sigmoid(raw) if classifier else raw
    g = (predictions - y).astype(np.float32)
    x_t = x.T
    grad_w = np.asarray(x_t @ g).ravel()
    grad_v = np.asarray(x_t @ (xv * g[:, None])) - v * np.asarray(x2.T @ g).reshape(-1, 1)
    return predictions, np.array([g.sum()], dtype=np.float32), grad_w, grad_v


def _compact_columns(x: sp.csr_matrix) -> tuple[np.ndarray, sp.csr_matrix]:
    """The batch's touched feature ids and the batch re-indexed onto just those columns."""
    rows, inverse = np.unique(x.indices, return_inverse=True)
    local = sp.csr_matrix((x.data, inverse.astype(np.int32), x.indptr), shape=(x.shape[0], rows.shape[0]))
    return rows, local


def evaluate(model: FMModel, batches: LabelledBatches) -> MetricAccumulator:
    accumulator = MetricAccumulator(model.is_classifier)
    for x, y in batches.pairs():
        accumulator.update(model.predict(x), y)
    return accumulator


def fit(hp: dict[str, Any], epoch_batches: Callable[[], Iterable[tuple[Features, np.ndarray]]], log: AlgorithmLogger) -> FMModel:
    """Train for ``epochs`` passes (``epoch_batches()`` yields one pass), logging as SageMaker does."""
    trainer = FMTrainer(hp, np.random.default_rng(SEED))
    epochs = hp["epochs"]
    accumulator = MetricAccumulator(trainer.classifier)
    for epoch in range(epochs):
        accumulator.reset()
        epoch_start = time.time()
        for batch, (x, y) in enumerate(epoch_batches()):
            accumulator.update(trainer.fit_batch(x, y), y)
            if batch % BATCH_METRICS_INTERVAL == 0:
                for name, value, maximize in accumulator.values():
                    log.quality_metric("train", name, value, epoch=epoch, batch=batch, maximize=maximize)
        seconds = max(time.time() - epoch_start, 1e-9)
        for name, value, maximize in accumulator.values():
            log.quality_metric("train", name, value, epoch=epoch, maximize=maximize)
        log.metrics({"update.time": seconds * 1000.0, "Total Records Seen": float(accumulator.rows)}, epoch=epoch, model=0)
        log.progress(100.0 * (epoch + 1) / epochs)
        log.throughput(accumulator.rows / seconds)
    for name, value, maximize in accumulator.values():
        log.quality_metric("train", name, value, maximize=maximize)
    return trainer.model(hp["predictor_type"])


def train(ctx: TrainingContext) -> None:
    hp = ctx.hyperparameters
    log = ctx.log
    start = time.time()
    log.configuration(SCHEMA.defaults(), ctx.raw_hyperparameters, hp)
    classifier = hp["predictor_type"] == "binary_classifier"
    train_batches = LabelledBatches(ctx.channels["train"], hp["feature_dim"], hp["mini_batch_size"], classifier)
    log.metrics({"initialize.time": (time.time() - start) * 1000.0}, epoch=0, model=0)
    # Batch-sized products: multi-threaded BLAS only adds synchronisation (dense input).
    with threadpool_limits(limits=1, user_api="blas"):
        model = fit(hp, train_batches.pairs, log)
    test = ctx.channel("test")
    if test is None:
        log.info("Test data is not provided.")
    else:
        scores = evaluate(model, LabelledBatches(test, hp["feature_dim"], hp["mini_batch_size"], classifier))
        for name, value, maximize in scores.values():
            log.quality_metric("test", name, value, maximize=maximize)
            log.score("test", name, value)
    artifact.save(model, ctx.model_dir, {"mini_batch_size": hp["mini_batch_size"], "epochs": hp["epochs"]})
    log.metrics({"totaltime": (time.time() - start) * 1000.0}, epoch=hp["epochs"] - 1, model=0)
