"""k-NN inference: ``predicted_label`` per record, plus ``distances``/``labels`` when verbose."""

from __future__ import annotations

from pathlib import Path

from forgeml.algorithms.inference import decode_request, encode_response, wants_verbose
from forgeml.algorithms.knn import KNN
from forgeml.algorithms.knn.model import KNNModel, load


def load_model(model_dir: Path) -> KNNModel:
    return load(model_dir)


def invoke(model: KNNModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    features, response_type = decode_request(KNN, body, content_type, accept, n_features=model.feature_dim)
    # ``Accept: application/json; verbose=true`` adds the neighbours' distances and labels
    verbose = wants_verbose(accept, response_type)
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
