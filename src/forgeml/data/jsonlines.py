"""JSON Lines (``application/jsonlines``) and JSON (``application/json``) rows.

Each row is one object in any of the shapes SageMaker's first-party algorithms accept
(reference §0.3): ``{"features": [...]}``, ``{"data": {"features": {"values": [...]}}}`` or the
sparse ``{"data": {"features": {"keys": [...], "shape": [n], "values": [...]}}}``.  A label, when
present, is ``"label"`` at the top level or inside ``"data"``: a number, a list, or
``{"values": [...]}``.  A JSON document holds such rows under ``"instances"`` (or is a list).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import IO, Any

import numpy as np
import scipy.sparse as sp

from forgeml.data.dataset import RecordBatch
from forgeml.data.rows import RowCollector
from forgeml.data.sources import CHUNK_SIZE, Source, iter_line_batches, open_stream, read_all
from forgeml.errors import DataFormatError


def _numbers(raw: Any, what: str, path: str | None, number: int) -> list[float]:
    items = raw if isinstance(raw, list) else [raw]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | float):
            raise DataFormatError(f"{what} value {item!r} is not a number", path=path, record=number)
    return [float(item) for item in items]


def _tensor(
    raw: Any, what: str, path: str | None, number: int
) -> tuple[list[float], list[int] | None, int | None]:
    """``(values, keys or None, width)`` from a list or a ``{"values", "keys", "shape"}`` object."""
    if not isinstance(raw, dict):
        values = _numbers(raw, what, path, number)
        return values, None, len(values)
    if "values" not in raw:
        raise DataFormatError(f"{what} object has no 'values'", path=path, record=number)
    values = _numbers(raw["values"], what, path, number)
    shape = raw.get("shape")
    width = None
    if shape is not None:
        dims = shape if isinstance(shape, list) else [shape]
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
            raise DataFormatError(f"{what} shape {shape!r} is not a list of sizes", path=path, record=number)
        width = math.prod(dims)
    keys_raw = raw.get("keys")
    if keys_raw is None:
        if width is not None and width != len(values):
            raise DataFormatError(
                f"dense {what} has {len(values)} values but its shape says {width}", path=path, record=number
            )
        return values, None, len(values)
    keys = keys_raw if isinstance(keys_raw, list) else [keys_raw]
    if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in keys):
        raise DataFormatError(f"{what} keys must be non-negative integers", path=path, record=number)
    if len(keys) != len(values):
        raise DataFormatError(
            f"sparse {what} has {len(keys)} keys but {len(values)} values", path=path, record=number
        )
    if width is not None and keys and max(keys) >= width:
        raise DataFormatError(f"sparse {what} key {max(keys)} is outside shape {shape}", path=path, record=number)
    return values, keys, width


def _label(raw: Any, path: str | None, number: int) -> list[float] | None:
    if raw is None:
        return None
    values, keys, width = _tensor(raw, "label", path, number)
    if keys is None:
        return values
    dense = [0.0] * (width if width is not None else max(keys, default=-1) + 1)
    for key, value in zip(keys, values, strict=True):
        dense[key] = value
    return dense


def add_instance(collector: RowCollector, obj: Any, number: int) -> None:
    """Decode one row object into ``collector``."""
    path = collector.path
    if not isinstance(obj, dict):
        raise DataFormatError("expected a JSON object per row", path=path, record=number)
    data = obj.get("data")
    if "features" in obj:
        raw_features = obj["features"]
    elif isinstance(data, dict) and "features" in data:
        raw_features = data["features"]
    else:
        raise DataFormatError("row has neither 'features' nor 'data.features'", path=path, record=number)
    label_raw = obj.get("label", data.get("label") if isinstance(data, dict) else None)
    values, keys, width = _tensor(raw_features, "feature", path, number)
    collector.add_row(values, keys, width, _label(label_raw, path, number), number)


def parse_jsonlines_block(data: bytes, *, path: str | None = None, first_line: int = 1) -> RecordBatch:
    """Parse JSON Lines text (blank lines skipped) into one batch."""
    collector = RowCollector(path)
    for offset, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        number = first_line + offset
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise DataFormatError(f"invalid JSON: {exc}", path=path, record=number) from None
        add_instance(collector, obj, number)
    return collector.batch()


def read_jsonlines(source: Source, path: str | os.PathLike[str] | None = None) -> RecordBatch:
    """Read a whole JSON Lines source; records are numbered by line."""
    buf, name = read_all(source, path)
    return parse_jsonlines_block(buf.tobytes(), path=name)


def iter_jsonlines(
    stream: Source,
    batch_size: int = 1000,
    path: str | os.PathLike[str] | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[RecordBatch]:
    """Yield batches of up to ``batch_size`` rows from a stream read once."""
    with open_stream(stream, path) as (handle, name):
        for text, first_line in iter_line_batches(handle, batch_size, chunk_size):
            batch = parse_jsonlines_block(text, path=name, first_line=first_line)
            if batch.n_rows:
                yield batch


def read_json(source: Source, path: str | os.PathLike[str] | None = None) -> RecordBatch:
    """Read a JSON document: ``{"instances": [row, ...]}`` or a bare list of rows."""
    buf, name = read_all(source, path)
    try:
        doc = json.loads(buf.tobytes())
    except ValueError as exc:
        raise DataFormatError(f"invalid JSON: {exc}", path=name) from None
    rows = doc.get("instances") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise DataFormatError("expected {\"instances\": [...]} or a JSON list of rows", path=name)
    collector = RowCollector(name)
    for index, obj in enumerate(rows):
        add_instance(collector, obj, index + 1)
    return collector.batch()


def _row_object(features: Any, row: int, n_cols: int, label: Any) -> dict[str, Any]:
    obj: dict[str, Any]
    if sp.issparse(features):
        lo, hi = features.indptr[row], features.indptr[row + 1]
        obj = {
            "data": {
                "features": {
                    "keys": features.indices[lo:hi].tolist(),
                    "shape": [n_cols],
                    "values": features.data[lo:hi].tolist(),
                }
            }
        }
    else:
        obj = {"features": features[row].tolist()}
    if label is not None:
        obj["label"] = label.tolist() if isinstance(label, np.ndarray) else label.item()
    return obj


def write_jsonlines(file: IO[bytes] | str | os.PathLike[str], features: Any, labels: Sequence[Any] | None = None) -> None:
    """Write one object per row: ``{"features": [...]}`` dense, the ``data.features`` form sparse."""
    matrix = sp.csr_matrix(features) if sp.issparse(features) else np.asarray(features)
    if matrix.ndim != 2:
        raise ValueError(f"features must be 2-D, got shape {matrix.shape}")
    label_array = None if labels is None else np.asarray(labels)
    if label_array is not None and label_array.shape[0] != matrix.shape[0]:
        raise ValueError(f"{label_array.shape[0]} labels for {matrix.shape[0]} rows")
    lines = []
    for row in range(matrix.shape[0]):
        label = None if label_array is None else label_array[row]
        lines.append(json.dumps(_row_object(matrix, row, matrix.shape[1], label)) + "\n")
    payload = "".join(lines).encode()
    if isinstance(file, str | os.PathLike):
        with open(file, "wb") as handle:
            handle.write(payload)
    else:
        file.write(payload)
