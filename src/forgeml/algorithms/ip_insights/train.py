"""Training IP Insights as a discriminator between observed pairs and generated negatives.

Each mini-batch of ``mini_batch_size`` observed (entity, IP) pairs (label 1) is joined by
``random_negative_sampling_rate`` pairs per row that keep the entity and draw a uniformly random
IPv4 address, and ``shuffled_negative_sampling_rate`` pairs per row that keep the entity and take
the IP of another row of the batch (label 0). The loss is binary cross-entropy on
``sigmoid(<entity embedding, ip embedding>)``, minimised with Adam at ``learning_rate`` with L2
``weight_decay``; embedding rows a batch does not touch are left alone (MXNet's lazy update).

The batch's scores form a sparse bilinear map between its distinct entities and its encoded IPs,
so the gradients are two sparse-dense products, and shuffled negatives reuse the IPs already
encoded for the batch. The ``validation`` channel is scored every epoch as the AUC of observed
pairs against negatives drawn the same way (once, with a fixed seed), ``discriminator_auc``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from forgeml.algorithms.base import TrainingContext
from forgeml.algorithms.common.adam import Adam, AdamSlot
from forgeml.algorithms.ip_insights import artifact
from forgeml.algorithms.ip_insights.data import read_pairs
from forgeml.algorithms.ip_insights.encoding import entity_buckets, random_ipv4
from forgeml.algorithms.ip_insights.hyperparameters import SCHEMA
from forgeml.algorithms.ip_insights.model import IPInsightsModel, initial_model
from forgeml.algorithms.logging import AlgorithmLogger

SEED = 1


def cyclic_permutation(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation with no fixed point (one cycle), so a shuffled pair is never the original."""
    order = rng.permutation(size)
    perm = np.empty(size, dtype=np.int64)
    perm[order] = np.roll(order, -1)
    return perm


def negative_layout(count: int, random_rate: int, shuffled_rate: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Which entity row and which IP row make each pair, positives first.

    IP rows ``0..count-1`` are the observed IPs and ``count + i * random_rate + j`` the random ones.
    """
    rows = np.arange(count)
    entity = [rows, np.repeat(rows, random_rate)]
    ip = [rows, count + np.arange(count * random_rate)]
    if count > 1:
        for _ in range(shuffled_rate):
            entity.append(rows)
            ip.append(cyclic_permutation(count, rng))
    return np.concatenate(entity), np.concatenate(ip)


@dataclass
class Running:
    """Accuracy and cross-entropy over the pairs seen since the last reset."""

    pairs: int = 0
    correct: float = 0.0
    cross_entropy: float = 0.0

    def update(self, scores: np.ndarray, labels: np.ndarray) -> None:
        self.pairs += int(labels.shape[0])
        self.correct += float(np.sum((scores >= 0) == (labels > 0.5)))
        self.cross_entropy += float(np.logaddexp(0.0, -scores * (2.0 * labels - 1.0)).sum())

    def values(self) -> list[tuple[str, float, bool]]:
        n = max(self.pairs, 1)
        return [
            ("binary_classification_accuracy", self.correct / n, True),
            ("binary_classification_cross_entropy", self.cross_entropy / n, False),
        ]


class Trainer:
    """Adam state for every parameter array, and one update per mini-batch."""

    def __init__(self, model: IPInsightsModel, hp: dict[str, Any], rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self.random_rate = hp["random_negative_sampling_rate"]
        self.shuffled_rate = hp["shuffled_negative_sampling_rate"]
        lr, wd = hp["learning_rate"], hp["weight_decay"]
        self.entities = AdamSlot(model.entity_table, lr, wd)
        self.ip_table = AdamSlot(model.ip_table, lr, wd)
        self.weights = [AdamSlot(w, lr, wd) for w in model.weights]
        self.biases = [AdamSlot(b, lr, wd) for b in model.biases]
        self.adam = Adam()

    def fit_batch(self, entity_rows: np.ndarray, ips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One Adam step; returns the batch's pair scores (before the step) and labels."""
        count = entity_rows.shape[0]
        encoded_ips = np.concatenate([ips, random_ipv4(self.rng, count * self.random_rate)])
        pair_entity, pair_ip = negative_layout(count, self.random_rate, self.shuffled_rate, self.rng)
        labels = np.zeros(pair_ip.shape[0], dtype=np.float64)
        labels[:count] = 1.0
        grads = batch_gradients(self.model, entity_rows[pair_entity], encoded_ips, pair_ip, labels)
        rescale = 1.0 / pair_ip.shape[0]
        self.adam.step(self.entities, grads.entity_table, rescale, grads.entity_rows)
        self.adam.step(self.ip_table, grads.ip_table, rescale, grads.table_rows)
        for slot, grad in zip(self.weights, grads.weights, strict=True):
            self.adam.step(slot, grad, rescale)
        for slot, grad in zip(self.biases, grads.biases, strict=True):
            self.adam.step(slot, grad, rescale)
        return grads.scores, labels


@dataclass
class BatchGradients:
    """Gradients of the summed cross-entropy; embedding gradients only for the rows used."""

    scores: np.ndarray
    entity_rows: np.ndarray
    entity_table: np.ndarray
    table_rows: np.ndarray
    ip_table: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]


