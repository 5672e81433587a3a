"""PCA inference: ``{"projections": [{"projection": [...]}]}`` from ``model_algo-1``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forgeml.algorithms.common.artifact import MODEL_FILE, load_ndarray_model
from forgeml.algorithms.inference import decode_request, encode_response
from forgeml.algorithms.pca import PCA
from forgeml.algorithms.pca.model import PCAModel
from forgeml.errors import ClientError


def load_model(model_dir: Path) -> PCAModel:
    arrays = load_ndarray_model(model_dir, "PCA")
    if not isinstance(arrays, dict) or "s" not in arrays or "v" not in arrays:
        raise ClientError(f"{MODEL_FILE} must hold the named arrays 's' and 'v' (and 'mean')")
    mean = arrays.get("mean")
    return PCAModel(
        np.asarray(arrays["s"], dtype=np.float32).ravel(),
        np.ascontiguousarray(arrays["v"], dtype=np.float32),
        None if mean is None else np.asarray(mean, dtype=np.float32).reshape(1, -1),
    )


def invoke(model: PCAModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    features, response_type = decode_request(PCA, body, content_type, accept, n_features=model.feature_dim)
    projections = model.project(features)
    rows = [{"projection": row} for row in projections.tolist()]
    return encode_response(rows, response_type, top_key="projections")
