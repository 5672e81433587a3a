"""LibSVM (``text/libsvm``): ``<label>[:<weight>] [qid:<n>] <index>:<value> ... [# comment]``.

XGBoost's convention applies: a feature's column is its index exactly as written (SageMaker's
abalone data starts at 1, so its column 0 is empty), and an optional ``:weight`` after the label
is the instance weight.  Parsing tries scikit-learn's compiled reader first; when it refuses the
data (weights, unsorted indices, or a real error) a line-by-line parser takes over, which
accepts the former and names the file, line and token for the latter.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import scipy.sparse as sp

from forgeml.data.dataset import RecordBatch
from forgeml.data.sources import CHUNK_SIZE, Source, iter_line_batches, open_stream, read_all
from forgeml.errors import DataFormatError


@dataclass
class _Parsed:
    labels: list[float]
    weights: list[float]
    indptr: list[int]
    indices: list[int]
    values: list[float]


def _number(token: str, what: str, path: str | None, line: int) -> float:
    try:
        if "_" in token:
            raise ValueError(token)
        return float(token)
    except ValueError:
        raise DataFormatError(f"could not parse {what} {token!r} as a float", path=path, record=line) from None


def _feature(token: str, path: str | None, line: int, n_features: int | None) -> tuple[int, float]:
    index_text, sep, value_text = token.partition(":")
    if not sep:
        raise DataFormatError(f"bad libsvm token {token!r}: expected <index>:<value>", path=path, record=line)
    try:
        index = int(index_text)
    except ValueError:
        raise DataFormatError(
            f"bad libsvm token {token!r}: feature index {index_text!r} is not an integer", path=path, record=line
        ) from None
    if index < 0:
        raise DataFormatError(f"bad libsvm token {token!r}: negative feature index", path=path, record=line)
    if n_features is not None and index >= n_features:
        raise DataFormatError(
            f"feature index {index} is out of range for {n_features} features", path=path, record=line
        )
    return index, _number(value_text, "feature value", path, line)


def _parse_exact(data: bytes, path: str | None, first_line: int, n_features: int | None) -> _Parsed:
    parsed = _Parsed([], [], [0], [], [])
    weighted: bool | None = None
    text = data.decode("utf-8", errors="replace")
    for offset, raw in enumerate(text.split("\n")):
        line = first_line + offset
        tokens = raw.partition("#")[0].split()
        if not tokens:
            continue
        label_text, sep, weight_text = tokens[0].partition(":")
        if weighted is None:
            weighted = bool(sep)
        elif weighted != bool(sep):
            state = "has an instance weight" if sep else "has no instance weight"
            raise DataFormatError(f"line {state}, unlike the lines before it", path=path, record=line)
        parsed.labels.append(_number(label_text, "label", path, line))
        if sep:
            parsed.weights.append(_number(weight_text, "instance weight", path, line))
        row = sorted(
            _feature(token, path, line, n_features) for token in tokens[1:] if not token.startswith("qid:")
        )
        for (a, _), (b, _) in zip(row, row[1:], strict=False):
            if a == b:
                raise DataFormatError(f"feature index {a} appears twice", path=path, record=line)
        parsed.indices.extend(index for index, _ in row)
        parsed.values.extend(value for _, value in row)
        parsed.indptr.append(len(parsed.indices))
    return parsed


def _to_batch(parsed: _Parsed, n_features: int | None) -> RecordBatch:
    n_rows = len(parsed.labels)
    indices = np.array(parsed.indices, dtype=np.int64)
    width = n_features if n_features is not None else (int(indices.max()) + 1 if indices.size else 0)
    with np.errstate(over="ignore"):
        values = np.array(parsed.values, dtype=np.float64).astype(np.float32)
        labels = np.array(parsed.labels, dtype=np.float64).astype(np.float32)
        weights = np.array(parsed.weights, dtype=np.float64).astype(np.float32) if parsed.weights else None
    features = sp.csr_matrix((values, indices, np.array(parsed.indptr, dtype=np.int64)), shape=(n_rows, width))
    return RecordBatch(features, labels, weights)


def _has_weights(data: bytes) -> bool:
    for raw in io.BytesIO(data):
        tokens = raw.partition(b"#")[0].split()
        if tokens:
            return b":" in tokens[0]
    return False


def parse_libsvm_block(
    data: bytes, *, path: str | None = None, first_line: int = 1, n_features: int | None = None
) -> RecordBatch:
    """Parse libsvm text into a CSR batch (labels always, weights when the lines carry them)."""
    # scikit-learn's float parsing accepts "1_0"; send such data to the stricter parser.
    if not _has_weights(data) and b"_" not in data:
        try:
            from sklearn.datasets import load_svmlight_file  # imported here: sklearn costs ~1 s to import

            features, labels = load_svmlight_file(
                io.BytesIO(data), n_features=n_features, dtype=np.float32, zero_based=True
            )
        except (ValueError, IndexError, UnicodeDecodeError):
            pass  # the exact parser below either accepts the data or names the culprit
        else:
            matrix = sp.csr_matrix(features, dtype=np.float32)
            if matrix.shape[0] == 0:
                matrix = sp.csr_matrix((0, n_features or 0), dtype=np.float32)
            with np.errstate(over="ignore"):
                return RecordBatch(matrix, np.asarray(labels, dtype=np.float64).astype(np.float32))
    return _to_batch(_parse_exact(data, path, first_line, n_features), n_features)


def read_libsvm(
    source: Source, n_features: int | None = None, path: str | os.PathLike[str] | None = None
) -> RecordBatch:
    """Read a whole libsvm source into CSR features, labels and (if present) weights."""
    buf, name = read_all(source, path)
    return parse_libsvm_block(buf.tobytes(), path=name, n_features=n_features)


def iter_libsvm(
    stream: Source,
    batch_size: int = 1000,
    n_features: int | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[RecordBatch]:
    """Yield batches of up to ``batch_size`` lines' rows from a stream read once.

    Without ``n_features`` a batch is as wide as the largest index seen so far (libsvm gives no
    width up front), so widths never shrink from one batch to the next.
    """
    width = 0
    weighted: bool | None = None
    with open_stream(stream, path) as (handle, name):
        for text, first_line in iter_line_batches(handle, batch_size, chunk_size):
            batch = parse_libsvm_block(text, path=name, first_line=first_line, n_features=n_features)
            if batch.n_rows == 0:
                continue
            if weighted is None:
                weighted = batch.weights is not None
            elif weighted != (batch.weights is not None):
                raise DataFormatError("instance weights appear on some lines only", path=name, record=first_line)
            if n_features is None:
                width = max(width, batch.n_features)
                matrix: Any = batch.features
                batch.features = sp.csr_matrix(
                    (matrix.data, matrix.indices, matrix.indptr), shape=(batch.n_rows, width)
                )
            yield batch


def _format(value: float) -> str:
    return f"{value:.9g}" if isinstance(value, np.float32) else f"{value:.17g}"


def write_libsvm(
    file: IO[bytes] | str | os.PathLike[str], features: Any, labels: Any, weights: Any = None
) -> None:
    """Write rows as libsvm lines with zero-based column indices; zeros are left out."""
    matrix = sp.csr_matrix(features)
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != matrix.shape[0]:
        raise ValueError(f"{labels.shape[0]} labels for {matrix.shape[0]} rows")
    if weights is not None:
        weights = np.asarray(weights).reshape(-1)
        if weights.shape[0] != matrix.shape[0]:
            raise ValueError(f"{weights.shape[0]} weights for {matrix.shape[0]} rows")
    lines = []
    for row in range(matrix.shape[0]):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        head = _format(labels[row]) + (":" + _format(weights[row]) if weights is not None else "")
        pairs = [
            f"{index}:{_format(value)}"
            for index, value in zip(matrix.indices[lo:hi], matrix.data[lo:hi], strict=True)
            if value != 0
        ]
        lines.append(" ".join([head, *pairs]) + "\n")
    payload = "".join(lines).encode()
    if isinstance(file, str | os.PathLike):
        with open(file, "wb") as handle:
            handle.write(payload)
    else:
        file.write(payload)
