"""Parquet (``application/x-parquet``): the label is the first column, as SageMaker XGBoost reads it.

Column names do not matter, only order.  A pandas index that was stored as a column (pandas
and dask write one, e.g. ``__null_dask_index__``) is not data and is dropped, as
``pandas.read_parquet`` would.  Nulls read as NaN.  Streaming goes row group by row group, so a
large file never sits in memory whole.

Pipe mode is the exception: a FIFO cannot seek to a Parquet footer, and SageMaker streams the
channel's objects back to back, so the stream is read whole and cut into its files at the
``PAR1`` magic that ends one file and starts the next (each cut is checked by parsing the footer).
"""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from forgeml.data.dataset import RecordBatch, concat_batches, empty_batch, split_labels
from forgeml.data.sources import GZIP_MAGIC, Source, is_pathlike, read_all, source_name
from forgeml.errors import DataFormatError

PARQUET_MAGIC = b"PAR1"


def _seekable_head(source: Source) -> bytes | None:
    """The first bytes of a regular file, bytes or seekable file object; None for a pipe."""
    if is_pathlike(source):
        if not stat.S_ISREG(os.stat(source).st_mode):  # type: ignore[arg-type]
            return None  # a FIFO: opening it here would consume the writer's one connection
        with open(source, "rb") as handle:  # type: ignore[arg-type]
            return handle.read(4)
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source[:4])
    if not getattr(source, "seekable", lambda: False)():
        return None
    position = source.tell()  # type: ignore[union-attr]
    head = source.read(4)  # type: ignore[union-attr]
    source.seek(position)  # type: ignore[union-attr]
    return head


def _parses(buffer: pa.Buffer) -> bool:
    try:
        pq.ParquetFile(pa.BufferReader(buffer))
    except (pa.ArrowException, OSError):
        return False
    return True


def split_concatenated(blob: bytes) -> list[pa.Buffer]:
    """Cut back-to-back Parquet files apart (zero-copy slices of ``blob``).

    A boundary reads ``...<footer length>PAR1PAR1...``; a candidate is accepted only if the
    footer length fits and the slice before it parses as a Parquet file, so a ``PAR1PAR1`` that
    happens to sit inside column data is skipped.
    """
    data = pa.py_buffer(blob)
    files = []
    start = 0
    search = start + 4
    while (at := blob.find(PARQUET_MAGIC * 2, search)) >= 0:
        end = at + 4
        footer = int.from_bytes(blob[at - 4 : at], "little")
        if 0 < footer <= at - 8 - start and _parses(data.slice(start, end - start)):
            files.append(data.slice(start, end - start))
            start, search = end, end + 4
        else:
            search = at + 1
    files.append(data.slice(start))
    return files


def _open(source: Source, path: str | os.PathLike[str] | None) -> tuple[list[pq.ParquetFile], str | None]:
    """The Parquet file(s) in ``source``: one for a file, possibly several for a Pipe-mode stream."""
    name = source_name(source, path)
    try:
        head = _seekable_head(source)
        if head is not None and head[:2] != GZIP_MAGIC:
            if is_pathlike(source):
                return [pq.ParquetFile(os.fspath(source))], name  # type: ignore[arg-type]
            if isinstance(source, bytes | bytearray | memoryview):
                return [pq.ParquetFile(pa.BufferReader(pa.py_buffer(source)))], name
            return [pq.ParquetFile(source)], name
        buf, name = read_all(source, path)
        if buf.shape[0] == 0:
            return [], name
        return [pq.ParquetFile(pa.BufferReader(part)) for part in split_concatenated(buf.tobytes())], name
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(f"not a readable Parquet file: {exc}", path=name) from exc


def _index_columns(schema: pa.Schema) -> set[str]:
    metadata = schema.metadata or {}
    raw = metadata.get(b"pandas")
    if raw is None:
        return set()
    try:
        index = json.loads(raw).get("index_columns", [])
    except ValueError:
        return set()
    return {name for name in index if isinstance(name, str)}


