"""``/invocations`` for an XGBoost model, with the 1.7-1 container's request and response shapes.

Requests: ``text/csv`` (features only; the delimiter is sniffed from the first line and empty
fields are missing values), ``text/libsvm`` (a leading label is optional and ignored; no
Content-Type means LibSVM), ``application/x-recordio-protobuf``. An empty body gets an empty
answer (SageMaker's 204).

Responses: Accept ``text/csv`` (default, or ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``) is one
prediction per line, a row of probabilities for ``multi:softprob``; ``application/json`` is
``{"predictions": [{"score": p}, ...]}``. ``application/jsonlines`` and RecordIO without selectable
output are UNVERIFIED in the reference: forgeml answers ``{"score": p}`` per line and a
``label["score"]`` tensor per record, the first-party algorithms' shapes. With
``SAGEMAKER_INFERENCE_OUTPUT`` set (Autopilot's selectable output) each record carries the keys
asked for; keys the objective cannot give are NaN. ``SAGEMAKER_BATCH`` (batch transform) writes
``str(prediction)`` per line.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.base import InferenceError, UnsupportedContentType
from forgeml.algorithms.inference import encode_response, negotiate_accept, split_mime
from forgeml.algorithms.xgboost.model import XGBoostModel, fit_width, load
from forgeml.errors import ClientError

CSV = "text/csv"
LIBSVM = "text/libsvm"
RECORDIO = "application/x-recordio-protobuf"
JSON = "application/json"
JSONLINES = "application/jsonlines"

REQUEST_TYPES = (CSV, LIBSVM, "text/x-libsvm", RECORDIO)
ACCEPT_TYPES = (JSON, JSONLINES, RECORDIO, CSV)

PREDICTED_LABEL, LABELS, PROBABILITY, PROBABILITIES = "predicted_label", "labels", "probability", "probabilities"
RAW_SCORE, RAW_SCORES, PREDICTED_SCORE = "raw_score", "raw_scores", "predicted_score"
SELECTABLE_ORDER = (PREDICTED_LABEL, LABELS, PROBABILITY, PROBABILITIES, RAW_SCORE, RAW_SCORES, PREDICTED_SCORE)
_CLASSIFIER_KEYS = (PREDICTED_LABEL, LABELS, RAW_SCORE, RAW_SCORES)
_PROBABILISTIC_KEYS = (PREDICTED_LABEL, LABELS, PROBABILITY, PROBABILITIES, RAW_SCORE, RAW_SCORES)
VALID_KEYS = {
    "reg:squarederror": (PREDICTED_SCORE,),
    "reg:logistic": (PREDICTED_SCORE,),
    "reg:gamma": (PREDICTED_SCORE,),
    "reg:tweedie": (PREDICTED_SCORE,),
    "reg:absoluteerror": (PREDICTED_SCORE,),
    "binary:logistic": _PROBABILISTIC_KEYS,
    "binary:logitraw": _CLASSIFIER_KEYS,
    "binary:hinge": _CLASSIFIER_KEYS,
    "multi:softmax": _CLASSIFIER_KEYS,
    "multi:softprob": _PROBABILISTIC_KEYS,
}

log = logging.getLogger(__name__)


def load_model(model_dir: Path) -> XGBoostModel:
    """The model ``train`` wrote, from the extracted ``model.tar.gz``."""
    return load(model_dir)


def invoke(model: XGBoostModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    mime, _ = split_mime(content_type)
    mime = LIBSVM if mime in ("", "text/x-libsvm") else mime
    if mime not in REQUEST_TYPES:
        raise UnsupportedContentType(
            f"Content type {content_type} is not supported; supported: {', '.join(REQUEST_TYPES)}"
        )
    response_type = negotiate_accept(
        accept, ACCEPT_TYPES, os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", CSV)
    )
    if not body:
        return b"", response_type
    features = fit_width(_parse(body, mime), model, mime)
    predictions = model.predict(features)
    if "SAGEMAKER_INFERENCE_OUTPUT" in os.environ:
        keys = os.environ["SAGEMAKER_INFERENCE_OUTPUT"].replace(" ", "").lower().split(",")
        return _encode_selected(selected_outputs(predictions, keys, model), keys, response_type)
    return _encode_default(predictions, response_type)


_NUMERIC_CSV_LINE = re.compile(rb"^[0-9eE+\-.]+(?:,[0-9eE+\-.]+)*$")


def sniff_delimiter(first_line: str) -> str:
    """The container's rule: ``csv.Sniffer`` on the first line, ``,`` when it finds nothing usable."""
    try:
        found = csv.Sniffer().sniff(first_line[:512]).delimiter
    except csv.Error:
        return ","
    return "," if found.isalnum() or found in ".-+" else found


