"""Inference: SageMaker's request content types in, ``{"predictions": [...]}`` and kin out (§1.8).

CSV responses: SageMaker documents only the regression shape (the score alone per line). For the
classifiers we write the row's values in response order, ``score,predicted_label`` (multiclass:
the class probabilities, then the label); UNVERIFIED against the container.
"""

from __future__ import annotations

from forgeml.algorithms.inference import encode_response, negotiate_accept, parse_request
from forgeml.algorithms.linear_learner.algorithm import LinearLearner
from forgeml.algorithms.linear_learner.model import LinearModel


def invoke(model: LinearModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    """Predict every record in the body and encode the answers in the negotiated type."""
    response_type = negotiate_accept(accept, LinearLearner.accept_types, LinearLearner.default_accept)
    features = parse_request(
        body, content_type, LinearLearner.request_content_types, n_features=model.feature_dim
    )
    return encode_response(model.predict_rows(features), response_type)