def _column_floats(column: Any, name: str, path: str | None, first_row: int) -> np.ndarray:
    """One column as float64 with NaN for nulls; a non-numeric value names its row."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_boolean(column.type) or pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            out = np.empty(len(column), dtype=np.float64)
            for row, value in enumerate(column.to_pylist()):
                try:
                    out[row] = np.nan if value is None or not value.strip() else float(value)
                except ValueError:
                    raise DataFormatError(
                        f"could not parse value {value!r} in column {name!r} as a float",
                        path=path,
                        record=first_row + row,
                    ) from None
            return out
    raise DataFormatError(f"column {name!r} has non-numeric type {column.type}", path=path, record=first_row)


def _table_batch(table: pa.Table, label_size: int, path: str | None, first_row: int) -> RecordBatch:
    if table.num_rows == 0:
        return empty_batch()
    dropped = _index_columns(table.schema)
    names = [name for name in table.column_names if name not in dropped]
    if len(names) < label_size:
        raise DataFormatError(
            f"Parquet data has {len(names)} columns but label_size is {label_size}", path=path, record=first_row
        )
    matrix = np.empty((table.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        matrix[:, j] = _column_floats(table.column(name), name, path, first_row)
    features, labels = split_labels(matrix, label_size)
    return RecordBatch(features, labels)


def read_parquet(source: Source, label_size: int = 1, path: str | os.PathLike[str] | None = None) -> RecordBatch:
    """Read a whole Parquet source; the first ``label_size`` columns are the label."""
    handles, name = _open(source, path)
    batches = []
    row = 1
    for handle in handles:
        try:
            table = handle.read()
        except (pa.ArrowException, OSError) as exc:
            raise DataFormatError(f"not a readable Parquet file: {exc}", path=name, record=row) from exc
        batches.append(_table_batch(table, label_size, name, row))
        row += table.num_rows
    return concat_batches(batches, [name] * len(batches))


def iter_parquet(
    source: Source, batch_size: int = 1000, label_size: int = 1, path: str | os.PathLike[str] | None = None
) -> Iterator[RecordBatch]:
    """Yield batches of up to ``batch_size`` rows, reading one row group at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    handles, name = _open(source, path)
    row = 1
    for handle in handles:
        try:
            for record_batch in handle.iter_batches(batch_size=batch_size):
                table = pa.Table.from_batches([record_batch]).replace_schema_metadata(handle.schema_arrow.metadata)
                batch = _table_batch(table, label_size, name, row)
                row += record_batch.num_rows
                if batch.n_rows:
                    yield batch
        except (pa.ArrowException, OSError) as exc:
            raise DataFormatError(f"not a readable Parquet file: {exc}", path=name, record=row) from exc


def write_parquet(
    path: str | os.PathLike[str] | io.IOBase, features: Any, labels: Any = None, *, row_group_size: int | None = None
) -> None:
    """Write label column(s) then feature columns (``label``, ``f0``, ``f1``, ...) as float32."""
    dense = features.toarray() if sp.issparse(features) else np.asarray(features)
    if dense.ndim != 2:
        raise ValueError(f"features must be 2-D, got shape {dense.shape}")
    columns: dict[str, np.ndarray] = {}
    if labels is not None:
        label_array = np.asarray(labels, dtype=np.float32)
        if label_array.shape[0] != dense.shape[0]:
            raise ValueError(f"{label_array.shape[0]} labels for {dense.shape[0]} rows")
        if label_array.ndim == 1:
            columns["label"] = label_array
        else:
            for j in range(label_array.shape[1]):
                columns[f"label{j}"] = np.ascontiguousarray(label_array[:, j])
    for j in range(dense.shape[1]):
        columns[f"f{j}"] = np.ascontiguousarray(dense[:, j], dtype=np.float32)
    table = pa.table(columns)
    pq.write_table(table, path, row_group_size=row_group_size)

