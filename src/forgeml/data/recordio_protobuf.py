"""RecordIO-protobuf (``application/x-recordio-protobuf``): SDK-compatible writers and fast readers.

Writers follow ``sagemaker.amazon.common`` (reference §9.3) down to the byte: one ``Record`` per
row, features under ``features["values"]``, an optional one-element label tensor under
``label["values"]``, tensor type chosen from the numpy dtype.  Readers return ``RecordBatch``es:
``read_recordio_protobuf`` for a whole file, ``iter_recordio_protobuf`` for a stream read once in
bounded memory (SageMaker Pipe mode).  Both decode block by block, each block by the vectorised
path in ``record_fastpath`` when its records share one layout, else by ``record_decode``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO, Any

import numpy as np
import scipy.sparse as sp

from forgeml.data.dataset import RecordBatch, concat_batches, empty_batch
from forgeml.data.protobuf_record import Record
from forgeml.data.record_decode import RecordCollector, parse_record
from forgeml.data.record_fastpath import decode_uniform_dense
from forgeml.data.recordio import (
    CHUNK_SIZE,
    encode_recordio,
    iter_framed_blocks,
    read_recordio,
    walk_records,
)
from forgeml.data.sources import Source, open_stream, read_all
from forgeml.errors import DataFormatError

BLOCK_RECORDS = 1 << 14  # records per decoding block when a whole file is not one uniform run
_WRITE_ROWS = 1 << 14  # rows per vectorised write, bounding the writer's scratch memory

# --------------------------------------------------------------------------------------------
# Writers


def _resolve_type(dtype: np.dtype[Any]) -> str:
    """The SDK's dtype rule: int (int64) → Int32, float (float64) → Float64, float32 → Float32."""
    if dtype == np.dtype(int):
        return "int32_tensor"
    if dtype == np.dtype(float):
        return "float64_tensor"
    if dtype == np.dtype("float32"):
        return "float32_tensor"
    raise ValueError(f"Unsupported dtype {dtype} on array")


