"""Response deserializers with sagemaker.deserializers' names and behaviour.

``deserialize(stream, content_type)`` reads a response body (a file-like object, or bytes) into what
the notebook works with; ``ACCEPT`` is the Accept header the predictor sends.
"""

from __future__ import annotations

import csv
import io
import json
from typing import IO, Any

import numpy as np


def _read(stream: IO[bytes] | bytes) -> bytes:
    if isinstance(stream, bytes | bytearray):
        return bytes(stream)
    try:
        return stream.read()
    finally:
        stream.close()


class BaseDeserializer:
    ACCEPT: tuple[str, ...] = ("*/*",)

    def __init__(self, accept: str | tuple[str, ...] | None = None) -> None:
        if accept is not None:
            self.ACCEPT = (accept,) if isinstance(accept, str) else tuple(accept)

    @property
    def accept(self) -> str:
        return ", ".join(self.ACCEPT)

    def deserialize(self, stream: IO[bytes] | bytes, content_type: str) -> Any:
        return _read(stream)


class BytesDeserializer(BaseDeserializer):
    """The response body's bytes, untouched."""


class StringDeserializer(BaseDeserializer):
    ACCEPT = ("application/json",)

    def __init__(self, encoding: str = "UTF-8", accept: str | tuple[str, ...] | None = None) -> None:
        super().__init__(accept)
        self.encoding = encoding

    def deserialize(self, stream: IO[bytes] | bytes, content_type: str) -> str:
        return _read(stream).decode(self.encoding)


class JSONDeserializer(BaseDeserializer):
    ACCEPT = ("application/json",)

    def deserialize(self, stream: IO[bytes] | bytes, content_type: str) -> Any:
        return json.loads(_read(stream).decode("utf-8"))


class JSONLinesDeserializer(BaseDeserializer):
    ACCEPT = ("application/jsonlines",)

    def deserialize(self, stream: IO[bytes] | bytes, content_type: str) -> list[Any]:
        return [json.loads(line) for line in _read(stream).decode("utf-8").splitlines() if line.strip()]


class CSVDeserializer(BaseDeserializer):
    """Rows of strings, as sagemaker's CSVDeserializer returns them."""

    ACCEPT = ("text/csv",)

    def __init__(self, encoding: str = "utf-8", accept: str | tuple[str, ...] | None = None) -> None:
        super().__init__(accept)
        self.encoding = encoding

    def deserialize(self, stream: IO[bytes] | bytes, content_type: str) -> list[list[str]]:
        text = _read(stream).decode(self.encoding)
        return [row for row in csv.reader(io.StringIO(text)) if row]


class NumpyDeserializer(BaseDeserializer):
    """A numpy array from a CSV, JSON or NPY response."""

    ACCEPT = ("application/x-npy",)

    def __init__(self, dtype: Any = None, accept: str | tuple[str, ...] | None = None, allow_pickle: bool = False) -> None:
        super().__init__(accept)
        self.dtype = dtype
        self.allow_pickle = allow_pickle

    def deserialize(self, stream: IO[bytes] | bytes, content_type: str) -> np.ndarray:
        body = _read(stream)
        mime = (content_type or "").split(";")[0].strip().lower()
        if mime == "text/csv":
            return np.genfromtxt(io.StringIO(body.decode("utf-8")), delimiter=",", dtype=self.dtype)
        if mime == "application/json":
            return np.array(json.loads(body.decode("utf-8")), dtype=self.dtype)
        if mime == "application/x-npy":
            return np.load(io.BytesIO(body), allow_pickle=self.allow_pickle)
        raise ValueError(f"NumpyDeserializer cannot read content type {content_type!r}")


class RecordDeserializer(BaseDeserializer):
    """RecordIO-protobuf responses as a list of Record messages."""

    ACCEPT = ("application/x-recordio-protobuf",)

    def deserialize(self, stream: IO[bytes] | bytes, content_type: str) -> list[Any]:
        from forgeml.data.recordio_protobuf import read_records

        return list(read_records(io.BytesIO(_read(stream))))
