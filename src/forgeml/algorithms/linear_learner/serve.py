"""Inference: SageMaker's request content types in, ``{"predictions": [...]}`` and kin out (§1.8).

CSV responses: SageMaker documents only the regression shape (the score alone per line). For the
classifiers we write the row's values in response order, ``score,predicted_label`` (multiclass:
the class probabilities, then the label); UNVERIFIED against the container.
"""

from __future__ import annotations

from pathlib import Path

from forgeml.algorithms.inference import decode_request, encode_response
from forgeml.algorithms.linear_learner.algorithm import LinearLearner
from forgeml.algorithms.linear_learner.model import LinearModel


def load_model(model_dir: Path) -> LinearModel:
    """The model ``train`` wrote, from the extracted ``model.tar.gz``."""
    return LinearModel.load(model_dir)


def invoke(model: LinearModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    """Predict every record in the body and encode the answers in the negotiated type."""
    features, response_type = decode_request(
        LinearLearner, body, content_type, accept, n_features=model.feature_dim
    )
    return encode_response(model.predict_rows(features), response_type)