def batch_gradients(
    model: IPInsightsModel, pair_entities: np.ndarray, encoded_ips: np.ndarray, pair_ip: np.ndarray, labels: np.ndarray
) -> BatchGradients:
    """Scores of the pairs ``(pair_entities[k], encoded_ips[pair_ip[k]])`` and the loss gradients.

    Each IP is encoded once however many pairs use it; the residuals form a sparse
    (entities x IPs) matrix whose products with the two embedding blocks are the gradients.
    """
    ip_vectors, cache = model.encode(encoded_ips)
    entities, entity_index = np.unique(pair_entities, return_inverse=True)
    entity_vectors = model.entity_table[entities]
    scores = np.einsum("ij,ij->i", entity_vectors[entity_index], ip_vectors[pair_ip]).astype(np.float64)
    residual = (0.5 * (1.0 + np.tanh(0.5 * scores)) - labels).astype(np.float32)
    n_ips = encoded_ips.shape[0]
    bilinear = sp.csr_matrix((residual, (entity_index, pair_ip)), shape=(entities.shape[0], n_ips))
    grad_entities = np.asarray(bilinear @ ip_vectors)
    grad_w, grad_b, grad_inputs = model.backward(np.asarray(bilinear.T @ entity_vectors), cache)
    table_rows, table_index = np.unique(cache.rows.ravel(), return_inverse=True)
    scatter = sp.csr_matrix(
        (np.ones(table_index.shape[0], dtype=np.float32), (table_index, np.repeat(np.arange(n_ips), 3))),
        shape=(table_rows.shape[0], n_ips),
    )
    return BatchGradients(
        scores=scores,
        entity_rows=entities,
        entity_table=grad_entities,
        table_rows=table_rows,
        ip_table=np.asarray(scatter @ grad_inputs),
        weights=grad_w,
        biases=grad_b,
    )


