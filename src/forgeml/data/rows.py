"""``RowCollector``: builds a ``RecordBatch`` from rows decoded one at a time.

Row-oriented formats (RecordIO-protobuf records, JSON lines) share the same rules, so they live
here once: dense rows must all have the first row's width; any sparse row makes the batch CSR,
as wide as the widest declared shape or largest key; either every row has a label or none does,
and labels agree in width.  Violations name the file and the 1-based record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from forgeml.data.dataset import RecordBatch, empty_batch
from forgeml.errors import DataFormatError


class RowCollector:
    """Accumulates rows; ``batch()`` turns them into float32 arrays."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.count = 0
        self._values: list[float] = []
        self._lengths: list[int] = []
        self._keys: dict[int, Sequence[int]] = {}  # row index -> keys, sparse rows only
        self._widths: list[int | None] = []
        self._numbers: list[int] = []
        self._labels: list[float] = []
        self._label_width: int | None = None
        self._first_label: bool | None = None

    def add_row(
        self,
        values: Sequence[Any],
        keys: Sequence[int] | None,
        width: int | None,
        label: Sequence[Any] | None,
        number: int,
    ) -> None:
        """One row: dense when ``keys`` is None, else sparse with ``width`` columns (or unknown)."""
        self._check_label(label, number)
        self._values.extend(values)
        self._lengths.append(len(values))
        if keys is not None:
            self._keys[self.count] = keys
        self._widths.append(width)
        self._numbers.append(number)
        if label is not None:
            self._labels.extend(label)
        self.count += 1

    def _check_label(self, label: Sequence[Any] | None, number: int) -> None:
        has_label = label is not None
        if self._first_label is None:
            self._first_label = has_label
        elif has_label != self._first_label:
            state = "has a label" if has_label else "has no label"
            raise DataFormatError(f"record {state}, unlike the records before it", path=self.path, record=number)
        if label is None:
            return
        if self._label_width is None:
            self._label_width = len(label)
        elif len(label) != self._label_width:
            raise DataFormatError(
                f"label has {len(label)} values, expected {self._label_width} as in earlier records",
                path=self.path,
                record=number,
            )

    def batch(self) -> RecordBatch:
        if self.count == 0:
            return empty_batch()
        with np.errstate(over="ignore"):
            data = np.array(self._values, dtype=np.float64).astype(np.float32)
        if self._keys:
            features: np.ndarray | sp.csr_matrix = self._sparse_features(data)
        else:
            features = self._dense_features(data)
        labels: np.ndarray | None = None
        if self._first_label:
            with np.errstate(over="ignore"):
                labels = np.array(self._labels, dtype=np.float64).astype(np.float32).reshape(self.count, -1)
            if labels.shape[1] == 1:
                labels = labels.reshape(self.count)
        return RecordBatch(features, labels)

    def _dense_features(self, data: np.ndarray) -> np.ndarray:
        first = self._lengths[0]
        for width, number in zip(self._lengths, self._numbers, strict=True):
            if width != first:
                raise DataFormatError(
                    f"record has {width} features, expected {first} as in record {self._numbers[0]}",
                    path=self.path,
                    record=number,
                )
        return data.reshape(self.count, first)

    def _sparse_features(self, data: np.ndarray) -> sp.csr_matrix:
        indptr = np.zeros(self.count + 1, dtype=np.int64)
        np.cumsum(self._lengths, out=indptr[1:])
        indices = np.empty(len(data), dtype=np.int64)
        for row in range(self.count):
            lo, hi = int(indptr[row]), int(indptr[row + 1])
            keys = self._keys.get(row)
            indices[lo:hi] = np.arange(hi - lo) if keys is None else np.fromiter(keys, np.uint64, hi - lo)
        declared = [w for w in self._widths if w is not None]
        n_cols = max(max(declared, default=0), int(indices.max()) + 1 if indices.size else 0)
        matrix = sp.csr_matrix((data, indices, indptr), shape=(self.count, n_cols))
        if not matrix.has_sorted_indices:
            matrix.sort_indices()
        return matrix
