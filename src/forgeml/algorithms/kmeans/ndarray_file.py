"""MXNet's NDArray file format, the ``model_algo-1`` that K-Means and PCA users open.

SageMaker's K-Means and PCA containers are MXNet programs; users read their artifacts with
``mx.ndarray.load("model_algo-1")`` (a list for K-Means, a dict ``s``/``v``/``mean`` for PCA) and
call ``.asnumpy()``. We write the same bytes with numpy and struct, so that code keeps working.

Layout (MXNet 1.x ``NDArray::Save`` for a list, little-endian), written from our knowledge of
MXNet's source since the reference gives no byte-level detail. Checked during development against
MXNet 1.9.1: ``mx.nd.save`` produces byte-identical files for a list and for a dict, and
``mx.nd.load`` reads ours (the tests pin bytes MXNet wrote)::

    file   := uint64 0x112 (list magic) | uint64 0 (reserved)
              | uint64 n_arrays | array * n_arrays
              | uint64 n_names  | name * n_names          (no names: mx.nd.load gives a list)
    array  := uint32 0xF993FAC9 (NDARRAY_V2_MAGIC) | int32 storage type (0 = dense)
              | int32 ndim | int64 dim * ndim
              | int32 dev_type (1 = cpu) | int32 dev_id (0)
              | int32 type flag (0 = float32, 1 = float64, ...) | raw C-order data
    name   := uint64 byte length | utf-8 bytes

Readers also accept the older "V1" records (magic 0xF993FAC8: int64 dims, no storage type) and
the pre-magic legacy records (uint32 ndim and uint32 dims), which MXNet itself still loads.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

LIST_MAGIC = 0x112
NDARRAY_V1_MAGIC = 0xF993FAC8
NDARRAY_V2_MAGIC = 0xF993FAC9
DENSE_STORAGE = 0
CPU_DEVICE = 1

# mshadow type flags
_FLAG_BY_DTYPE: dict[np.dtype[Any], int] = {
    np.dtype("float32"): 0,
    np.dtype("float64"): 1,
    np.dtype("float16"): 2,
    np.dtype("uint8"): 3,
    np.dtype("int32"): 4,
    np.dtype("int8"): 5,
    np.dtype("int64"): 6,
}
_DTYPE_BY_FLAG: dict[int, np.dtype[Any]] = {flag: dtype for dtype, flag in _FLAG_BY_DTYPE.items()}


class NDArrayFormatError(ValueError):
    """The bytes are not an MXNet NDArray file (or use a feature this reader does not know)."""


def dumps(arrays: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> bytes:
    """Serialise a list (loads back as a list) or a name -> array dict (loads back as a dict)."""
    if isinstance(arrays, Mapping):
        names = [str(name) for name in arrays]
        values = [np.asarray(arrays[name]) for name in arrays]
    else:
        names = []
        values = [np.asarray(a) for a in arrays]
    parts = [struct.pack("<QQQ", LIST_MAGIC, 0, len(values))]
    for array in values:
        parts.append(_array_bytes(array))
    parts.append(struct.pack("<Q", len(names)))
    for name in names:
        encoded = name.encode("utf-8")
        parts.append(struct.pack("<Q", len(encoded)) + encoded)
    return b"".join(parts)


def _array_bytes(array: np.ndarray) -> bytes:
    dtype = array.dtype.newbyteorder("=") if array.dtype.byteorder not in "=|" else array.dtype
    if dtype not in _FLAG_BY_DTYPE:
        raise NDArrayFormatError(f"MXNet NDArray files cannot hold dtype {array.dtype}")
    if array.ndim == 0:
        raise NDArrayFormatError("MXNet (without numpy semantics) cannot save a 0-d array")
    data = np.ascontiguousarray(array, dtype=dtype.newbyteorder("<"))
    header = struct.pack("<Iii", NDARRAY_V2_MAGIC, DENSE_STORAGE, array.ndim)
    dims = struct.pack(f"<{array.ndim}q", *array.shape)
    context = struct.pack("<iii", CPU_DEVICE, 0, _FLAG_BY_DTYPE[dtype])
    return header + dims + context + data.tobytes()


def save(path: str | Path, arrays: Sequence[np.ndarray] | Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as ``mx.nd.save(path, arrays)`` would."""
    Path(path).write_bytes(dumps(arrays))


def loads(data: bytes) -> list[np.ndarray] | dict[str, np.ndarray]:
    """Parse NDArray-file bytes: a list when the file has no names, else a dict (like mx.nd.load)."""
    reader = _Reader(data)
    magic, _reserved = reader.unpack("<QQ")
    if magic != LIST_MAGIC:
        raise NDArrayFormatError(f"not an MXNet NDArray file (magic {magic:#x}, expected {LIST_MAGIC:#x})")
    (count,) = reader.unpack("<Q")
    arrays = [_read_array(reader) for _ in range(count)]
    (n_names,) = reader.unpack("<Q")
    names = []
    for _ in range(n_names):
        (length,) = reader.unpack("<Q")
        names.append(reader.take(length).decode("utf-8"))
    if not names:
        return arrays
    if len(names) != len(arrays):
        raise NDArrayFormatError(f"the file names {len(names)} arrays but holds {len(arrays)}")
    return dict(zip(names, arrays, strict=True))


def load(path: str | Path) -> list[np.ndarray] | dict[str, np.ndarray]:
    return loads(Path(path).read_bytes())


def _read_array(reader: _Reader) -> np.ndarray:
    (magic,) = reader.unpack("<I")
    if magic == NDARRAY_V2_MAGIC:
        (storage,) = reader.unpack("<i")
        if storage != DENSE_STORAGE:
            raise NDArrayFormatError(f"sparse NDArrays (storage type {storage}) are not supported")
        shape = _read_shape(reader, "q")
    elif magic == NDARRAY_V1_MAGIC:
        shape = _read_shape(reader, "q")
    else:  # legacy record: the word just read is ndim, dims are uint32
        dims = reader.unpack(f"<{magic}I") if magic else ()
        shape = tuple(int(d) for d in dims)
    if not shape:
        return np.zeros((0,), dtype=np.float32)
    _dev_type, _dev_id, flag = reader.unpack("<iii")
    if flag not in _DTYPE_BY_FLAG:
        raise NDArrayFormatError(f"unknown NDArray type flag {flag}")
    dtype = _DTYPE_BY_FLAG[flag].newbyteorder("<")
    size = int(np.prod(shape)) * dtype.itemsize
    return (
        np.frombuffer(reader.take(size), dtype=dtype)
        .astype(dtype.newbyteorder("="), copy=True)
        .reshape(shape)
    )


def _read_shape(reader: _Reader, code: str) -> tuple[int, ...]:
    (ndim,) = reader.unpack("<i")
    if ndim < 0:
        raise NDArrayFormatError("unknown-shape NDArrays are not supported")
    return tuple(int(d) for d in reader.unpack(f"<{ndim}{code}"))


class _Reader:
    """A cursor over the file's bytes that reports truncation instead of returning short data."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.offset = 0

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise NDArrayFormatError(f"truncated NDArray file: needed {size} bytes at offset {self.offset}")
        chunk = bytes(self.data[self.offset : end])
        self.offset = end
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))