def discriminator_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC from ranks (ties share their average rank)."""
    from scipy.stats import rankdata

    positive = labels > 0.5
    n_pos = int(positive.sum())
    n_neg = labels.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


class ValidationSet:
    """Validation pairs with their generated negatives, fixed for the whole run."""

    def __init__(self, entity_rows: np.ndarray, ips: np.ndarray, hp: dict[str, Any]) -> None:
        rng = np.random.default_rng(SEED + 1)
        count = entity_rows.shape[0]
        random_rate = hp["random_negative_sampling_rate"]
        all_ips = np.concatenate([ips, random_ipv4(rng, count * random_rate)])
        pair_entity, pair_ip = negative_layout(count, random_rate, hp["shuffled_negative_sampling_rate"], rng)
        self.entity_rows = entity_rows[pair_entity]
        self.ips = all_ips[pair_ip]
        self.labels = np.zeros(pair_ip.shape[0])
        self.labels[:count] = 1.0

    def auc(self, model: IPInsightsModel) -> float:
        return discriminator_auc(model.dot_products(self.entity_rows, self.ips), self.labels)


def fit(
    hp: dict[str, Any],
    entity_rows: np.ndarray,
    ips: np.ndarray,
    validation: ValidationSet | None,
    log: AlgorithmLogger,
) -> IPInsightsModel:
    """Train a fresh model for ``epochs`` passes over the pairs, logging as SageMaker does."""
    rng = np.random.default_rng(SEED)
    model = initial_model(hp["num_entity_vectors"], hp["vector_dim"], hp["num_ip_encoder_layers"], rng)
    trainer = Trainer(model, hp, rng)
    batch_size, epochs = hp["mini_batch_size"], hp["epochs"]
    interval = hp["batch_metrics_publish_interval"]
    count = ips.shape[0]
    last_auc = 0.5
    for epoch in range(epochs):
        epoch_start = tick = time.time()
        running = Running()
        order = rng.permutation(count)
        for batch, start in enumerate(range(0, count, batch_size)):
            chosen = order[start : start + batch_size]
            running.update(*trainer.fit_batch(entity_rows[chosen], ips[chosen]))
            if (batch + 1) % interval == 0:
                now = time.time()
                speed = interval * batch_size / max(now - tick, 1e-9)
                tick = now
                shown = "\t".join(f"{name}={value!r}" for name, value, _ in running.values())
                log.info(f"Epoch[{epoch}] Batch [{batch + 1}]\tSpeed: {speed:.2f} samples/sec\t{shown}")
                for name, value, maximize in running.values():
                    log.quality_metric("train", name, value, epoch=epoch, batch=batch + 1, maximize=maximize)
        seconds = max(time.time() - epoch_start, 1e-9)
        for name, value, maximize in running.values():
            log.quality_metric("train", name, value, epoch=epoch, maximize=maximize)
        if validation is not None:
            last_auc = validation.auc(model)
            log.quality_metric("validation", "discriminator_auc", last_auc, epoch=epoch, maximize=True)
        log.metrics({"update.time": seconds * 1000.0, "Total Records Seen": float(count)}, epoch=epoch)
        log.progress(100.0 * (epoch + 1) / epochs)
        log.throughput(count / seconds)
    if validation is not None:
        log.score("validation", "discriminator_auc", last_auc)
    return model


def train(ctx: TrainingContext) -> None:
    hp = ctx.hyperparameters
    log = ctx.log
    started = time.time()
    log.configuration(SCHEMA.defaults(), ctx.raw_hyperparameters, hp)
    pairs = read_pairs(ctx.channels["train"])
    num_vectors = hp["num_entity_vectors"]
    entity_rows = entity_buckets(pairs.entities, num_vectors)
    distinct = len(set(pairs.entities.tolist()))
    log.info(f"Training on {len(pairs)} (entity, IP) pairs with {distinct} distinct entities")
    if num_vectors < distinct:
        log.warning(
            f"num_entity_vectors={num_vectors} is below the {distinct} distinct entities; "
            "about twice the number of distinct entities is recommended"
        )
    validation = None
    if ctx.channel("validation") is not None:
        held_out = read_pairs(ctx.channels["validation"])
        validation = ValidationSet(entity_buckets(held_out.entities, num_vectors), held_out.ips, hp)
    log.metrics({"initialize.time": (time.time() - started) * 1000.0}, epoch=0)
    # The matrices here are small (batch x vector_dim); multi-threaded BLAS only adds
    # synchronisation, which turns pathological when the host's cores are busy.
    with threadpool_limits(limits=1, user_api="blas"):
        model = fit(hp, entity_rows, pairs.ips, validation, log)
    path = artifact.save(model, ctx.model_dir)
    log.metrics({"model.bytes": float(path.stat().st_size), "totaltime": (time.time() - started) * 1000.0}, epoch=hp["epochs"] - 1)
