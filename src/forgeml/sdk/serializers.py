"""Request serializers with sagemaker.serializers' names and behaviour.

A serializer turns what a notebook passes to ``predictor.predict(data)`` into the request body
and declares its content type; the UFO course's ``CSVSerializer()`` is the common case.
"""

from __future__ import annotations

import csv
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np


class BaseSerializer(ABC):
    CONTENT_TYPE = "application/octet-stream"

    def __init__(self, content_type: str | None = None) -> None:
        self.content_type = content_type or self.CONTENT_TYPE

    @abstractmethod
    def serialize(self, data: Any) -> bytes | str:
        """The request body for ``data``."""


def _read_if_file(data: Any) -> Any:
    return data.read() if hasattr(data, "read") else data


def _already_text(data: Any) -> str | None:
    """A body the caller serialized already (text, bytes or a file) passes through as text."""
    data = _read_if_file(data)
    if isinstance(data, bytes):
        return data.decode("utf-8")
    return data if isinstance(data, str) else None


class IdentitySerializer(BaseSerializer):
    """Sends bytes (or a file's contents) as they are."""

    def serialize(self, data: Any) -> bytes | str:
        body: bytes | str = _read_if_file(data)
        return body


class CSVSerializer(BaseSerializer):
    """A row (list, 1-D array) becomes one CSV line; a matrix one line per row; text passes through."""

    CONTENT_TYPE = "text/csv"

    def serialize(self, data: Any) -> str:
        text = _already_text(data)
        if text is not None:
            return text
        if hasattr(data, "to_numpy"):  # pandas
            data = data.to_numpy()
        if isinstance(data, list | tuple):  # Python values keep their own spelling (1, not 1.0)
            return "\n".join(_csv_line(row) for row in data) if _is_nested(data) else _csv_line(data)
        array = np.asarray(data)
        if array.ndim == 0:
            return str(array.item())
        if array.ndim == 1:
            return _csv_line(array)
        return "\n".join(_csv_line(row) for row in array)


def _is_nested(data: Any) -> bool:
    return isinstance(data, list | tuple) and bool(data) and isinstance(data[0], list | tuple | np.ndarray)


def _csv_line(row: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(list(row))
    return buffer.getvalue()


class JSONSerializer(BaseSerializer):
    CONTENT_TYPE = "application/json"

    def serialize(self, data: Any) -> str:
        text = _already_text(data)
        if text is not None:
            return text
        if isinstance(data, np.ndarray):
            return json.dumps(data.tolist())
        return json.dumps(data, default=_numpy_default)


def _numpy_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class JSONLinesSerializer(BaseSerializer):
    CONTENT_TYPE = "application/jsonlines"

    def serialize(self, data: Any) -> str:
        text = _already_text(data)
        if text is not None:
            return text
        return "\n".join(json.dumps(item, default=_numpy_default) for item in data)


class NumpySerializer(BaseSerializer):
    CONTENT_TYPE = "application/x-npy"

    def __init__(self, dtype: Any = None, content_type: str | None = None) -> None:
        super().__init__(content_type)
        self.dtype = dtype

    def serialize(self, data: Any) -> bytes:
        data = _read_if_file(data)
        if isinstance(data, bytes):
            return data
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(data, dtype=self.dtype))
        return buffer.getvalue()


class RecordSerializer(BaseSerializer):
    """A numpy array as RecordIO-protobuf records (a 1-D array is one record)."""

    CONTENT_TYPE = "application/x-recordio-protobuf"

    def serialize(self, data: Any) -> bytes:
        from forgeml.data.recordio_protobuf import write_numpy_to_dense_tensor

        array = np.asarray(data)
        if array.ndim == 1:
            array = array.reshape(1, -1)
        buffer = io.BytesIO()
        write_numpy_to_dense_tensor(buffer, array)
        return buffer.getvalue()
