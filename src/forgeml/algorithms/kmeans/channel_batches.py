"""A channel as epochs of fixed-size mini-batches, checked against ``feature_dim``.

K-Means, PCA and k-NN all stream their channels in ``mini_batch_size`` pieces. In File mode the
channel is parsed once and sliced for every epoch (re-parsing per epoch would dominate the run);
in Pipe mode each epoch reads the next FIFO, so memory stays bounded by one batch. Both paths hand
out batches of exactly ``batch_size`` rows (the last one may be short) with ``feature_dim`` columns,
and turn data problems into ``ClientError`` messages the user can act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.base import ChannelInput
from forgeml.data.dataset import RecordBatch, concat_batches
from forgeml.errors import ClientError


class EpochBatches:
    """Hands out one epoch of mini-batches per ``epoch()`` call."""

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
            self._cached = self._conform(self.channel.read())
        whole = self._cached
        if whole.n_rows == 0:
            raise self._empty()
        for start in range(0, whole.n_rows, self.batch_size):
            yield _slice(whole, start, start + self.batch_size)

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
            pending.append(self._conform(raw))
            held += raw.n_rows
            while held >= self.batch_size:
                merged = pending[0] if len(pending) == 1 else concat_batches(pending)
                yield _slice(merged, 0, self.batch_size)
                rest = _slice(merged, self.batch_size, merged.n_rows)
                pending = [rest] if rest.n_rows else []
                held = rest.n_rows
        if held:
            yield pending[0] if len(pending) == 1 else concat_batches(pending)

    def _conform(self, batch: RecordBatch) -> RecordBatch:
        """float32 features exactly ``feature_dim`` wide (sparse ones widened), labels checked."""
        if batch.n_rows == 0:
            return batch
        width = batch.n_features
        features: Any = batch.features
        if sp.issparse(features):
            if width > self.feature_dim:
                raise self._width_error(width)
            if width < self.feature_dim:  # a sparse record's width is only its declared shape
                features = sp.csr_matrix(
                    (features.data, features.indices, features.indptr),
                    shape=(features.shape[0], self.feature_dim),
                )
            features = (
                np.asarray(features.toarray(), dtype=np.float32)
                if self.densify
                else features.astype(np.float32)
            )
        else:
            if width != self.feature_dim:
                raise self._width_error(width)
            features = np.ascontiguousarray(features, dtype=np.float32)
        values = features.data if sp.issparse(features) else features
        if not np.isfinite(values).all():
            raise ClientError(f"the {self.channel.name} channel has feature values that are NaN or infinite")
        labels = batch.labels
        if self.need_labels:
            if labels is None:
                raise ClientError(
                    f"the {self.channel.name} channel has no labels; put the label in the first CSV column "
                    "('text/csv;label_size=1') or in the RecordIO record's label 'values'"
                )
            labels = np.asarray(labels, dtype=np.float32)
            if labels.ndim == 2 and labels.shape[1] == 1:
                labels = labels[:, 0]
            if labels.ndim != 1:
                raise ClientError(
                    f"the {self.channel.name} channel has {labels.shape[1]} label values per record; one is expected"
                )
            if not np.all(np.isfinite(labels)):
                raise ClientError(f"the {self.channel.name} channel has labels that are NaN or infinite")
        return RecordBatch(features, labels, batch.weights)

    def _width_error(self, width: int) -> ClientError:
        hint = ""
        if self.channel.content_type.lower().startswith("text/csv"):
            hint = (
                " (in text/csv the first label_size columns are labels, not features: "
                "check the content type's label_size)"
            )
        return ClientError(
            f"feature_dim={self.feature_dim} but the {self.channel.name} channel has {width} features{hint}"
        )


def _slice(batch: RecordBatch, start: int, stop: int) -> RecordBatch:
    features: Any = batch.features
    return RecordBatch(
        features[start:stop],
        None if batch.labels is None else batch.labels[start:stop],
        None if batch.weights is None else batch.weights[start:stop],
    )


def squared_norms(features: Any) -> np.ndarray:
    """Row-wise squared L2 norms, for dense or CSR rows, in float64 (distance expansions need it)."""
    if sp.issparse(features):
        squared = features.multiply(features)
        return np.asarray(squared.sum(axis=1), dtype=np.float64).ravel()
    return np.einsum("ij,ij->i", features, features, dtype=np.float64)
