"""K-Means training: stream the train channel, shrink the centres, write ``model_algo-1``, score test."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from forgeml.algorithms.base import TrainingContext
from forgeml.algorithms.common import mxnet_ndarray
from forgeml.algorithms.common.artifact import MODEL_FILE
from forgeml.algorithms.common.batches import EpochBatches
from forgeml.algorithms.kmeans.hyperparameters import (
    SCHEMA,
    resolved_extra_center_factor,
    resolved_num_trials,
)
from forgeml.algorithms.kmeans.webscale import LloydResult, StreamingCenters, nearest_centers, reduce_centers
from forgeml.algorithms.logging import AlgorithmLogger
from forgeml.errors import ClientError

# SageMaker exposes no seed for K-Means; a fixed one makes a job reproducible.
SEED = 0


def train(ctx: TrainingContext) -> None:
    hp = ctx.hyperparameters
    log = ctx.log
    log.configuration(SCHEMA.defaults(), ctx.raw_hyperparameters, hp)
    started = time.perf_counter()
    rng = np.random.default_rng(SEED)
    k = int(hp["k"])
    batch_size = int(hp["mini_batch_size"])
    epochs = int(hp["epochs"])
    wanted_centers = k * resolved_extra_center_factor(hp)
    source = EpochBatches(
        ctx.channels["train"], int(hp["feature_dim"]), batch_size, densify=bool(hp["force_dense"])
    )

    state: StreamingCenters | None = None
    total_records = total_batches = 0
    for epoch in range(epochs):
        epoch_start = time.perf_counter()
        records = batches = 0
        squared = 0.0
        for batch in source.epoch():
            if state is None:
                state = _initial_centers(
                    batch.features, k, wanted_centers, batch_size, str(hp["init_method"]), rng, hp, log
                )
            squared += state.partial_fit(batch.features)
            records += batch.n_rows
            batches += 1
        total_records += records
        total_batches += batches
        elapsed = max(time.perf_counter() - epoch_start, 1e-9)
        # SageMaker's train:msd regex ('host=\S+, train msd') leaves no room for an epoch field, so
        # the per-epoch value (mean squared distance of the epoch's points to their centre at the
        # moment they were assigned) is printed without one.
        log.quality_metric("train", "msd", squared / records)
        log.metrics(
            {
                "Total Records Seen": total_records,
                "Total Batches Seen": total_batches,
                "Number of Records Since Last Reset": records,
                "Number of Batches Since Last Reset": batches,
            },
            epoch=epoch,
            Meta="training_data_iter",
        )
        log.progress(round(100.0 * (epoch + 1) / epochs, 2))
        log.throughput(records / elapsed)
    assert state is not None  # EpochBatches raises ClientError on an empty channel

    centroids = _shrink(state, k, hp, rng, log)
    mxnet_ndarray.save(ctx.model_dir / MODEL_FILE, [centroids.astype(np.float32)])
    log.metrics({"totaltime": (time.perf_counter() - started) * 1000.0, "model.bytes": centroids.size * 4})

    test = ctx.channels.get("test")
    if test is not None:
        _score_test(
            EpochBatches(test, int(hp["feature_dim"]), batch_size, densify=bool(hp["force_dense"])),
            centroids,
            hp,
            log,
        )


def _initial_centers(
    features: Any,
    k: int,
    wanted: int,
    batch_size: int,
    init_method: str,
    rng: np.random.Generator,
    hp: dict[str, Any],
    log: AlgorithmLogger,
) -> StreamingCenters:
    rows = features.shape[0]
    if rows < batch_size:
        log.warning(f"Effective batch size used to initialize is {rows}")
    if rows < k:
        raise ClientError(
            f"k={k} but the first mini-batch holds only {rows} records: the initial centres are drawn from it, "
            "so it needs at least k records (raise mini_batch_size, lower k, or add data)"
        )
    n_centers = min(wanted, rows)
    if n_centers < wanted:
        log.warning(
            f"Using {n_centers} initial centers instead of {wanted}: the first mini-batch holds {rows} records"
        )
    return StreamingCenters.from_first_batch(
        features, n_centers, init_method, rng, int(hp["half_life_time_size"])
    )


def _shrink(
    state: StreamingCenters, k: int, hp: dict[str, Any], rng: np.random.Generator, log: AlgorithmLogger
) -> np.ndarray:
    """Local Lloyd's: reduce the streaming centres to k, weighted by the points each absorbed."""
    log.info(f"shrinking {state.centers.shape[0]} centers into {k}")

    def report(trial: int, result: LloydResult) -> None:
        log.info(f"local kmeans attempt #{trial}. Current mean square distance {result.msd!r}")

    best = reduce_centers(
        state.centers,
        state.counts,
        k,
        init_method=str(hp["local_lloyd_init_method"]),
        max_iter=int(hp["local_lloyd_max_iter"]),
        tol=float(hp["local_lloyd_tol"]),
        num_trials=resolved_num_trials(hp),
        rng=rng,
        on_trial=report,
    )
    log.info(f"finished shrinking process. Mean Square Distance = {best.msd!r}")
    return best.centers


def _score_test(
    source: EpochBatches, centroids: np.ndarray, hp: dict[str, Any], log: AlgorithmLogger
) -> None:
    """test:msd / test:ssd, the squared distance of each test record to its closest centroid."""
    centers32 = centroids.astype(np.float32)
    ssd = 0.0
    records = 0
    for batch in source.epoch():
        _, squared = nearest_centers(batch.features, centers32)
        ssd += float(squared.sum())
        records += batch.n_rows
    values = {"msd": ssd / records, "ssd": ssd}
    for metric in hp["eval_metrics"]:
        log.quality_metric("test", metric, values[metric])
