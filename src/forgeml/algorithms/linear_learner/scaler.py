"""Feature and label normalisation estimated from a sample (``num_point_for_scaler`` rows).

The scaler is never applied to the data: ``(x - mean) / stdev`` is folded into the weights
(``x @ (w / stdev) - (mean / stdev) @ w``), so dense batches are not copied and sparse batches stay
sparse even when they are centred. Per the docs, ``normalize_data=auto`` always scales and
``unbias_data=auto`` centres only dense data (and only when the model has a bias); labels are
shifted and scaled for regression only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.hyperparameters import AUTO
from forgeml.algorithms.linear_learner.hyperparameters import REGRESSOR


@dataclass
class Scaler:
    """``mean``/``stdev`` per feature (0/1 where off) and the label's (0/1 where off)."""

    mean: np.ndarray
    stdev: np.ndarray
    label_mean: float = 0.0
    label_stdev: float = 1.0

    @property
    def inverse_stdev(self) -> np.ndarray:
        return (1.0 / self.stdev).astype(np.float32)

    @property
    def shift(self) -> np.ndarray:
        """``mean / stdev``: what centring subtracts from each normalised feature."""
        return (self.mean / self.stdev).astype(np.float32)

    def describe(
        self, centred: bool, scaled: bool, label_centred: bool, label_scaled: bool
    ) -> dict[str, Any]:
        """The dictionary of SageMaker's ``Scaling model computed with parameters`` line."""

        def show(values: np.ndarray) -> str:
            return np.array2string(values, precision=6, threshold=20, separator=", ")

        return {
            "stdev_weight": show(self.stdev) if scaled else None,
            "stdev_label": self.label_stdev if label_scaled else None,
            "mean_label": self.label_mean if label_centred else None,
            "mean_weight": show(self.mean) if centred else None,
        }


def _column_stats(features: np.ndarray | sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(features, sp.spmatrix | sp.sparray):
        mean = np.asarray(features.mean(axis=0), dtype=np.float64).ravel()
        square = np.asarray(features.multiply(features).mean(axis=0), dtype=np.float64).ravel()
        variance = np.maximum(square - mean * mean, 0.0)
        return mean, np.sqrt(variance)
    values = np.asarray(features, dtype=np.float64)
    return values.mean(axis=0), values.std(axis=0)


def switches(hp: dict[str, Any], sparse: bool) -> tuple[bool, bool, bool, bool]:
    """(centre features, scale features, centre label, scale label) after resolving ``auto``."""
    regression = hp["predictor_type"] == REGRESSOR
    use_bias = bool(hp["use_bias"])
    scale = hp["normalize_data"] is not False  # auto or true
    centre = (not sparse and use_bias) if hp["unbias_data"] == AUTO else bool(hp["unbias_data"])
    label_scale = regression and (hp["normalize_label"] == AUTO or bool(hp["normalize_label"]))
    label_centre = regression and (use_bias if hp["unbias_label"] == AUTO else bool(hp["unbias_label"]))
    return centre, scale, label_centre, label_scale


def fit_scaler(
    features: np.ndarray | sp.csr_matrix,
    labels: np.ndarray,
    flags: tuple[bool, bool, bool, bool],
) -> Scaler:
    """Means and standard deviations from the sample; constant columns keep a scale of 1."""
    centre, scale, label_centre, label_scale = flags
    width = features.shape[1]
    mean = np.zeros(width)
    stdev = np.ones(width)
    if centre or scale:
        column_mean, column_stdev = _column_stats(features)
        if centre:
            mean = column_mean
        if scale:
            stdev = np.where(column_stdev > 1e-12, column_stdev, 1.0)
    label_mean, label_stdev = 0.0, 1.0
    if labels.size:
        if label_centre:
            label_mean = float(np.mean(labels, dtype=np.float64))
        if label_scale:
            spread = float(np.std(labels, dtype=np.float64))
            label_stdev = spread if spread > 1e-12 else 1.0
    return Scaler(mean.astype(np.float32), stdev.astype(np.float32), label_mean, label_stdev)
