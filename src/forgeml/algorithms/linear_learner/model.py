"""The trained model and its ``model_algo-1`` archive (layout in the package docstring).

The archive keeps the weights in the normalised space they were trained in, next to the scaler,
as SageMaker's does; ``LinearModel`` folds the scaler into raw-feature weights once at load so a
request costs one matrix product.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.common.artifact import MODEL_FILE, read_zip, write_zip
from forgeml.algorithms.linear_learner.hyperparameters import BINARY, MULTICLASS
from forgeml.algorithms.linear_learner.losses import sigmoid, softmax
from forgeml.errors import ClientError

FORMAT = "forgeml-linear-learner"
VERSION = 1
_ARRAYS = ("weight", "bias", "feature_mean", "feature_stdev")


@dataclass
class LinearModel:
    """One linear model: ``weight`` (features × outputs) and ``bias`` act on normalised features."""

    predictor_type: str
    loss: str
    feature_dim: int
    weight: np.ndarray
    bias: np.ndarray
    feature_mean: np.ndarray
    feature_stdev: np.ndarray
    label_mean: float = 0.0
    label_stdev: float = 1.0
    threshold: float = 0.5
    num_classes: int | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    _raw: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def raw_parameters(self) -> tuple[np.ndarray, np.ndarray]:
        """Weights and bias acting on raw features: the scaler folded in."""
        if self._raw is None:
            inverse = (1.0 / self.feature_stdev.astype(np.float64))[:, None]
            weight = self.weight.astype(np.float64) * inverse
            bias = self.bias.astype(np.float64) - self.feature_mean.astype(np.float64) @ weight
            self._raw = (weight.astype(np.float32), bias.astype(np.float32))
        return self._raw

    def outputs(self, features: np.ndarray | sp.csr_matrix) -> np.ndarray:
        """Raw outputs (rows × outputs), in label units for regression."""
        weight, bias = self.raw_parameters()
        z = np.asarray(features @ weight, dtype=np.float32) + bias
        if self.predictor_type not in (BINARY, MULTICLASS):
            z = z * np.float32(self.label_stdev) + np.float32(self.label_mean)
        return z

    def scores(self, features: np.ndarray | sp.csr_matrix) -> np.ndarray:
        """What the response calls ``score``: P(label=1) for logistic, class probabilities for
        softmax, the margin for hinge loss, the predicted value for regression."""
        z = self.outputs(features)
        if self.loss == "softmax_loss":
            return softmax(z)
        if self.loss == "logistic":
            return sigmoid(z[:, 0])
        return z[:, 0]

    def predict_rows(self, features: np.ndarray | sp.csr_matrix) -> list[dict[str, Any]]:
        """One response object per row, in SageMaker's shapes (§1.8)."""
        scores = self.scores(features)
        if self.predictor_type == MULTICLASS:
            labels = np.argmax(scores, axis=1)
            return [
                {"score": row.tolist(), "predicted_label": int(label)}
                for row, label in zip(scores, labels, strict=True)
            ]
        if self.predictor_type == BINARY:
            labels = scores >= self.threshold
            return [
                {"score": float(score), "predicted_label": int(label)}
                for score, label in zip(scores, labels, strict=True)
            ]
        return [{"score": float(score)} for score in scores]

    # -- archive ---------------------------------------------------------------------------------
    def save(self, model_dir: Path) -> Path:
        path = Path(model_dir) / MODEL_FILE
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "predictor_type": self.predictor_type,
            "loss": self.loss,
            "feature_dim": self.feature_dim,
            "num_classes": self.num_classes,
            "outputs": int(self.weight.shape[1]),
            "params": {name: f"params/{name}.npy" for name in _ARRAYS},
        }
        additional = {
            "threshold": self.threshold,
            "label_mean": self.label_mean,
            "label_stdev": self.label_stdev,
            "hyperparameters": self.hyperparameters,
        }
        members: dict[str, bytes | str] = {
            "manifest.json": json.dumps(manifest, indent=2),
            "additional-params.json": json.dumps(additional, indent=2),
        }
        for name in _ARRAYS:
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(getattr(self, name), dtype=np.float32), allow_pickle=False)
            members[f"params/{name}.npy"] = buffer.getvalue()
        return write_zip(path, members)

    @classmethod
    def load(cls, model_dir: Path) -> LinearModel:
        path = Path(model_dir) / MODEL_FILE
        if not path.is_file():
            raise ClientError(f"{MODEL_FILE} not found in {model_dir}: not a Linear Learner model artifact")
        try:
            members = read_zip(path)
            manifest = json.loads(members["manifest.json"])
            additional = json.loads(members["additional-params.json"])
            arrays = {
                name: np.load(io.BytesIO(members[manifest["params"][name]]), allow_pickle=False) for name in _ARRAYS
            }
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ClientError(f"{path} is not a readable Linear Learner model archive: {exc}") from exc
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise ClientError(
                f"{path} holds format {manifest.get('format')!r} version {manifest.get('version')!r}; "
                f"expected {FORMAT!r} version {VERSION}"
            )
        return cls(
            predictor_type=manifest["predictor_type"],
            loss=manifest["loss"],
            feature_dim=int(manifest["feature_dim"]),
            num_classes=manifest.get("num_classes"),
            weight=arrays["weight"],
            bias=arrays["bias"],
            feature_mean=arrays["feature_mean"],
            feature_stdev=arrays["feature_stdev"],
            label_mean=float(additional["label_mean"]),
            label_stdev=float(additional["label_stdev"]),
            threshold=float(additional["threshold"]),
            hyperparameters=dict(additional.get("hyperparameters", {})),
        )
