"""Row-wise arithmetic on dense or CSR features.

Why it exists: K-Means (distances to centres) and PCA (reconstruction errors) both expand squared
distances as ``|x|² - 2x·c + |c|²`` and need the same float64 row norms for either storage.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp


def squared_norms(features: Any) -> np.ndarray:
    """Row-wise squared L2 norms, for dense or CSR rows, in float64 (distance expansions need it)."""
    if sp.issparse(features):
        squared = features.multiply(features)
        return np.asarray(squared.sum(axis=1), dtype=np.float64).ravel()
    return np.einsum("ij,ij->i", features, features, dtype=np.float64)
