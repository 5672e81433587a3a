"""CSV (``text/csv``) the SageMaker way: no header, the label in the first ``label_size`` columns.

``label_size`` comes from the content type (``text/csv;label_size=0`` for unsupervised data);
it defaults to 1.  Empty fields read as NaN (XGBoost treats them as missing).  Parsing goes
through pyarrow's multithreaded C++ reader; when that refuses the data, a line-by-line scan finds
the exact record and field to blame, so a user sees ``could not parse value 'abc' as a float
(file train.csv, record 17)`` rather than a parser's internal message.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterator
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import scipy.sparse as sp

from forgeml.data.dataset import RecordBatch, empty_batch, split_labels
from forgeml.data.sources import CHUNK_SIZE, Source, iter_line_batches, open_stream, read_all
from forgeml.errors import DataFormatError


def _check_label_size(label_size: int) -> None:
    if not isinstance(label_size, int) or isinstance(label_size, bool) or label_size < 0:
        raise ValueError(f"label_size must be a non-negative integer, got {label_size!r}")


def _first_line(data: bytes) -> tuple[bytes, int] | None:
    """The first non-blank line and its 1-based number."""
    number = 1
    for raw in io.BytesIO(data):
        if raw.strip():
            return raw.rstrip(b"\r\n"), number
        number += 1
    return None


def _parse_field(text: str, path: str | None, line: int, column: int) -> float:
    field = text.strip()
    if not field:
        return math.nan
    try:
        if "_" in field:  # Python's float() accepts "1_000"; CSV readers do not
            raise ValueError(field)
        return float(field)
    except ValueError:
        raise DataFormatError(
            f"could not parse value {field!r} in column {column} as a float", path=path, record=line
        ) from None


def _scan(data: bytes, path: str | None, first_line: int, delimiter: str, n_cols: int | None) -> np.ndarray:
    """The exact parser: slow, but it names the first bad record and field."""
    rows: list[list[float]] = []
    origin = "earlier records"
    text = data.decode("utf-8", errors="replace")
    for offset, raw in enumerate(text.split("\n")):
        number = first_line + offset
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        fields = next(csv.reader([line], delimiter=delimiter))
        if n_cols is None:
            n_cols, origin = len(fields), f"record {number}"
        elif len(fields) != n_cols:
            raise DataFormatError(
                f"found {len(fields)} columns but expected {n_cols} as in {origin}", path=path, record=number
            )
        rows.append([_parse_field(f, path, number, j + 1) for j, f in enumerate(fields)])
    if not rows:
        return np.zeros((0, n_cols or 0), dtype=np.float32)
    return np.array(rows, dtype=np.float64).astype(np.float32)


def _arrow(data: bytes, delimiter: str, n_cols: int) -> np.ndarray:
    names = [f"c{j}" for j in range(n_cols)]
    table = pa_csv.read_csv(
        io.BytesIO(data),
        read_options=pa_csv.ReadOptions(column_names=names),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: pa.float64() for name in names},
            null_values=[""],
            strings_can_be_null=False,
            quoted_strings_can_be_null=True,
        ),
    )
    out = np.empty((table.num_rows, n_cols), dtype=np.float32)
    for j, column in enumerate(table.columns):
        out[:, j] = column.to_numpy()
    return out


def parse_csv_block(
    data: bytes,
    *,
    path: str | None = None,
    first_line: int = 1,
    delimiter: str = ",",
    n_cols: int | None = None,
) -> np.ndarray:
    """Parse CSV text into a float32 matrix (no label split); ``n_cols`` pins the width."""
    first = _first_line(data)
    if first is None:
        return np.zeros((0, n_cols or 0), dtype=np.float32)
    line, number = first
    width = n_cols if n_cols is not None else len(next(csv.reader([line.decode("utf-8", "replace")], delimiter=delimiter)))
    try:
        return _arrow(data, delimiter, width)
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return _scan(data, path, first_line, delimiter, n_cols)


def _labelled(matrix: np.ndarray, label_size: int, path: str | None, first_line: int) -> RecordBatch:
    if matrix.shape[0] == 0:
        return empty_batch()
    if matrix.shape[1] < label_size:
        raise DataFormatError(
            f"CSV has {matrix.shape[1]} columns but label_size is {label_size}", path=path, record=first_line
        )
    features, labels = split_labels(matrix, label_size)
    return RecordBatch(features, labels)


def read_csv(
    source: Source,
    label_size: int = 1,
    path: str | os.PathLike[str] | None = None,
    *,
    delimiter: str = ",",
) -> RecordBatch:
    """Read a whole headerless CSV source; the first ``label_size`` columns are the label."""
    _check_label_size(label_size)
    buf, name = read_all(source, path)
    matrix = parse_csv_block(buf.tobytes(), path=name, delimiter=delimiter)
    return _labelled(matrix, label_size, name, 1)


def iter_csv(
    stream: Source,
    label_size: int = 1,
    batch_size: int = 1000,
    path: str | os.PathLike[str] | None = None,
    *,
    delimiter: str = ",",
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[RecordBatch]:
    """Yield batches of up to ``batch_size`` rows from a stream read once (Pipe mode)."""
    _check_label_size(label_size)
    n_cols: int | None = None
    with open_stream(stream, path) as (handle, name):
        for text, first_line in iter_line_batches(handle, batch_size, chunk_size):
            matrix = parse_csv_block(text, path=name, first_line=first_line, delimiter=delimiter, n_cols=n_cols)
            if matrix.shape[0] == 0:
                continue
            n_cols = matrix.shape[1]
            yield _labelled(matrix, label_size, name, first_line)


def _as_matrix(features: Any, labels: Any) -> np.ndarray:
    dense = features.toarray() if sp.issparse(features) else np.asarray(features)
    if dense.ndim != 2:
        raise ValueError(f"features must be 2-D, got shape {dense.shape}")
    if labels is None:
        return dense
    labels = np.asarray(labels)
    labels = labels.reshape(-1, 1) if labels.ndim == 1 else labels
    if labels.shape[0] != dense.shape[0]:
        raise ValueError(f"{labels.shape[0]} labels for {dense.shape[0]} rows")
    return np.hstack([labels, dense])


def write_csv(file: IO[bytes] | str | os.PathLike[str], features: Any, labels: Any = None) -> None:
    """Write rows as headerless CSV, label column(s) first; float32 values round-trip exactly."""
    matrix = _as_matrix(features, labels)
    precise = matrix.dtype == np.float64
    fmt = "%.17g" if precise else "%.9g"
    if isinstance(file, str | os.PathLike):
        with open(file, "wb") as handle:
            np.savetxt(handle, matrix, delimiter=",", fmt=fmt)
    else:
        np.savetxt(file, matrix, delimiter=",", fmt=fmt)
