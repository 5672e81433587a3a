"""FM's channels as epochs of labelled mini-batches with ``feature_dim`` columns.

File mode parses the channel once and slices it every epoch; Pipe mode reads the next FIFO each
epoch, so memory stays bounded by a batch. Both check what FM needs from the data (labels,
``feature_dim`` columns, 0/1 labels for a binary classifier) and report problems as ClientError.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.base import ChannelInput
from forgeml.algorithms.factorization_machines.model import Features
from forgeml.data.dataset import RecordBatch
from forgeml.errors import ClientError


class LabelledBatches:
    """One channel, conformed: ``epoch()`` yields ``(features, labels)`` pairs."""

    def __init__(self, channel: ChannelInput, feature_dim: int, batch_size: int, classifier: bool) -> None:
        self.channel = channel
        self.feature_dim = feature_dim
        self.batch_size = batch_size
        self.classifier = classifier
        self._cached: tuple[Features, np.ndarray] | None = None

    def epoch(self) -> Iterator[tuple[Features, np.ndarray]]:
        rows = 0
        if self.channel.input_mode == "Pipe":
            for batch in self.channel.iter_batches(self.batch_size):
                if batch.n_rows:
                    rows += batch.n_rows
                    yield from self._slices(*self._conform(batch))
        else:
            if self._cached is None:
                self._cached = self._conform(self.channel.read())
            rows = self._cached[1].shape[0]
            yield from self._slices(*self._cached)
        if rows == 0:
            raise ClientError(f"the {self.channel.name} channel holds no records")

    def _slices(self, features: Features, labels: np.ndarray) -> Iterator[tuple[Features, np.ndarray]]:
        for start in range(0, labels.shape[0], self.batch_size):
            stop = start + self.batch_size
            yield features[start:stop], labels[start:stop]

    def _conform(self, batch: RecordBatch) -> tuple[Features, np.ndarray]:
        name = self.channel.name
        if batch.n_rows == 0:
            return sp.csr_matrix((0, self.feature_dim), dtype=np.float32), np.zeros(0)
        width = batch.n_features
        if width > self.feature_dim or (width < self.feature_dim and not batch.is_sparse):
            raise ClientError(
                f"feature_dim={self.feature_dim} but the {name} channel has {width} features per record"
            )
        if batch.labels is None:
            raise ClientError(
                f"the {name} channel has records without a label; Factorization Machines needs "
                "label['values'] in every record"
            )
        labels = np.asarray(batch.labels, dtype=np.float64)
        if labels.ndim != 1:
            raise ClientError(f"the {name} channel has {labels.shape[1]} label values per record; FM needs one")
        if not np.isfinite(labels).all():
            raise ClientError(f"the {name} channel has labels that are NaN or infinite")
        if self.classifier and not np.isin(labels, (0.0, 1.0)).all():
            bad = labels[~np.isin(labels, (0.0, 1.0))][0]
            raise ClientError(
                f"predictor_type=binary_classifier needs labels 0 or 1, but the {name} channel has label {bad:g}"
            )
        values = batch.features.data if batch.is_sparse else batch.features
        if not np.isfinite(values).all():
            raise ClientError(f"the {name} channel has missing (NaN) or infinite feature values")
        features: Features
        if batch.is_sparse:
            csr = sp.csr_matrix(batch.features, dtype=np.float32)
            features = sp.csr_matrix((csr.data, csr.indices, csr.indptr), shape=(csr.shape[0], self.feature_dim))
        else:
            features = np.ascontiguousarray(batch.features, dtype=np.float32)
        return features, labels
