"""Uniform sampling without replacement from a stream of batches, in one pass and bounded memory.

SageMaker's RCF reservoir-samples ``num_trees * num_samples_per_tree`` rows from the training
stream. Giving every row an independent uniform key and keeping the rows with the smallest keys is
the same distribution as classic reservoir sampling, and it vectorises: a batch only contributes
rows whose key beats the current threshold, and candidates are merged only once they number as
many as the reservoir, so the cost is amortised linear in the stream.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp


def as_dense(features: Any) -> np.ndarray:
    """Rows as a dense float32 array: the cuts need every coordinate (feature_dim <= 10,000)."""
    dense = features.toarray() if sp.issparse(features) else features
    return np.asarray(dense, dtype=np.float32)


class Reservoir:
    """Keeps a uniform sample of at most ``capacity`` rows of ``width`` float32 features."""

    def __init__(self, capacity: int, width: int, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.width = width
        self.rng = rng
        self.seen = 0
        self._keys = np.empty(0, dtype=np.float64)
        self._rows = np.empty((0, width), dtype=np.float32)
        self._pending_keys: list[np.ndarray] = []
        self._pending_rows: list[np.ndarray] = []
        self._pending = 0
        self._threshold = np.inf

    def add(self, features: np.ndarray | sp.csr_matrix) -> None:
        """Offer a batch of rows (dense or CSR) to the sample."""
        count = int(features.shape[0])
        self.seen += count
        keys = self.rng.random(count)
        chosen = np.flatnonzero(keys < self._threshold)
        if chosen.size == 0:
            return
        self._pending_keys.append(keys[chosen])
        self._pending_rows.append(as_dense(features[chosen]))
        self._pending += chosen.size
        if self._pending >= self.capacity:
            self._merge()

    def _merge(self) -> None:
        if not self._pending_keys:
            return
        keys = np.concatenate([self._keys, *self._pending_keys])
        rows = np.concatenate([self._rows, *self._pending_rows])
        self._pending_keys, self._pending_rows, self._pending = [], [], 0
        if keys.size > self.capacity:
            keep = np.argpartition(keys, self.capacity - 1)[: self.capacity]
            keys, rows = keys[keep], rows[keep]
            self._threshold = float(keys.max())
        self._keys, self._rows = keys, rows

    def sample(self) -> np.ndarray:
        """The sampled rows in random order (ordered by key)."""
        self._merge()
        order = np.argsort(self._keys, kind="stable")
        return self._rows[order]
