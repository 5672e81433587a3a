"""Request decoding and response encoding shared by the first-party algorithms.

SageMaker's built-in algorithms accept the same request shapes (CSV rows, JSON ``instances``,
JSON lines, RecordIO-protobuf) and answer in the same envelopes (``{"predictions": [...]}``, one
JSON object per line, or RecordIO records whose outputs sit under ``label``). Algorithms turn
features into per-row output dicts; this module does the rest: ``decode_request`` checks a request
against the content types the algorithm declares and parses it, ``encode_response`` writes the
answer.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.base import BuiltinAlgorithm, InferenceError, UnsupportedContentType

CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
RECORDIO = "application/x-recordio-protobuf"

Features: TypeAlias = np.ndarray | sp.csr_matrix


def split_mime(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``"text/csv; label_size=0"`` -> (``"text/csv"``, ``{"label_size": "0"}``)."""
    if not content_type:
        return "", {}
    head, *rest = content_type.split(";")
    params = {}
    for item in rest:
        key, _, value = item.partition("=")
        if key.strip():
            params[key.strip().lower()] = value.strip()
    return head.strip().lower(), params


def negotiate_accept(accept: str | None, supported: Sequence[str], default: str) -> str:
    """The response type for an Accept header (first supported entry; ``*/*`` or none -> default)."""
    if not accept:
        return default
    for item in accept.split(","):
        mime, _ = split_mime(item)
        if mime in ("*/*", ""):
            return default
        if mime in supported:
            return mime
    raise UnsupportedContentType(f"Accept type '{accept}' is not supported; supported: {', '.join(supported)}")


def wants_verbose(accept: str | None, response_type: str) -> bool:
    """``Accept: application/json; verbose=true`` (or ``=1``) asks k-NN and IP Insights for more."""
    for item in (accept or "").split(","):
        mime, params = split_mime(item)
        if mime == response_type and params.get("verbose", "").strip().lower() in ("true", "1"):
            return True
    return False


def decode_request(
    algorithm: BuiltinAlgorithm | type[BuiltinAlgorithm],
    body: bytes,
    content_type: str,
    accept: str | None,
    n_features: int | None = None,
) -> tuple[Features, str]:
    """The request's features and the response type, by the algorithm's declared content types.

    The Accept header is checked first, so an unsupported Accept fails before the body is parsed.
    """
    response_type = negotiate_accept(accept, algorithm.accept_types, algorithm.default_accept)
    return parse_request(body, content_type, algorithm.request_content_types, n_features), response_type


def parse_request(body: bytes, content_type: str, supported: Sequence[str], n_features: int | None = None) -> Features:
    """Features (rows x columns) from a request body; sparse stays sparse."""
    mime, params = split_mime(content_type)
    if mime not in supported:
        raise UnsupportedContentType(
            f"Content type '{content_type}' is not supported; supported: {', '.join(supported)}"
        )
    if not body:
        raise InferenceError("the request body is empty")
    try:
        if mime == CSV:
            features = _parse_csv(body, int(params.get("label_size", "0")))
        elif mime == JSON:
            features = _rows_from_instances(_load_json(body), n_features)
        elif mime == JSONLINES:
            lines = [line for line in body.decode("utf-8").splitlines() if line.strip()]
            features = _rows_from_instances({"instances": [json.loads(line) for line in lines]}, n_features)
        elif mime == RECORDIO:
            from forgeml.data.recordio_protobuf import read_recordio_protobuf

            features = read_recordio_protobuf(body).features
        else:  # pragma: no cover - guarded by `supported`
            raise UnsupportedContentType(f"Content type '{content_type}' is not supported")
    except (InferenceError, UnsupportedContentType):
        raise
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InferenceError(f"could not parse the {mime} request body: {exc}") from exc
    if n_features is not None and features.shape[1] != n_features:
        raise InferenceError(f"the request has {features.shape[1]} features per record but the model expects {n_features}")
    return features


