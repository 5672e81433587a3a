"""RCF inference: CSV, JSON, JSON Lines or RecordIO rows in, ``{"scores": [{"score": s}]}`` out."""

from __future__ import annotations

import numpy as np

from forgeml.algorithms.base import InferenceError
from forgeml.algorithms.inference import (
    CSV,
    JSON,
    JSONLINES,
    RECORDIO,
    encode_response,
    negotiate_accept,
    parse_request,
)
from forgeml.algorithms.random_cut_forest.forest import Forest
from forgeml.algorithms.random_cut_forest.sampling import as_dense

REQUEST_TYPES = (CSV, JSON, JSONLINES, RECORDIO)
# JSON Lines requests are presumably accepted like the other first-party algorithms (UNVERIFIED).
ACCEPT_TYPES = (JSON, JSONLINES, RECORDIO)


def invoke(forest: Forest, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    response_type = negotiate_accept(accept, ACCEPT_TYPES, JSON)
    features = parse_request(body, content_type, REQUEST_TYPES, n_features=forest.feature_dim)
    dense = as_dense(features)
    if not np.isfinite(dense).all():
        raise InferenceError("the request has missing (NaN) or infinite feature values")
    scores = forest.score(dense)
    return encode_response([{"score": float(s)} for s in scores], response_type, top_key="scores")
