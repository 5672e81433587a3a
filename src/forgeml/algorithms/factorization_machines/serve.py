"""FM inference: JSON, JSON Lines and RecordIO-protobuf in and out (no CSV, as SageMaker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.base import InferenceError
from forgeml.algorithms.factorization_machines.algorithm import FactorizationMachines
from forgeml.algorithms.factorization_machines.artifact import load
from forgeml.algorithms.factorization_machines.model import FMModel
from forgeml.algorithms.inference import decode_request, encode_response


def predictions(model: FMModel, features: np.ndarray | sp.csr_matrix) -> list[dict[str, Any]]:
    """``{"score": s, "predicted_label": 0|1}`` for a classifier (label 1 when s >= 0.5), else ``{"score": s}``."""
    scores = model.predict(features)
    if model.is_classifier:
        return [{"score": float(s), "predicted_label": int(s >= 0.5)} for s in scores]
    return [{"score": float(s)} for s in scores]


def load_model(model_dir: Path) -> FMModel:
    """The model ``train`` wrote, from the extracted ``model.tar.gz``."""
    return load(Path(model_dir))


def invoke(model: FMModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    features, response_type = decode_request(FactorizationMachines, body, content_type, accept)
    width = features.shape[1]
    if sp.issparse(features) and width <= model.feature_dim:
        csr = sp.csr_matrix(features, dtype=np.float32)
        features = sp.csr_matrix((csr.data, csr.indices, csr.indptr), shape=(csr.shape[0], model.feature_dim))
    elif width != model.feature_dim:
        raise InferenceError(
            f"the request has {width} features per record but the model has feature_dim={model.feature_dim}"
        )
    return encode_response(predictions(model, features), response_type)