def _check_labels(labels: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError("Labels must be a Vector")
    # The SDK only checks that the length matches *a* dimension and then fails (or silently
    # drops labels) when it is the column count; one label per row is the only sane reading.
    if labels.shape[0] != shape[0]:
        raise ValueError(f"Label shape {labels.shape} not compatible with array shape {shape}")
    return labels


def _record(
    values: Any,
    feature_type: str,
    label: Any = None,
    label_type: str | None = None,
    keys: Any = None,
    n_cols: int | None = None,
) -> Any:
    record = Record()
    tensor = getattr(record.features["values"], feature_type)
    tensor.values.extend(values.tolist() if isinstance(values, np.ndarray) else values)
    if keys is not None:
        tensor.keys.extend(keys.tolist())
    if label_type is not None:
        getattr(record.label["values"], label_type).values.extend([label.item()])
    if n_cols is not None:
        tensor.shape.extend([n_cols])
    return record


_FIXED_WIDTH = {"float32_tensor": "<f4", "float64_tensor": "<f8"}


def _write_dense_vectorised(
    file: IO[bytes], array: np.ndarray, labels: np.ndarray | None, feature_type: str, label_type: str | None
) -> bool:
    """Write fixed-width rows by filling a byte template; ``False`` if the layout does not hold.

    Every row of a fixed-width tensor serializes to the same bytes apart from its values, so the
    first row's protobuf encoding is a template.  The template's layout is checked against the
    real protobuf encoding of the first and last rows before anything is written.
    """
    if feature_type not in _FIXED_WIDTH or (label_type is not None and label_type not in _FIXED_WIDTH):
        return False
    n_rows, n_cols = array.shape
    if n_rows == 0 or n_cols == 0:
        return False

    def framed(row: int) -> bytes:
        label = labels[row] if labels is not None else None
        return encode_recordio(_record(array[row], feature_type, label, label_type).SerializeToString())

    first = framed(0)
    stride = len(first)
    payload_end = 8 + int.from_bytes(first[4:8], "little")
    # Features are field 1 and a map entry writes its key before its value, so the packed
    # feature values end where the features entry ends; a label's one value ends the payload.
    features_end = 8 + len(_record(array[0], feature_type).SerializeToString())
    feature_span = (features_end - np.dtype(_FIXED_WIDTH[feature_type]).itemsize * n_cols, features_end)
    label_span = (payload_end - np.dtype(_FIXED_WIDTH[label_type]).itemsize, payload_end) if label_type else None
    template = np.frombuffer(first, dtype=np.uint8)

    def fill(start: int, stop: int) -> bytes:
        block = np.empty((stop - start, stride), dtype=np.uint8)
        block[:] = template
        block[:, feature_span[0] : feature_span[1]] = (
            np.ascontiguousarray(array[start:stop], dtype=_FIXED_WIDTH[feature_type]).view(np.uint8).reshape(stop - start, -1)
        )
        if labels is not None and label_type is not None and label_span is not None:
            block[:, label_span[0] : label_span[1]] = (
                np.ascontiguousarray(labels[start:stop], dtype=_FIXED_WIDTH[label_type]).view(np.uint8).reshape(stop - start, -1)
            )
        return block.tobytes()

    if fill(0, 1) != first or fill(n_rows - 1, n_rows) != framed(n_rows - 1):
        return False
    for start in range(0, n_rows, _WRITE_ROWS):
        file.write(fill(start, min(start + _WRITE_ROWS, n_rows)))
    return True


def write_numpy_to_dense_tensor(file: IO[bytes], array: np.ndarray, labels: np.ndarray | None = None) -> None:
    """Write a 2-D numpy array (and optional 1-D labels) as dense RecordIO-protobuf records."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError("Array must be a Matrix")
    checked = _check_labels(labels, array.shape)
    feature_type = _resolve_type(array.dtype)
    label_type = _resolve_type(checked.dtype) if checked is not None else None
    if _write_dense_vectorised(file, array, checked, feature_type, label_type):
        return
    for row in range(array.shape[0]):
        label = checked[row] if checked is not None else None
        file.write(encode_recordio(_record(array[row], feature_type, label, label_type).SerializeToString()))


def write_spmatrix_to_sparse_tensor(file: IO[bytes], array: Any, labels: np.ndarray | None = None) -> None:
    """Write a scipy sparse matrix as sparse records: values, column keys, shape ``[n_cols]``."""
    if not sp.issparse(array):
        raise TypeError("Array must be sparse")
    if len(array.shape) != 2:
        raise ValueError("Array must be a Matrix")
    checked = _check_labels(labels, array.shape)
    n_rows, n_cols = array.shape
    matrix = sp.csr_matrix(array)
    feature_type = _resolve_type(matrix.dtype)
    label_type = _resolve_type(checked.dtype) if checked is not None else None
    for row in range(n_rows):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        label = checked[row] if checked is not None else None
        record = _record(
            matrix.data[lo:hi],
            feature_type,
            label,
            label_type,
            keys=matrix.indices[lo:hi].astype(np.uint64),
            n_cols=n_cols,
        )
        file.write(encode_recordio(record.SerializeToString()))


# --------------------------------------------------------------------------------------------
# Readers


def read_records(file: Source, path: str | os.PathLike[str] | None = None) -> list[Any]:
    """Every ``Record`` in a RecordIO-protobuf file, stream or bytes (the SDK's ``read_records``)."""
    records = []
    with open_stream(file, path) as (stream, name):
        number = 1
        for payload in read_recordio(stream, name):
            records.append(parse_record(payload, name, number))
            number += 1
    return records


def decode_block(block: bytes | memoryview | np.ndarray, path: str | None, first_record: int, fast: bool = True) -> RecordBatch:
    """Decode whole frames: vectorised when the records share a layout, else record by record."""
    buf = block if isinstance(block, np.ndarray) else np.frombuffer(block, dtype=np.uint8)
    if fast:
        batch = decode_uniform_dense(buf)
        if batch is not None:
            return batch
    payloads: list[bytes] = []
    walk_records(buf, path=path, first_record=first_record, payloads=payloads)
    collector = RecordCollector(path)
    for offset, payload in enumerate(payloads):
        collector.add_payload(payload, first_record + offset)
    return collector.batch()


class _Agreement:
    """Checks that successive blocks agree on width and labels, naming the first record that does not."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._first: RecordBatch | None = None
        self._first_record = 1

    def check(self, batch: RecordBatch, first_record: int) -> None:
        if batch.n_rows == 0:
            return
        if self._first is None:
            self._first, self._first_record = batch, first_record
            return
        first = self._first
        if not batch.is_sparse and not first.is_sparse and batch.n_features != first.n_features:
            raise DataFormatError(
                f"record has {batch.n_features} features, expected {first.n_features} as in record {self._first_record}",
                path=self.path,
                record=first_record,
            )
        if (batch.labels is None) != (first.labels is None):
            state = "has no label" if batch.labels is None else "has a label"
            raise DataFormatError(f"record {state}, unlike the records before it", path=self.path, record=first_record)
        if batch.labels is not None and first.labels is not None and batch.labels.shape[1:] != first.labels.shape[1:]:
            raise DataFormatError(
                "label has a different number of values than in earlier records", path=self.path, record=first_record
            )


def _sparse_if_mixed(batches: list[RecordBatch]) -> list[RecordBatch]:
    if not any(b.is_sparse for b in batches) or all(b.is_sparse for b in batches):
        return batches
    return [RecordBatch(sp.csr_matrix(b.features), b.labels, b.weights) for b in batches]


def read_recordio_protobuf(
    source: Source, *, path: str | os.PathLike[str] | None = None, fast: bool = True
) -> RecordBatch:
    """Read a whole RecordIO-protobuf source (path, bytes or binary file) into one batch.

    ``fast=False`` forces the record-by-record decoder (for benchmarks and cross-checks).
    """
    buf, name = read_all(source, path)
    if fast and buf.shape[0]:
        batch = decode_uniform_dense(buf)
        if batch is not None:
            return batch
    batches: list[RecordBatch] = []
    agreement = _Agreement(name)
    pos, record = 0, 1
    while pos < buf.shape[0]:
        end, count = walk_records(buf, pos, max_records=BLOCK_RECORDS, path=name, first_record=record)
        if count == 0:
            break
        batch = decode_block(buf[pos:end], name, record, fast)
        agreement.check(batch, record)
        batches.append(batch)
        pos, record = end, record + count
    if not batches:
        return empty_batch()
    return concat_batches(_sparse_if_mixed(batches), [name] * len(batches))


def iter_recordio_protobuf(
    stream: Source,
    batch_size: int = 1000,
    path: str | os.PathLike[str] | None = None,
    *,
    fast: bool = True,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[RecordBatch]:
    """Yield batches of ``batch_size`` records from a stream read once, sequentially.

    Works on unseekable streams (a Pipe-mode FIFO); memory holds about one batch plus one chunk.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    with open_stream(stream, path) as (handle, name):
        agreement = _Agreement(name)
        for block, first, _count in iter_framed_blocks(
            handle, max_records=batch_size, path=name, chunk_size=chunk_size, full_blocks=True
        ):
            batch = decode_block(block, name, first, fast)
            agreement.check(batch, first)
            yield batch
