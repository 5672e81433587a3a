"""``RecordBatch``: the one in-memory shape every reader returns.

Algorithms should not care whether rows came from CSV, libsvm, Parquet, JSON lines or
RecordIO-protobuf, so every reader hands back float32 features (dense 2-D array or CSR), optional
float32 labels (1-D, or 2-D when a row carries several label values) and optional weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp

from forgeml.errors import DataFormatError

Features: TypeAlias = np.ndarray | sp.csr_matrix


@dataclass
class RecordBatch:
    """Rows read from one source: ``features`` (n × d float32), ``labels``, ``weights``."""

    features: Features
    labels: np.ndarray | None = None
    weights: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return int(self.features.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.features)

    def __len__(self) -> int:
        return self.n_rows

    def dense_features(self) -> np.ndarray:
        """Features as a dense float32 array (densifies CSR; fine for small widths only)."""
        features = self.features
        if isinstance(features, np.ndarray):
            return features
        return np.asarray(features.toarray(), dtype=np.float32)


def empty_batch() -> RecordBatch:
    """A zero-row batch, what an empty file reads as."""
    return RecordBatch(np.zeros((0, 0), dtype=np.float32))


def _widen(matrix: sp.csr_matrix, n_cols: int) -> sp.csr_matrix:
    if matrix.shape[1] == n_cols:
        return matrix
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], n_cols))


def _stack_optional(
    parts: Sequence[np.ndarray | None], names: Sequence[str | None], what: str
) -> np.ndarray | None:
    present = [p is not None for p in parts]
    if not any(present):
        return None
    if not all(present):
        odd = next(i for i, p in enumerate(present) if p != present[0])
        has = "has" if present[odd] else "has no"
        raise DataFormatError(f"input {has} {what}, unlike earlier inputs", path=names[odd])
    arrays = [p for p in parts if p is not None]
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape[1:]
        bad = next(i for i, a in enumerate(arrays) if a.shape[1:] != first)
        raise DataFormatError(f"{what} have a different width than in earlier inputs", path=names[bad])
    return np.concatenate(arrays, axis=0)


def concat_batches(batches: Sequence[RecordBatch], names: Sequence[str | None] | None = None) -> RecordBatch:
    """Stack batches row-wise, as a channel with several files reads.

    Dense inputs must agree on the feature count (the error names the first file that does not);
    sparse inputs are widened to the widest, because a libsvm or sparse RecordIO file's width
    is only the largest index it happens to contain.  Dense and sparse inputs mix as sparse.
    """
    labels_names: Sequence[str | None] = list(names) if names is not None else [None] * len(batches)
    kept = [(b, n) for b, n in zip(batches, labels_names, strict=True) if b.n_rows > 0]
    if not kept:
        return batches[0] if batches else empty_batch()
    if len(kept) == 1:
        return kept[0][0]
    parts = [b for b, _ in kept]
    part_names = [n for _, n in kept]
    if any(b.is_sparse for b in parts):
        width = max(b.n_features for b in parts)
        dense_width = {b.n_features for b in parts if not b.is_sparse}
        if len(dense_width) > 1 or (dense_width and dense_width.pop() != width):
            bad = next(n for b, n in kept if not b.is_sparse and b.n_features != width)
            raise DataFormatError(f"expected {width} features as in earlier inputs", path=bad)
        matrices = [_widen(sp.csr_matrix(b.features, dtype=np.float32), width) for b in parts]
        features: Features = sp.csr_matrix(sp.vstack(matrices, format="csr"), dtype=np.float32)
    else:
        width = parts[0].n_features
        for b, n in kept:
            if b.n_features != width:
                raise DataFormatError(
                    f"found {b.n_features} features but earlier inputs have {width}", path=n
                )
        features = np.concatenate([np.asarray(b.features) for b in parts], axis=0)
    labels = _stack_optional([b.labels for b in parts], part_names, "labels")
    weights = _stack_optional([b.weights for b in parts], part_names, "weights")
    return RecordBatch(features, labels, weights)


def split_labels(matrix: np.ndarray, label_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Cut the leading ``label_size`` columns off a dense table (SageMaker's CSV convention)."""
    if label_size == 0:
        return np.ascontiguousarray(matrix, dtype=np.float32), None
    labels = matrix[:, 0] if label_size == 1 else matrix[:, :label_size]
    features = matrix[:, label_size:]
    return (
        np.ascontiguousarray(features, dtype=np.float32),
        np.ascontiguousarray(labels, dtype=np.float32),
    )
