"""Training RCF: one pass of reservoir sampling, a forest grown on the sample, an optional test.

The sample of ``num_trees * num_samples_per_tree`` rows is split into ``num_trees`` partitions, one
per tree; when the channel has fewer rows, each tree gets ``floor(rows / num_trees)`` (as SageMaker
logs in ``ForestInfo``). Log lines follow the observed RCF job log.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.base import ChannelInput, TrainingContext
from forgeml.algorithms.common.batches import conform_features
from forgeml.algorithms.random_cut_forest import artifact
from forgeml.algorithms.random_cut_forest.evaluation import anomaly_threshold, test_metrics
from forgeml.algorithms.random_cut_forest.forest import Forest, build_forest
from forgeml.algorithms.random_cut_forest.hyperparameters import SCHEMA
from forgeml.algorithms.random_cut_forest.sampling import Reservoir, as_dense
from forgeml.data.dataset import RecordBatch
from forgeml.errors import ClientError

SEED = 1


def conform(batch: RecordBatch, feature_dim: int, channel: str) -> np.ndarray | sp.csr_matrix:
    """The batch's features, checked against ``feature_dim`` (sparse rows may be narrower) and finite."""
    hint = ""
    if batch.labels is not None and batch.n_features + 1 == feature_dim and channel == "train":
        hint = "; CSV training data for RCF has no label column: use content type 'text/csv;label_size=0'"
    return conform_features(batch.features, feature_dim, channel, hint)


def sample_channel(channel: ChannelInput, hp: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A uniform sample of the channel (random order) and how many rows it had."""
    reservoir = Reservoir(hp["num_trees"] * hp["num_samples_per_tree"], hp["feature_dim"], rng)
    for batch in channel.iter_batches(hp["mini_batch_size"]):
        if batch.n_rows:
            reservoir.add(conform(batch, hp["feature_dim"], channel.name))
    return reservoir.sample(), reservoir.seen


def evaluate_test(ctx: TrainingContext, forest: Forest) -> None:
    test = ctx.channels["test"]
    batch = test.read()
    if batch.n_rows == 0:
        raise ClientError("the test channel holds no records")
    if batch.labels is None:
        raise ClientError(
            "the test channel needs a label (1 = anomaly, 0 = normal) in the first column: "
            "use content type 'text/csv;label_size=1'"
        )
    labels = np.asarray(batch.labels, dtype=np.float64).reshape(batch.n_rows, -1)[:, 0]
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ClientError("test labels must be 1 (anomaly) or 0 (normal)")
    features = as_dense(conform(batch, forest.feature_dim, "test"))
    scores = forest.score(features)
    ctx.log.info(f"Test data scored: {batch.n_rows} records, anomaly threshold {anomaly_threshold(scores)!r} (mean + 3 std)")
    for name, value in test_metrics(scores, labels, ctx.hyperparameters["eval_metrics"]):
        ctx.log.quality_metric("test", name, value, maximize=True)
        ctx.log.score("test", name, value)


def train(ctx: TrainingContext) -> None:
    hp = ctx.hyperparameters
    log = ctx.log
    started = time.time()
    log.configuration(SCHEMA.defaults(), ctx.raw_hyperparameters, hp)
    rng = np.random.default_rng(SEED)
    log.metrics({"initialize.time": (time.time() - started) * 1000.0})
    update_start = time.time()
    sample, seen = sample_channel(ctx.channels["train"], hp, rng)
    if seen == 0:
        raise ClientError("the train channel holds no records")
    num_trees = hp["num_trees"]
    per_tree = min(hp["num_samples_per_tree"], sample.shape[0] // num_trees)
    if per_tree == 0:
        raise ClientError(
            f"the train channel has {seen} records but num_trees={num_trees} needs at least one record per tree"
        )
    update_seconds = max(time.time() - update_start, 1e-9)
    log.info(f"#progress_metric: host={ctx.current_host}, completed 100 % epochs")
    log.throughput(seen / update_seconds)
    log.metrics({"update.time": update_seconds * 1000.0, "Total Records Seen": float(seen)})
    fit_start = time.time()
    forest = build_forest(sample[: num_trees * per_tree], num_trees, per_tree, rng)
    log.info(
        f"ForestInfo{{num_trees: {num_trees}, num_samples_in_forest: {num_trees * per_tree}, "
        f"num_samples_per_tree: {per_tree}, feature_dim: {hp['feature_dim']}}}"
    )
    log.metrics({"fit_model.time": (time.time() - fit_start) * 1000.0})
    log.info("Master node: Serializing the RandomCutForest model")
    serialize_start = time.time()
    path = artifact.save(forest, ctx.model_dir)
    log.metrics(
        {"serialize_model.time": (time.time() - serialize_start) * 1000.0, "model.bytes": float(path.stat().st_size)}
    )
    if ctx.channel("test") is None:
        log.info("Test data is not provided.")
    else:
        evaluate_test(ctx, forest)
    log.metrics({"totaltime": (time.time() - started) * 1000.0})