def _parse(body: bytes, mime: str) -> np.ndarray | sp.csr_matrix:
    try:
        if mime == CSV:
            from forgeml.data.csv_format import parse_csv_block

            text = body.strip()
            if b"\n" not in text and _NUMERIC_CSV_LINE.match(text):
                # The usual real-time request: one record of plain numbers. Sniffing the delimiter and
                # building a CSV reader cost ~20x the prediction itself, and cannot change this result.
                return np.array(text.split(b","), dtype=np.float32).reshape(1, -1)
            first = text.split(b"\n", 1)[0].decode("utf-8")
            return parse_csv_block(text, delimiter=sniff_delimiter(first))
        if mime == LIBSVM:
            from forgeml.data.libsvm import read_libsvm

            return read_libsvm(_with_labels(body)).features
        from forgeml.data.recordio_protobuf import read_recordio_protobuf

        return read_recordio_protobuf(body).features
    except (ClientError, UnicodeDecodeError, ValueError) as exc:
        raise InferenceError(f"Loading {mime} data failed with exception, please ensure data is in {mime} format: {exc}") from exc


def _with_labels(body: bytes) -> bytes:
    """Inference LibSVM may omit the label: every ``i:v`` token is a feature, as in the container."""
    lines = []
    for line in body.split(b"\n"):
        tokens = line.split()
        if tokens and b":" in tokens[0]:
            line = b"0 " + line
        lines.append(line)
    return b"\n".join(lines)


def _encode_default(predictions: np.ndarray, accept: str) -> tuple[bytes, str]:
    if accept == CSV:
        if os.environ.get("SAGEMAKER_BATCH"):
            return "".join(f"{value}\n" for value in predictions.tolist()).encode(), CSV
        # numpy's str of a float32: the sagemaker-containers CSV encoder's np.savetxt(fmt="%s")
        if predictions.ndim == 1:
            return "".join(str(value) + "\n" for value in predictions).encode(), CSV
        return "".join(",".join(str(v) for v in row) + "\n" for row in predictions).encode(), CSV
    return encode_response([{"score": value} for value in predictions.tolist()], accept)


def selected_outputs(predictions: np.ndarray, keys: list[str], model: XGBoostModel) -> list[dict[str, Any]]:
    """Per-record dicts of the selectable-output keys (the container's ``get_selected_predictions``)."""
    objective = model.objective
    if objective not in VALID_KEYS:
        raise InferenceError(f"Objective `{objective}` unsupported for selectable inference predictions.")
    valid = [key for key in SELECTABLE_ORDER if key in keys and key in VALID_KEYS[objective]]
    invalid = [key for key in keys if key not in VALID_KEYS[objective]]
    if invalid:
        log.warning(
            "Selected key(s) %s incompatible for objective '%s'. Please use list of compatible selectable "
            "inference predictions: %s", invalid, objective, list(VALID_KEYS[objective]),
        )
    labels = [0, 1] if objective.startswith("binary:") else list(range(model.num_class))
    rows = []
    for raw in predictions:
        values = _selectable_values(raw, objective, labels)
        row = {key: values[key] for key in valid}
        row.update({key: float("nan") for key in invalid})
        rows.append(row)
    return rows


def _selectable_values(raw: np.ndarray, objective: str, labels: list[int]) -> dict[str, Any]:
    if objective == "multi:softprob":
        vector = raw.tolist()
        top = max(vector)
        return {
            PREDICTED_LABEL: int(np.argmax(raw)), LABELS: labels, PROBABILITY: top, PROBABILITIES: vector,
            RAW_SCORE: top, RAW_SCORES: vector,
        }
    value = raw.item()
    if objective == "binary:logistic":
        predicted: Any = int(value > 0.5)
    elif objective == "binary:logitraw":
        predicted = int(value > 0)
    else:
        predicted = value
    return {
        PREDICTED_LABEL: predicted, LABELS: labels, PROBABILITY: value, PROBABILITIES: [1.0 - value, value],
        RAW_SCORE: value, RAW_SCORES: [1.0 - value, value], PREDICTED_SCORE: value,
    }


def _encode_selected(rows: list[dict[str, Any]], keys: list[str], accept: str) -> tuple[bytes, str]:
    if accept != CSV:
        return encode_response(rows, accept)
    lines = [",".join(f'"{row[key]}"' if isinstance(row[key], list) else str(row[key]) for key in keys) for row in rows]
    text = "\n".join(lines) + ("\n" if os.environ.get("SAGEMAKER_BATCH") else "")
    return text.encode(), CSV
