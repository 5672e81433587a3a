"""PCA training: one streaming pass to a summary, one decomposition, ``model_algo-1`` out."""

from __future__ import annotations

import time

import numpy as np

from forgeml.algorithms.base import TrainingContext
from forgeml.algorithms.common import mxnet_ndarray
from forgeml.algorithms.common.artifact import MODEL_FILE
from forgeml.algorithms.common.batches import EpochBatches
from forgeml.algorithms.logging import AlgorithmLogger
from forgeml.algorithms.pca.hyperparameters import SCHEMA, sketch_rows
from forgeml.algorithms.pca.model import PCAModel
from forgeml.algorithms.pca.summaries import CovarianceSummary, SketchSummary

# SageMaker exposes no seed for the randomized sketch; a fixed one makes a job reproducible.
SEED = 0


def train(ctx: TrainingContext) -> None:
    hp = ctx.hyperparameters
    log = ctx.log
    log.configuration(SCHEMA.defaults(), ctx.raw_hyperparameters, hp)
    feature_dim = int(hp["feature_dim"])
    num_components = int(hp["num_components"])
    subtract_mean = bool(hp["subtract_mean"])
    densify = bool(hp["force_dense"])
    source = EpochBatches(ctx.channels["train"], feature_dim, int(hp["mini_batch_size"]), densify=densify)
    summary: CovarianceSummary | SketchSummary
    if hp["algorithm_mode"] == "randomized":
        summary = SketchSummary(feature_dim, sketch_rows(hp), np.random.default_rng(SEED))
    else:
        summary = CovarianceSummary(feature_dim)

    started = time.perf_counter()
    records = batches = 0
    for batch in source.epoch():
        summary.add(batch.features)
        records += batch.n_rows
        batches += 1
    elapsed = max(time.perf_counter() - started, 1e-9)
    log.metrics(
        {"Total Records Seen": records, "Total Batches Seen": batches}, epoch=0, Meta="training_data_iter"
    )
    log.progress(100)
    log.throughput(records / elapsed)

    finalize_start = time.perf_counter()
    components = summary.components(num_components, subtract_mean)
    model = PCAModel(
        components.s.astype(np.float32),
        components.v.astype(np.float32),
        components.mean.astype(np.float32) if subtract_mean else None,
    )
    mxnet_ndarray.save(ctx.model_dir / MODEL_FILE, model.arrays())
    log.metrics({"finalize.time": (time.perf_counter() - finalize_start) * 1000.0})

    test = ctx.channels.get("test")
    if test is not None:
        _score_test(EpochBatches(test, feature_dim, int(hp["mini_batch_size"]), densify=densify), model, log)


def _score_test(source: EpochBatches, model: PCAModel, log: AlgorithmLogger) -> None:
    """Mean squared reconstruction error of the test records (per record, summed over features).

    SageMaker says the test channel is "scored by the final algorithm" but publishes neither the
    metric's name nor a metric definition for it (UNVERIFIED); this is the natural PCA score, printed
    in the usual #quality_metric shape.
    """
    total = 0.0
    records = 0
    for batch in source.epoch():
        total += float(model.reconstruction_errors(batch.features).sum())
        records += batch.n_rows
    log.quality_metric("test", "reconstruction_error", total / records)
