"""FM inference: JSON, JSON Lines and RecordIO-protobuf in and out (no CSV, as SageMaker)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.base import InferenceError
from forgeml.algorithms.factorization_machines.model import FMModel
from forgeml.algorithms.inference import (
    JSON,
    JSONLINES,
    RECORDIO,
    encode_response,
    negotiate_accept,
    parse_request,
)

REQUEST_TYPES = (JSON, JSONLINES, RECORDIO)
ACCEPT_TYPES = (JSON, JSONLINES, RECORDIO)


def predictions(model: FMModel, features: np.ndarray | sp.csr_matrix) -> list[dict[str, Any]]:
    """``{"score": s, "predicted_label": 0|1}`` for a classifier (label 1 when s >= 0.5), else ``{"score": s}``."""
    scores = model.predict(features)
    if model.is_classifier:
        return [{"score": float(s), "predicted_label": int(s >= 0.5)} for s in scores]
    return [{"score": float(s)} for s in scores]


def invoke(model: FMModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    response_type = negotiate_accept(accept, ACCEPT_TYPES, JSON)
    features = parse_request(body, content_type, REQUEST_TYPES)
    width = features.shape[1]
    if sp.issparse(features) and width <= model.feature_dim:
        csr = sp.csr_matrix(features, dtype=np.float32)
        features = sp.csr_matrix((csr.data, csr.indices, csr.indptr), shape=(csr.shape[0], model.feature_dim))
    elif width != model.feature_dim:
        raise InferenceError(
            f"the request has {width} features per record but the model has feature_dim={model.feature_dim}"
        )
    return encode_response(predictions(model, features), response_type)
