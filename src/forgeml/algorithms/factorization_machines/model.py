"""The second-order factorization machine: parameters, initialisation and the forward pass.

``y = w0 + sum_i w_i x_i + sum_{i<j} <v_i, v_j> x_i x_j``, computed in O(nnz * k) with Rendle's
identity ``sum_{i<j} <v_i, v_j> x_i x_j = 1/2 * sum_f ((x V)_f^2 - (x^2)(V^2)_f)``; binary
classifiers put a sigmoid on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp

Features: TypeAlias = "np.ndarray | sp.csr_matrix"


@dataclass
class FMModel:
    """Bias ``w0`` (1,), linear weights ``w`` (d,), factors ``v`` (d, k), all float32."""

    predictor_type: str
    w0: np.ndarray
    w: np.ndarray
    v: np.ndarray

    @property
    def feature_dim(self) -> int:
        return int(self.v.shape[0])

    @property
    def num_factors(self) -> int:
        return int(self.v.shape[1])

    @property
    def is_classifier(self) -> bool:
        return self.predictor_type == "binary_classifier"

    def raw(self, x: Features) -> np.ndarray:
        """The linear predictor (before the sigmoid), as float64 for stable metrics."""
        return forward(x, self.w0, self.w, self.v)[0]

    def predict(self, x: Features) -> np.ndarray:
        """Scores: probabilities for a binary classifier, the regression value otherwise."""
        raw = self.raw(x)
        return sigmoid(raw) if self.is_classifier else raw


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def squared(x: Any) -> Features:
    """Element-wise square, keeping sparse inputs sparse."""
    return x.power(2) if sp.issparse(x) else np.square(x)


def forward(
    x: Features, w0: np.ndarray, w: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray, Features]:
    """``(raw predictions, x V, x**2)``; the last two are reused by the gradient."""
    xv = np.asarray(x @ v)
    x2 = squared(x)
    pair = 0.5 * (np.einsum("ij,ij->i", xv, xv) - np.asarray(x2 @ (v * v)).sum(axis=1))
    linear = np.asarray(x @ w).ravel()
    return float(w0[0]) + linear.astype(np.float64) + pair, xv, x2


def initial_parameters(
    hp: dict[str, Any], feature_dim: int, num_factors: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bias, linear and factor arrays drawn as ``*_init_method`` says."""

    def draw(term: str, shape: tuple[int, ...]) -> np.ndarray:
        method = hp[f"{term}_init_method"]
        if method == "normal":
            values = rng.normal(0.0, hp[f"{term}_init_sigma"], size=shape)
        elif method == "uniform":
            scale = hp[f"{term}_init_scale"]
            values = rng.uniform(-scale, scale, size=shape)
        else:
            values = np.full(shape, hp[f"{term}_init_value"])
        return values.astype(np.float32)

    return draw("bias", (1,)), draw("linear", (feature_dim,)), draw("factors", (feature_dim, num_factors))
