"""RCF inference: CSV, JSON, JSON Lines or RecordIO rows in, ``{"scores": [{"score": s}]}`` out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forgeml.algorithms.base import InferenceError
from forgeml.algorithms.inference import decode_request, encode_response
from forgeml.algorithms.random_cut_forest.algorithm import RandomCutForest
from forgeml.algorithms.random_cut_forest.artifact import load
from forgeml.algorithms.random_cut_forest.forest import Forest
from forgeml.algorithms.random_cut_forest.sampling import as_dense


def load_model(model_dir: Path) -> Forest:
    """The model ``train`` wrote, from the extracted ``model.tar.gz``."""
    return load(Path(model_dir))


def invoke(forest: Forest, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    features, response_type = decode_request(
        RandomCutForest, body, content_type, accept, n_features=forest.feature_dim
    )
    dense = as_dense(features)
    if not np.isfinite(dense).all():
        raise InferenceError("the request has missing (NaN) or infinite feature values")
    scores = forest.score(dense)
    return encode_response([{"score": float(s)} for s in scores], response_type, top_key="scores")
