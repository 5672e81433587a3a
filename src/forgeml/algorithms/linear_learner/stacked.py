"""Outputs and gradients of every parallel model at once, on raw (unnormalised) features.

Parameters are one ``(features + 1) × columns`` matrix, the last row the bias; a model with
``k`` outputs owns ``k`` adjacent columns. Normalisation ``(x - mean) / stdev`` is applied through
the weights instead of the data:

* outputs: ``X @ (W / stdev) - (mean / stdev) @ W + b``
* gradient: ``dL/dW = (Xᵀ G) / stdev - (mean / stdev) ⊗ Σ_rows G`` and ``dL/db = Σ_rows G``

which is exact, costs one extra ``features × columns`` product per batch, and works unchanged for
CSR input (``Xᵀ G`` is a sparse-dense product).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.linear_learner.scaler import Scaler


class StackedLinear:
    """The shared maths of all models for one scaler."""

    def __init__(self, scaler: Scaler) -> None:
        self.inverse_stdev = scaler.inverse_stdev[:, None]
        self.shift = scaler.shift
        self.centred = bool(np.any(self.shift != 0))

    def outputs(self, features: np.ndarray | sp.csr_matrix, params: np.ndarray) -> np.ndarray:
        """Outputs (rows × columns) on normalised features."""
        weights = params[:-1] * self.inverse_stdev
        offset = params[-1] - self.shift @ params[:-1] if self.centred else params[-1]
        return np.asarray(features @ weights, dtype=np.float32) + offset

    def gradient(self, features: np.ndarray | sp.csr_matrix, output_grad: np.ndarray) -> np.ndarray:
        """d loss / d params for d loss / d outputs ``output_grad`` (rows × columns)."""
        full = np.empty((self.inverse_stdev.shape[0] + 1, output_grad.shape[1]), dtype=np.float32)
        column_sums = output_grad.sum(axis=0)
        full[:-1] = np.asarray(features.T @ output_grad, dtype=np.float32)
        full[:-1] *= self.inverse_stdev
        if self.centred:
            full[:-1] -= self.shift[:, None] * column_sums[None, :]
        full[-1] = column_sums
        return full
