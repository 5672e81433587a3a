"""A bounds-checked cursor over bytes, for the binary artifact formats the algorithms read.

Why it exists: the MXNet NDArray reader and the FAISS index reader (k-NN) each carried the same
cursor. A truncated file must fail with a clear error in the format's own exception type rather
than yield short data, which ``struct.unpack`` on a short slice would not say in those words.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np


class ByteReader:
    """Reads ``data`` front to back; running past its end raises ``error("truncated <what>: ...")``."""

    def __init__(self, data: bytes, error: type[Exception], what: str) -> None:
        self.data = memoryview(data)
        self.offset = 0
        self.error = error
        self.what = what

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise self.error(f"truncated {self.what}: needed {size} bytes at offset {self.offset}")
        chunk = bytes(self.data[self.offset : end])
        self.offset = end
        return chunk

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def array(self, dtype: str, count: int) -> np.ndarray:
        """``count`` items of ``dtype`` (e.g. ``"<f4"``) as a native-byte-order copy."""
        kind = np.dtype(dtype)
        return np.frombuffer(self.take(count * kind.itemsize), dtype=kind).astype(kind.newbyteorder("="))
