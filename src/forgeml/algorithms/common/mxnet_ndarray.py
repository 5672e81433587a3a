"""MXNet's NDArray file format (``mx.nd.save`` / ``mx.nd.load``), written and read with numpy.

Why it exists: SageMaker's K-Means, PCA, Factorization Machines, Random Cut Forest and IP Insights
containers are MXNet programs, and their users open ``model_algo-1`` (or the ``params`` file inside
it) with ``mx.nd.load`` and call ``.asnumpy()``, or with ``mx.module.Module.load``. forgeml writes
the same bytes, so that code keeps working, and ``load`` reads such files without MXNet::

    from forgeml.algorithms.common.mxnet_ndarray import load
    centroids = load("model_algo-1")[0]          # K-Means: a list with one (k, feature_dim) array

K-Means and Factorization Machines each had a copy of this module; this one keeps the union of
what they read.

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

Readers also accept the "V3" records MXNet >= 1.6 writes in numpy-shape mode (magic 0xF993FACA,
the V2 layout, where ndim 0 is a scalar rather than an empty array), the older "V1" records
(magic 0xF993FAC8: int64 dims, no storage type) and the pre-magic legacy records (uint32 ndim and
uint32 dims), which MXNet itself still loads. Checkpoints prefix parameter names with ``arg:`` /
``aux:``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import IO, Any

import numpy as np

from forgeml.algorithms.common.binary import ByteReader

LIST_MAGIC = 0x112
NDARRAY_V1_MAGIC = 0xF993FAC8
NDARRAY_V2_MAGIC = 0xF993FAC9
NDARRAY_V3_MAGIC = 0xF993FACA
DENSE_STORAGE = 0
CPU_DEVICE = 1

# mshadow type flags
_DTYPE_BY_FLAG: dict[int, np.dtype[Any]] = {
    0: np.dtype("float32"),
    1: np.dtype("float64"),
    2: np.dtype("float16"),
    3: np.dtype("uint8"),
    4: np.dtype("int32"),
    5: np.dtype("int8"),
    6: np.dtype("int64"),
}

Arrays = Sequence[np.ndarray] | Mapping[str, np.ndarray]


class NDArrayFormatError(ValueError):
    """The bytes are not an MXNet NDArray file (or use a feature this reader does not know)."""


def _flag(dtype: np.dtype[Any]) -> int:
    for flag, known in _DTYPE_BY_FLAG.items():
        if dtype.kind == known.kind and dtype.itemsize == known.itemsize:
            return flag
    raise NDArrayFormatError(f"MXNet NDArray files cannot hold dtype {dtype}")


def dumps(arrays: Arrays) -> bytes:
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
    flag = _flag(array.dtype)
    if array.ndim == 0:
        raise NDArrayFormatError("MXNet (without numpy semantics) cannot save a 0-d array")
    data = np.ascontiguousarray(array, dtype=_DTYPE_BY_FLAG[flag].newbyteorder("<"))
    header = struct.pack("<Iii", NDARRAY_V2_MAGIC, DENSE_STORAGE, array.ndim)
    dims = struct.pack(f"<{array.ndim}q", *array.shape)
    context = struct.pack("<iii", CPU_DEVICE, 0, flag)
    return header + dims + context + data.tobytes()


def save(path: str | PathLike[str] | IO[bytes], arrays: Arrays) -> None:
    """Write ``arrays`` as ``mx.nd.save(path, arrays)`` would (to a path or a binary stream)."""
    payload = dumps(arrays)
    if isinstance(path, str | PathLike):
        Path(path).write_bytes(payload)
    else:
        path.write(payload)


def loads(data: bytes) -> list[np.ndarray] | dict[str, np.ndarray]:
    """Parse NDArray-file bytes: a list when the file has no names, else a dict (like mx.nd.load)."""
    reader = ByteReader(data, NDArrayFormatError, "NDArray file")
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


def load(path: str | PathLike[str]) -> list[np.ndarray] | dict[str, np.ndarray]:
    return loads(Path(path).read_bytes())


def loads_named(data: bytes) -> dict[str, np.ndarray]:
    """``loads`` for files whose arrays are looked up by name (module parameters, model arrays)."""
    arrays = loads(data)
    if isinstance(arrays, list):
        if arrays:
            raise NDArrayFormatError("an MXNet NDArray file without names cannot be loaded by name")
        return {}
    return arrays


def load_named(path: str | PathLike[str]) -> dict[str, np.ndarray]:
    return loads_named(Path(path).read_bytes())


def _read_array(reader: ByteReader) -> np.ndarray:
    (magic,) = reader.unpack("<I")
    scalar = False
    if magic in (NDARRAY_V2_MAGIC, NDARRAY_V3_MAGIC):
        (storage,) = reader.unpack("<i")
        if storage != DENSE_STORAGE:
            raise NDArrayFormatError(f"sparse NDArrays (storage type {storage}) are not supported")
        shape = _read_shape(reader, "q")
        scalar = magic == NDARRAY_V3_MAGIC and not shape  # numpy-shape mode: ndim 0 is a scalar
    elif magic == NDARRAY_V1_MAGIC:
        shape = _read_shape(reader, "q")
    else:  # legacy record: the word just read is ndim, dims are uint32
        dims = reader.unpack(f"<{magic}I") if magic else ()
        shape = tuple(int(d) for d in dims)
    if not shape and not scalar:  # a "none" array: nothing follows the shape
        return np.zeros((0,), dtype=np.float32)
    _dev_type, _dev_id, flag = reader.unpack("<iii")
    if flag not in _DTYPE_BY_FLAG:
        raise NDArrayFormatError(f"unknown NDArray type flag {flag}")
    dtype = _DTYPE_BY_FLAG[flag].newbyteorder("<")
    return reader.array(dtype.str, int(np.prod(shape, dtype=np.int64))).reshape(shape)


def _read_shape(reader: ByteReader, code: str) -> tuple[int, ...]:
    (ndim,) = reader.unpack("<i")
    if ndim < 0:
        raise NDArrayFormatError("unknown-shape NDArrays are not supported")
    return tuple(int(d) for d in reader.unpack(f"<{ndim}{code}"))
