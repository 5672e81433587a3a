"""A channel as epochs of fixed-size mini-batches, its features checked against ``feature_dim``.

Why it exists: K-Means, PCA, k-NN and Factorization Machines all stream a channel in
``mini_batch_size`` pieces, and they, Linear Learner and Random Cut Forest all check the data's
width against ``feature_dim`` before any maths; each had its own copy of both, with drifting error
messages. In File mode the channel is parsed once and sliced for every epoch (re-parsing per epoch
would dominate the run); in Pipe mode each epoch reads the next FIFO (``ChannelInput`` waits for
it), so memory stays bounded by one batch. Both paths hand out batches of exactly ``batch_size``
rows (the last one may be short) with ``feature_dim`` columns, and turn data problems into
``ClientError`` messages the user can act on.

What stays in the algorithms: Linear Learner's shuffling, scaler sample and ``feature_dim=auto``,
the label rules of each predictor type, Random Cut Forest's reservoir sampling.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.base import ChannelInput
from forgeml.data.dataset import Features, RecordBatch, concat_batches
from forgeml.errors import ClientError


def width_error(feature_dim: int, channel: str, width: int, hint: str = "") -> ClientError:
    """``feature_dim=22 but the train channel has 21 features`` (+ ``hint``)."""
    return ClientError(f"feature_dim={feature_dim} but the {channel} channel has {width} features{hint}")


def csv_label_hint(channel: ChannelInput) -> str:
    """For text/csv channels: the usual cause of a width mismatch is the label column(s)."""
    if channel.content_type.lower().startswith("text/csv"):
        return (
            " (in text/csv the first label_size columns are labels, not features: "
            "check the content type's label_size)"
        )
    return ""


def conform_features(features: Any, feature_dim: int, channel: str, hint: str = "") -> Features:
    """float32 features exactly ``feature_dim`` wide: dense C-ordered, or CSR (a sparse record's width
    is only its declared shape, so narrower sparse batches are widened); NaN and infinity refused."""
    width = int(features.shape[1])
    conformed: Features
    if sp.issparse(features):
        if width > feature_dim:
            raise width_error(feature_dim, channel, width, hint)
        matrix = sp.csr_matrix(features, dtype=np.float32)
        if width < feature_dim:
            matrix = sp.csr_matrix(
                (matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], feature_dim)
            )
        conformed, values = matrix, matrix.data
    else:
        if width != feature_dim:
            raise width_error(feature_dim, channel, width, hint)
        conformed = values = np.ascontiguousarray(features, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ClientError(
            f"the {channel} channel has NaN or infinite feature values (missing values read as NaN)"
        )
    return conformed


def one_label_per_record(labels: np.ndarray | None, channel: str, missing: str | None = None) -> np.ndarray:
    """1-D float32 labels, finite; ``missing`` is the message when the channel has none."""
    if labels is None:
        raise ClientError(
            missing
            or f"the {channel} channel has no labels; put the label in the first CSV column "
            "('text/csv;label_size=1') or in the RecordIO record's label 'values'"
        )
    values = np.asarray(labels, dtype=np.float32)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ClientError(
            f"the {channel} channel has {values.shape[1]} label values per record; one is expected"
        )
    if not np.isfinite(values).all():
        raise ClientError(f"the {channel} channel has NaN or infinite labels")
    return values


class EpochBatches:
    """Hands out one epoch of mini-batches per ``epoch()`` call.

    ``densify`` turns sparse batches dense; ``need_labels`` makes every batch carry checked labels
    (override ``labels`` for an algorithm's own rules).
    """

    def __init__(
        self,
        channel: ChannelInput,
        feature_dim: int,
        batch_size: int,
        *,
        densify: bool = True,
        need_labels: bool = False,
    ) -> None:
        self.channel = channel
        self.feature_dim = feature_dim
        self.batch_size = batch_size
        self.densify = densify
        self.need_labels = need_labels
        self._cached: RecordBatch | None = None

    def epoch(self) -> Iterator[RecordBatch]:
        """The next epoch's batches; raises ClientError if the channel holds no records."""
        if self.channel.input_mode == "Pipe":
            yield from self._nonempty(self._rechunk(self.channel.iter_batches(self.batch_size)))
            return
        if self._cached is None:
            self._cached = self.conform(self.channel.read())
        whole = self._cached
        if whole.n_rows == 0:
            raise self._empty()
        for start in range(0, whole.n_rows, self.batch_size):
            yield _slice(whole, start, start + self.batch_size)

    def conform(self, batch: RecordBatch) -> RecordBatch:
        """Features through ``conform_features`` (then densified if asked), labels through ``labels``."""
        if batch.n_rows == 0:
            return batch
        features: Any = conform_features(
            batch.features, self.feature_dim, self.channel.name, csv_label_hint(self.channel)
        )
        if self.densify and sp.issparse(features):
            features = np.asarray(features.toarray(), dtype=np.float32)
        labels = self.labels(batch.labels) if self.need_labels else batch.labels
        return RecordBatch(features, labels, batch.weights)

    def labels(self, labels: np.ndarray | None) -> np.ndarray:
        """The batch's labels, checked (with ``need_labels``): one finite value per record."""
        return one_label_per_record(labels, self.channel.name)

    def _nonempty(self, batches: Iterator[RecordBatch]) -> Iterator[RecordBatch]:
        seen = False
        for batch in batches:
            seen = True
            yield batch
        if not seen:
            raise self._empty()

    def _empty(self) -> ClientError:
        return ClientError(f"the {self.channel.name} channel holds no records")

    def _rechunk(self, source: Iterator[RecordBatch]) -> Iterator[RecordBatch]:
        """Re-cut a stream of arbitrary-size batches into ``batch_size`` pieces."""
        pending: list[RecordBatch] = []
        held = 0
        for raw in source:
            if raw.n_rows == 0:
                continue
            pending.append(self.conform(raw))
            held += raw.n_rows
            while held >= self.batch_size:
                merged = pending[0] if len(pending) == 1 else concat_batches(pending)
                yield _slice(merged, 0, self.batch_size)
                rest = _slice(merged, self.batch_size, merged.n_rows)
                pending = [rest] if rest.n_rows else []
                held = rest.n_rows
        if held:
            yield pending[0] if len(pending) == 1 else concat_batches(pending)


def _slice(batch: RecordBatch, start: int, stop: int) -> RecordBatch:
    features: Any = batch.features
    return RecordBatch(
        features[start:stop],
        None if batch.labels is None else batch.labels[start:stop],
        None if batch.weights is None else batch.weights[start:stop],
    )
