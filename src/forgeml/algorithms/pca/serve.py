"""PCA inference: ``{"projections": [{"projection": [...]}]}`` from ``model_algo-1``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forgeml.algorithms.inference import (
    CSV,
    JSON,
    JSONLINES,
    RECORDIO,
    encode_response,
    negotiate_accept,
    parse_request,
)
from forgeml.algorithms.kmeans import ndarray_file
from forgeml.algorithms.pca.model import PCAModel
from forgeml.algorithms.pca.train import MODEL_FILE
from forgeml.errors import ClientError

REQUEST_TYPES = (CSV, JSON, JSONLINES, RECORDIO)
ACCEPT_TYPES = (JSON, JSONLINES, RECORDIO)


def load_model(model_dir: Path) -> PCAModel:
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise ClientError(f"the PCA model artifact has no {MODEL_FILE}")
    try:
        arrays = ndarray_file.load(path)
    except ndarray_file.NDArrayFormatError as exc:
        raise ClientError(f"{MODEL_FILE} is not a PCA model: {exc}") from exc
    if not isinstance(arrays, dict) or "s" not in arrays or "v" not in arrays:
        raise ClientError(f"{MODEL_FILE} must hold the named arrays 's' and 'v' (and 'mean')")
    mean = arrays.get("mean")
    return PCAModel(
        np.asarray(arrays["s"], dtype=np.float32).ravel(),
        np.ascontiguousarray(arrays["v"], dtype=np.float32),
        None if mean is None else np.asarray(mean, dtype=np.float32).reshape(1, -1),
    )


def invoke(model: PCAModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    response_type = negotiate_accept(accept, ACCEPT_TYPES, JSON)
    features = parse_request(body, content_type, REQUEST_TYPES, n_features=model.feature_dim)
    projections = model.project(features)
    rows = [{"projection": row} for row in projections.tolist()]
    return encode_response(rows, response_type, top_key="projections")
