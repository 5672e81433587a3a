"""MXNet's NDArray list file (``mx.nd.save`` / ``mx.nd.load``), written and read with numpy.

SageMaker's first-party algorithms are MXNet programs, so the parameter files inside their model
artifacts are in this format, and users read them with ``mx.nd.load`` or
``mx.module.Module.load``. Writing the same bytes lets those notebooks work on our artifacts.

Layout (little endian): ``u64 0x112`` (list magic), ``u64 0``, ``u64 count``, then per array
``u32 0xF993FAC9`` (V2 magic), ``i32 storage type`` (0 = dense), ``i32 ndim``, ``i64 dims[ndim]``,
``i32 dev_type`` (1 = cpu), ``i32 dev_id``, ``i32 type flag``, raw data; then ``u64 count`` names,
each ``u64 length`` + UTF-8 bytes. Checkpoints prefix parameter names with ``arg:`` / ``aux:``.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np

LIST_MAGIC = 0x112
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA  # same layout, written by MXNet >= 1.6 in numpy-shape mode
DENSE = 0
CPU = 1

# MXNet's mshadow type flags
_TYPE_FLAGS: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("<f8"),
    2: np.dtype("<f2"),
    3: np.dtype("u1"),
    4: np.dtype("<i4"),
    5: np.dtype("i1"),
    6: np.dtype("<i8"),
}


def _flag(array: np.ndarray) -> int:
    for flag, dtype in _TYPE_FLAGS.items():
        if array.dtype.kind == dtype.kind and array.dtype.itemsize == dtype.itemsize:
            return flag
    raise TypeError(f"MXNet NDArray files cannot hold dtype {array.dtype}")


def dumps(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The bytes ``mx.nd.save(fname, dict(arrays))`` writes."""
    out = io.BytesIO()
    out.write(struct.pack("<QQQ", LIST_MAGIC, 0, len(arrays)))
    for array in arrays.values():
        flag = _flag(array)
        data = np.ascontiguousarray(array, dtype=_TYPE_FLAGS[flag])
        if data.ndim == 0:  # MXNet's V2 records read a 0-d shape as "no array"
            data = data.reshape(1)
        out.write(struct.pack("<Iii", V2_MAGIC, DENSE, data.ndim))
        out.write(struct.pack(f"<{data.ndim}q", *data.shape))
        out.write(struct.pack("<iii", CPU, 0, flag))
        out.write(data.tobytes())
    out.write(struct.pack("<Q", len(arrays)))
    for name in arrays:
        encoded = name.encode("utf-8")
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
    return out.getvalue()


def save(path: Path | IO[bytes], arrays: Mapping[str, np.ndarray]) -> None:
    payload = dumps(arrays)
    if isinstance(path, Path):
        path.write_bytes(payload)
    else:
        path.write(payload)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError("truncated MXNet NDArray file")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def raw(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError("truncated MXNet NDArray file")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk


def loads(data: bytes) -> dict[str, np.ndarray]:
    """Named dense arrays from an NDArray list file (what ``mx.nd.load`` returns, as numpy)."""
    reader = _Reader(data)
    magic, _reserved, count = reader.take("<QQQ")
    if magic != LIST_MAGIC:
        raise ValueError(f"not an MXNet NDArray list file (magic 0x{magic:x})")
    arrays: list[np.ndarray] = []
    for _ in range(count):
        (array_magic,) = reader.take("<I")
        if array_magic not in (V2_MAGIC, V3_MAGIC):
            raise ValueError(f"unsupported NDArray record version 0x{array_magic:x}")
        (storage,) = reader.take("<i")
        if storage != DENSE:
            raise ValueError("sparse NDArrays are not supported in model files")
        (ndim,) = reader.take("<i")
        if ndim == 0 and array_magic == V2_MAGIC:  # a "none" array: nothing follows the shape
            arrays.append(np.zeros((0,), dtype=np.float32))
            continue
        shape = reader.take(f"<{ndim}q") if ndim > 0 else ()
        _dev_type, _dev_id, flag = reader.take("<iii")
        if flag not in _TYPE_FLAGS:
            raise ValueError(f"unknown NDArray type flag {flag}")
        dtype = _TYPE_FLAGS[flag]
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        arrays.append(np.frombuffer(reader.raw(size), dtype=dtype).reshape(shape).copy())
    (name_count,) = reader.take("<Q")
    names = []
    for _ in range(name_count):
        (length,) = reader.take("<Q")
        names.append(reader.raw(length).decode("utf-8"))
    if name_count != count:
        raise ValueError("an MXNet NDArray file without names cannot be loaded by name")
    return dict(zip(names, arrays, strict=True))


def load(path: Path) -> dict[str, np.ndarray]:
    return loads(path.read_bytes())
