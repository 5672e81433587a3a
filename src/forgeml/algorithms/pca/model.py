"""The PCA model as SageMaker stores it: ``s``, ``v`` and (with subtract_mean) ``mean``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.common.linalg import squared_norms

Features: TypeAlias = np.ndarray | sp.csr_matrix


@dataclass
class PCAModel:
    """``s`` (k,) ascending singular values, ``v`` (d, k) directions in that order, ``mean`` (1, d)."""

    s: np.ndarray
    v: np.ndarray
    mean: np.ndarray | None = None

    @property
    def feature_dim(self) -> int:
        return int(self.v.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """What ``mx.nd.load('model_algo-1')`` returns for a SageMaker PCA model."""
        arrays = {"s": self.s, "v": self.v}
        if self.mean is not None:
            arrays["mean"] = self.mean
        return arrays

    def project(self, features: Features) -> np.ndarray:
        """(x − mean)·v, unscaled by s (observed projections look unscaled; reference §6.6)."""
        projected = np.asarray(features @ self.v, dtype=np.float32)
        if self.mean is not None:
            projected -= (self.mean @ self.v).astype(np.float32)
        return projected

    def reconstruction_errors(self, features: Features) -> np.ndarray:
        """|x − mean|² − |projection|² per row: the squared error of rebuilding x from k components."""
        norms = squared_norms(features)
        if self.mean is not None:
            mean = self.mean.astype(np.float64).ravel()
            cross = np.asarray(features @ mean, dtype=np.float64).ravel()
            norms = norms - 2.0 * cross + float(mean @ mean)
        projected = self.project(features).astype(np.float64)
        return np.maximum(norms - np.einsum("ij,ij->i", projected, projected), 0.0)
