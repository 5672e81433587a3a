"""IP Insights inference: ``entity, IPv4`` pairs in CSV, JSON or JSON Lines; dot products out.

``Accept: application/json; verbose=True`` adds each pair's ``entity_embedding`` and
``ip_embedding`` (reference §8.3). No RecordIO either way, as SageMaker.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from forgeml.algorithms.base import InferenceError, UnsupportedContentType
from forgeml.algorithms.inference import (
    JSON,
    JSONLINES,
    encode_response,
    negotiate_accept,
    split_mime,
    wants_verbose,
)
from forgeml.algorithms.ip_insights.artifact import load
from forgeml.algorithms.ip_insights.encoding import entity_buckets, parse_ipv4
from forgeml.algorithms.ip_insights.model import IPInsightsModel

CSV = "text/csv"
REQUEST_TYPES = (CSV, JSON, JSONLINES)
ACCEPT_TYPES = (JSON, JSONLINES)


def _pair(instance: Any, number: int) -> tuple[str, str]:
    values = instance
    if isinstance(instance, dict):
        values = instance.get("features")
        if values is None:
            values = (instance.get("data") or {}).get("features", {}).get("values")
    if not isinstance(values, list) or len(values) != 2:
        raise InferenceError(
            f"instance {number} must hold two values, [entity, IPv4 address], under 'features' or 'data.features.values'"
        )
    return str(values[0]), str(values[1])


def parse_pairs(body: bytes, content_type: str) -> list[tuple[str, str]]:
    mime, _ = split_mime(content_type)
    if mime not in REQUEST_TYPES:
        raise UnsupportedContentType(f"Content type '{content_type}' is not supported; supported: {', '.join(REQUEST_TYPES)}")
    try:
        text = body.decode("utf-8")
        if mime == CSV:
            rows = [row for row in csv.reader(io.StringIO(text), skipinitialspace=True) if row]
            for number, row in enumerate(rows, start=1):
                if len(row) != 2:
                    raise InferenceError(f"CSV record {number} has {len(row)} fields; expected entity,IPv4 address")
            pairs = [(row[0], row[1]) for row in rows]
        elif mime == JSON:
            payload = json.loads(text)
            instances = payload.get("instances") if isinstance(payload, dict) else payload
            if not isinstance(instances, list):
                raise InferenceError('a JSON request must be {"instances": [...]} with one object per pair')
            pairs = [_pair(instance, n) for n, instance in enumerate(instances, start=1)]
        else:
            lines = [line for line in text.splitlines() if line.strip()]
            pairs = [_pair(json.loads(line), n) for n, line in enumerate(lines, start=1)]
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise InferenceError(f"could not parse the {mime} request body: {exc}") from exc
    if not pairs:
        raise InferenceError("the request holds no (entity, IPv4 address) pairs")
    return pairs


def load_model(model_dir: Path) -> IPInsightsModel:
    """The model ``train`` wrote, from the extracted ``model.tar.gz``."""
    return load(Path(model_dir))


def invoke(model: IPInsightsModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    response_type = negotiate_accept(accept, ACCEPT_TYPES, JSON)
    pairs = parse_pairs(body, content_type)
    entities = np.array([e.strip() for e, _ in pairs], dtype=object)
    ips, bad = parse_ipv4(np.array([ip for _, ip in pairs], dtype=object))
    if bad is not None:
        raise InferenceError(f"'{pairs[bad][1].strip()}' in record {bad + 1} is not an IPv4 address in dotted-decimal form")
    rows = entity_buckets(entities, model.num_entity_vectors)
    ip_vectors = model.ip_embedding(ips)
    entity_vectors = model.entity_table[rows]
    dots = np.einsum("ij,ij->i", entity_vectors, ip_vectors)
    if wants_verbose(accept, response_type):
        predictions = [
            {"dot_product": float(d), "entity_embedding": e.tolist(), "ip_embedding": i.tolist()}
            for d, e, i in zip(dots, entity_vectors.astype(np.float64), ip_vectors.astype(np.float64), strict=True)
        ]
    else:
        predictions = [{"dot_product": float(d)} for d in dots]
    return encode_response(predictions, response_type)
