"""The inference toolkit's default request decoding and response encoding, for custom scripts.

A script that leaves out ``input_fn`` gets JSON, CSV and NPY bodies (and NPZ sparse matrices) as
NumPy arrays; one that leaves out ``output_fn`` gets its prediction written as JSON, CSV or NPY.
Two deliberate differences from the toolkit: a one-line CSV body is a 1 x n matrix (a record, which
is what ``model.predict`` wants) rather than a vector, and NPY bodies are loaded without pickle,
since a request body must never run code.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from forgeml.algorithms.base import InferenceError, UnsupportedContentType
from forgeml.algorithms.inference import negotiate_accept, split_mime

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
NPZ = "application/x-npz"

DECODED_TYPES = (JSON, CSV, NPY, NPZ)
ENCODED_TYPES = (JSON, CSV, NPY)
#: bodies of these types reach ``input_fn`` as ``str``, as in the toolkit
UTF8_TYPES = (JSON, CSV)


def mime(content_type: str | None) -> str:
    """The media type without parameters, lower-cased (``""`` when absent)."""
    return split_mime(content_type)[0]


def decode(data: bytes | str, content_type: str | None) -> Any:
    """The toolkit's ``default_input_fn``: a request body as a NumPy array (or a sparse matrix)."""
    kind = mime(content_type)
    if kind not in DECODED_TYPES:
        raise UnsupportedContentType(
            f"Content type {content_type} is not supported by the default input_fn; supported: "
            f"{', '.join(DECODED_TYPES)}. Define input_fn in the inference script for other types."
        )
    if not data:
        raise InferenceError("the request body is empty")
    try:
        if kind == JSON:
            return np.array(json.loads(data))
        if kind == CSV:
            return _csv(data if isinstance(data, str) else data.decode("utf-8"))
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if kind == NPY:
            return np.load(io.BytesIO(raw), allow_pickle=False)
        import scipy.sparse as sp

        return sp.load_npz(io.BytesIO(raw))
    except InferenceError:
        raise
    except (ValueError, TypeError, OSError, EOFError, KeyError) as exc:
        raise InferenceError(f"could not parse the {kind} request body: {exc}") from exc


def encode(prediction: Any, accept: str | None, default_accept: str = JSON) -> tuple[bytes, str]:
    """The toolkit's ``default_output_fn``: the prediction in the first supported Accept type."""
    kind = negotiate_accept(accept, ENCODED_TYPES, default_accept)
    if kind == JSON:
        return json.dumps(prediction, default=_json_default).encode("utf-8"), JSON
    if kind == CSV:
        stream = io.StringIO()
        np.savetxt(stream, np.atleast_1d(np.asarray(prediction)), delimiter=",", fmt="%s")
        return stream.getvalue().encode("utf-8"), CSV
    if kind == NPY:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(prediction))
        return buffer.getvalue(), NPY
    raise UnsupportedContentType(
        f"Accept type {accept} is not supported by the default output_fn; supported: {', '.join(ENCODED_TYPES)}"
    )


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _csv(text: str) -> np.ndarray:
    """CSV records as a float matrix; empty fields are NaN, anything else unparsable is a 400."""
    if not text.strip():
        raise InferenceError("the request body is empty")
    try:
        return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:
        return _csv_with_missing_values(text)


def _csv_with_missing_values(text: str) -> np.ndarray:
    rows: list[list[float]] = []
    for number, line in enumerate((line for line in text.splitlines() if line.strip()), start=1):
        row = []
        for field in line.split(","):
            field = field.strip()
            try:
                row.append(float(field) if field else float("nan"))
            except ValueError:
                raise InferenceError(f"could not parse value '{field}' as a number in CSV record {number}") from None
        if rows and len(row) != len(rows[0]):
            raise InferenceError(f"CSV record {number} has {len(row)} fields, record 1 has {len(rows[0])}")
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)