def _parse_csv(body: bytes, label_size: int) -> np.ndarray:
    text = body.decode("utf-8").strip()
    rows = [line for line in text.splitlines() if line.strip()]
    try:
        matrix = np.loadtxt(io.StringIO("\n".join(rows)), delimiter=",", dtype=np.float32, ndmin=2)
    except ValueError as exc:
        for number, line in enumerate(rows, start=1):
            for field in line.split(","):
                try:
                    float(field)
                except ValueError:
                    raise InferenceError(f"could not parse value '{field.strip()}' as a number in CSV record {number}") from exc
        raise InferenceError(f"CSV records have different numbers of columns: {exc}") from exc
    return matrix[:, label_size:]


def _load_json(body: bytes) -> Any:
    return json.loads(body.decode("utf-8"))


def _rows_from_instances(payload: Any, n_features: int | None) -> Features:
    if isinstance(payload, dict) and "instances" in payload:
        instances = payload["instances"]
    elif isinstance(payload, dict) and ("features" in payload or "data" in payload):
        instances = [payload]
    elif isinstance(payload, list):
        instances = payload
    else:
        raise InferenceError("a JSON request must be {\"instances\": [...]} with one object per record")
    dense: list[list[float]] = []
    sparse_rows: list[tuple[list[int], list[float], int]] = []
    for index, instance in enumerate(instances, start=1):
        vector = _instance_vector(instance, index)
        if isinstance(vector, tuple):
            sparse_rows.append(vector)
        else:
            dense.append(vector)
    if sparse_rows and dense:
        raise InferenceError("a request mixes dense and sparse instances")
    if sparse_rows:
        width = n_features or max(shape for _, _, shape in sparse_rows)
        indptr = np.cumsum([0] + [len(k) for k, _, _ in sparse_rows])
        keys = np.concatenate([np.asarray(k, dtype=np.int64) for k, _, _ in sparse_rows])
        values = np.concatenate([np.asarray(v, dtype=np.float32) for _, v, _ in sparse_rows])
        return sp.csr_matrix((values, keys, indptr), shape=(len(sparse_rows), width), dtype=np.float32)
    if not dense:
        raise InferenceError("the request holds no instances")
    width = len(dense[0])
    for index, row in enumerate(dense, start=1):
        if len(row) != width:
            raise InferenceError(f"instance {index} has {len(row)} features, instance 1 has {width}")
    return np.asarray(dense, dtype=np.float32)


def _instance_vector(instance: Any, index: int) -> list[float] | tuple[list[int], list[float], int]:
    if isinstance(instance, list):
        return [float(v) for v in instance]
    if not isinstance(instance, dict):
        raise InferenceError(f"instance {index} must be an object with 'features' or 'data'")
    if "features" in instance:
        return [float(v) for v in instance["features"]]
    data = instance.get("data", {}).get("features")
    if not isinstance(data, dict) or "values" not in data:
        raise InferenceError(f"instance {index} must carry 'features' or 'data.features.values'")
    if "keys" in data:
        shape = data.get("shape") or [max(data["keys"]) + 1]
        return [int(k) for k in data["keys"]], [float(v) for v in data["values"]], int(shape[0])
    return [float(v) for v in data["values"]]


def encode_response(rows: list[dict[str, Any]], accept: str, top_key: str = "predictions") -> tuple[bytes, str]:
    """Encode per-record output dicts in the negotiated response type."""
    if accept == JSON:
        return json.dumps({top_key: rows}).encode(), JSON
    if accept == JSONLINES:
        return ("\n".join(json.dumps(row) for row in rows) + "\n").encode(), JSONLINES
    if accept == CSV:
        lines = []
        for row in rows:
            cells: list[str] = []
            for value in row.values():
                cells.extend(str(v) for v in (value if isinstance(value, list) else [value]))
            lines.append(",".join(cells))
        return ("\n".join(lines) + "\n").encode(), CSV
    if accept == RECORDIO:
        return _encode_recordio(rows), RECORDIO
    raise UnsupportedContentType(f"Accept type '{accept}' is not supported")


def _encode_recordio(rows: list[dict[str, Any]]) -> bytes:
    from forgeml.data.protobuf_record import Record
    from forgeml.data.recordio import write_recordio

    out = io.BytesIO()
    for row in rows:
        record = Record()
        for key, value in row.items():
            values = value if isinstance(value, list) else [value]
            record.label[key].float32_tensor.values.extend(float(v) for v in values)
        write_recordio(out, record.SerializeToString())
    return out.getvalue()
