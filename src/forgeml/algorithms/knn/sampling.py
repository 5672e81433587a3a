"""Uniform sampling of ``sample_size`` records from a stream (SageMaker k-NN's first step).

Reservoir sampling (Algorithm R), vectorised per mini-batch: the first ``capacity`` records fill
the reservoir; record t (0-based) then replaces a uniformly chosen slot with probability
capacity / (t + 1). Only the records that enter are transformed, so reduction and densification
cost O(sample) rather than O(data), and memory is bounded by the sample plus one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class Reservoir:
    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.rng = rng
        self.seen = 0
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.vectors: np.ndarray | None = None
        self.labels: np.ndarray | None = None

    def offer(self, features: Any, labels: np.ndarray, transform: Callable[[Any], np.ndarray]) -> None:
        rows = features.shape[0]
        fill = max(0, min(rows, self.capacity - self.seen))
        if fill:
            self._parts.append((transform(features[:fill]), labels[:fill].astype(np.float32)))
        if self.seen + fill >= self.capacity and self.vectors is None:
            self._consolidate()
        if fill < rows:
            positions = self.seen + np.arange(fill, rows)
            slots = np.floor(self.rng.random(positions.shape[0]) * (positions + 1)).astype(np.int64)
            chosen = np.flatnonzero(slots < self.capacity)
            if chosen.size:
                # several records may draw the same slot within a batch: the later one wins
                reversed_slots = slots[chosen][::-1]
                _, first = np.unique(reversed_slots, return_index=True)
                keep = chosen[::-1][first] + fill
                assert self.vectors is not None and self.labels is not None
                self.vectors[slots[keep - fill]] = transform(features[keep])
                self.labels[slots[keep - fill]] = labels[keep]
        self.seen += rows

    def _consolidate(self) -> None:
        self.vectors = np.ascontiguousarray(np.concatenate([v for v, _ in self._parts]), dtype=np.float32)
        self.labels = np.concatenate([lab for _, lab in self._parts]).astype(np.float32)
        self._parts = []

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The sample (all records when the stream held fewer than ``capacity``)."""
        if self.vectors is None:
            self._consolidate()
        assert self.vectors is not None and self.labels is not None
        return self.vectors, self.labels
