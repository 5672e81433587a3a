"""k-NN's optional dimension reduction: random sign projection or a fast JL transform.

Both are data-independent: the seed, the input and the target dimension rebuild the same
transform at inference, which is why SageMaker's ``model_algo-1.json`` stores exactly
``{"type", "seed", "target_dim", "input_dim"}``. Both preserve L2 distances and inner products
in expectation.

* ``sign``: x ↦ xR/√t with R a d×t matrix of random ±1; O(d·t) per row.
* ``fjlt``: the subsampled randomized Hadamard transform (a fast Johnson-Lindenstrauss transform
  whose Fourier step is the Walsh-Hadamard transform): pad x to a power of two, flip signs at
  random, transform in O(d log d), keep t random coordinates, scale by 1/√t.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp


def walsh_hadamard(rows: np.ndarray) -> np.ndarray:
    """Unnormalised fast Walsh-Hadamard transform of each row (width a power of two)."""
    n, width = rows.shape
    out = rows
    half = 1
    while half < width:
        blocks = out.reshape(n, width // (2 * half), 2, half)
        first = blocks[:, :, 0, :]
        second = blocks[:, :, 1, :]
        out = np.stack((first + second, first - second), axis=2).reshape(n, width)
        half *= 2
    return out


@dataclass
class Reducer:
    """A seeded sign or FJLT projection from ``input_dim`` to ``target_dim`` features."""

    kind: str
    seed: int
    target_dim: int
    input_dim: int
    _projection: np.ndarray = field(init=False, repr=False)
    _flips: np.ndarray = field(init=False, repr=False)
    _keep: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("sign", "fjlt"):
            raise ValueError(f"unknown dimension_reduction type {self.kind!r}")
        rng = np.random.default_rng(self.seed)
        if self.kind == "sign":
            signs = rng.integers(0, 2, size=(self.input_dim, self.target_dim)).astype(np.float32) * 2.0 - 1.0
            self._projection = (signs / np.sqrt(self.target_dim)).astype(np.float32)
        else:
            padded = 1 << max(0, (self.input_dim - 1).bit_length())
            self._flips = (rng.integers(0, 2, size=padded) * 2 - 1).astype(np.float32)
            self._keep = np.sort(rng.choice(padded, size=self.target_dim, replace=False))

    def transform(self, features: Any) -> np.ndarray:
        """Reduce rows (dense or CSR) to ``target_dim`` float32 features."""
        if self.kind == "sign":
            return np.asarray(features @ self._projection, dtype=np.float32)
        dense = np.asarray(features.toarray() if sp.issparse(features) else features, dtype=np.float32)
        padded = np.zeros((dense.shape[0], self._flips.shape[0]), dtype=np.float32)
        padded[:, : self.input_dim] = dense
        padded *= self._flips
        mixed = walsh_hadamard(padded)
        return np.ascontiguousarray(
            mixed[:, self._keep] / np.float32(np.sqrt(self.target_dim)), dtype=np.float32
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "seed": self.seed,
            "target_dim": self.target_dim,
            "input_dim": self.input_dim,
        }

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> Reducer:
        return cls(str(spec["type"]), int(spec["seed"]), int(spec["target_dim"]), int(spec["input_dim"]))
