"""k-NN training: sample, reduce, index, write the three files, score the test channel."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from forgeml.algorithms.base import TrainingContext
from forgeml.algorithms.common.batches import EpochBatches
from forgeml.algorithms.hyperparameters import AUTO
from forgeml.algorithms.knn.hyperparameters import PQ_M_VALUES, SCHEMA
from forgeml.algorithms.knn.index import IP, L2, PQ_CENTROIDS, FlatIndex, IVFIndex
from forgeml.algorithms.knn.model import KNNModel, Preprocess
from forgeml.algorithms.knn.reduction import Reducer
from forgeml.algorithms.knn.sampling import Reservoir
from forgeml.algorithms.logging import AlgorithmLogger
from forgeml.errors import ClientError

# SageMaker exposes no seed for sampling, projections or the index's k-means; fixed ones make a
# job reproducible (the reduction seed is stored in model_algo-1.json, as SageMaker does).
SEED = 0
REDUCTION_SEED = 3


def default_pq_m(dim: int) -> int:
    """faiss_index_pq_m when unset (SageMaker documents no default): ~4 dimensions per sub-vector."""
    return max(m for m in PQ_M_VALUES if m <= max(1, dim // 4))


def default_nprobe(nlist: int) -> int:
    """Lists scanned per query. SageMaker exposes no nprobe and its value is UNVERIFIED; √nlist keeps
    recall high at a fraction of a flat scan. It is stored in the index file (FAISS's nprobe field)."""
    return max(1, min(nlist, round(math.sqrt(nlist))))


def train(ctx: TrainingContext) -> None:
    hp = ctx.hyperparameters
    log = ctx.log
    log.configuration(SCHEMA.defaults(), ctx.raw_hyperparameters, hp)
    feature_dim = int(hp["feature_dim"])
    batch_size = int(hp["mini_batch_size"])
    index_type = str(hp["index_type"])
    reducer = None
    if hp["dimension_reduction_type"] is not None:
        reducer = Reducer(
            str(hp["dimension_reduction_type"]),
            REDUCTION_SEED,
            int(hp["dimension_reduction_target"]),
            feature_dim,
        )
    reduced_dim = reducer.target_dim if reducer is not None else feature_dim
    pq_m = None
    index_dim = reduced_dim
    if index_type == "faiss.IVFPQ":
        pq_m = int(hp["faiss_index_pq_m"] or default_pq_m(reduced_dim))
        index_dim = -(-reduced_dim // pq_m) * pq_m  # FAISS pads the width to a multiple of m with zeros
    prepare = Preprocess(reducer, index_dim, normalize=hp["index_metric"] == "COSINE")

    started = time.perf_counter()
    reservoir = Reservoir(int(hp["sample_size"]), np.random.default_rng(SEED))
    source = EpochBatches(ctx.channels["train"], feature_dim, batch_size, densify=False, need_labels=True)
    for batch in source.epoch():
        assert batch.labels is not None
        reservoir.offer(batch.features, batch.labels, prepare)
    vectors, labels = reservoir.result()
    elapsed = max(time.perf_counter() - started, 1e-9)
    log.info(
        f"sampled {vectors.shape[0]} of {reservoir.seen} training records (sample_size={hp['sample_size']})"
    )
    log.progress(100)
    log.throughput(reservoir.seen / elapsed)
    k = int(hp["k"])
    if k > vectors.shape[0]:
        raise ClientError(f"k={k} but only {vectors.shape[0]} training records were sampled to search among")

    model = KNNModel(
        k=k,
        predictor_type=str(hp["predictor_type"]),
        index=_build_index(vectors, hp, pq_m, log),
        labels=labels,
        feature_dim=feature_dim,
        prepare=prepare,
        index_type=index_type,
        index_metric=str(hp["index_metric"]),
    )
    model.save(ctx.model_dir)
    log.metrics(
        {"Total Records Seen": reservoir.seen, "model.bytes": vectors.nbytes + labels.nbytes},
        Meta="training_data_iter",
    )

    test = ctx.channels.get("test")
    if test is not None:
        _score_test(EpochBatches(test, feature_dim, batch_size, densify=False, need_labels=True), model, log)


def _build_index(
    vectors: np.ndarray, hp: dict[str, Any], pq_m: int | None, log: AlgorithmLogger
) -> FlatIndex | IVFIndex:
    metric = L2 if hp["index_metric"] == "L2" else IP  # COSINE = inner product of normalised vectors
    if hp["index_type"] == "faiss.Flat":
        return FlatIndex(metric, vectors)
    n = vectors.shape[0]
    nlist = hp["faiss_index_ivf_nlists"]
    nlist = max(1, int(math.sqrt(n))) if nlist == AUTO else int(nlist)
    if nlist > n:
        raise ClientError(
            f"faiss_index_ivf_nlists={nlist} but only {n} training records were sampled to cluster"
        )
    if pq_m is not None and n < PQ_CENTROIDS:
        raise ClientError(
            f"faiss.IVFPQ trains {PQ_CENTROIDS} centroids per sub-quantizer and needs at least that many sampled "
            f"records; only {n} were sampled"
        )
    log.info(
        f"building {hp['index_type']} index: nlist={nlist}, nprobe={default_nprobe(nlist)}"
        + (f", m={pq_m}" if pq_m else "")
    )
    return IVFIndex.build(vectors, metric, nlist, default_nprobe(nlist), SEED, pq_m)


def _score_test(source: EpochBatches, model: KNNModel, log: AlgorithmLogger) -> None:
    """test:accuracy (classifier) or test:mse (regressor), printed cumulatively per mini-batch."""
    classifier = model.predictor_type == "classifier"
    metric = "accuracy" if classifier else "mse"
    total = 0.0
    records = 0
    for batch in source.epoch():
        assert batch.labels is not None
        _, neighbour_labels = model.neighbours(batch.features)
        predictions = model.predict_from(neighbour_labels)
        if classifier:
            total += float(np.sum(predictions == batch.labels))
        else:
            total += float(np.sum((predictions.astype(np.float64) - batch.labels) ** 2))
        records += batch.n_rows
        log.quality_metric("test", metric, total / records, maximize=classifier)
    log.score("test", metric, total / records)
