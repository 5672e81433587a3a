"""k-NN inference: ``predicted_label`` per record, plus ``distances``/``labels`` when verbose."""

from __future__ import annotations

from pathlib import Path

from forgeml.algorithms.inference import (
    CSV,
    JSON,
    JSONLINES,
    RECORDIO,
    encode_response,
    negotiate_accept,
    parse_request,
    split_mime,
)
from forgeml.algorithms.knn.model import KNNModel, load

REQUEST_TYPES = (CSV, JSON, JSONLINES, RECORDIO)
ACCEPT_TYPES = (JSON, JSONLINES, RECORDIO)


def load_model(model_dir: Path) -> KNNModel:
    return load(model_dir)


def wants_verbose(accept: str | None, response_type: str) -> bool:
    """``Accept: application/json; verbose=true`` asks for the neighbours' distances and labels."""
    for item in (accept or "").split(","):
        mime, params = split_mime(item)
        if mime == response_type and params.get("verbose", "").lower() == "true":
            return True
    return False


def invoke(model: KNNModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    response_type = negotiate_accept(accept, ACCEPT_TYPES, JSON)
    verbose = wants_verbose(accept, response_type)
    features = parse_request(body, content_type, REQUEST_TYPES, n_features=model.feature_dim)
    distances, neighbour_labels = model.neighbours(features)
    predictions = model.predict_from(neighbour_labels)
    rows = []
    for index, label in enumerate(predictions.tolist()):
        row: dict[str, object] = {"predicted_label": float(label)}
        if verbose:
            row["distances"] = distances[index].tolist()
            row["labels"] = neighbour_labels[index].tolist()
        rows.append(row)
    return encode_response(rows, response_type)
