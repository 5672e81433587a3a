"""The general RecordIO-protobuf decoder: one ``Record`` message at a time.

This is the path that is right for anything the format allows: sparse tensors (``keys`` plus
``shape``), float64 and int32 tensors, map entries in any order, feature or label tensors under a
name other than ``values``, multi-part records.  It is slower than the vectorised fast path in
``record_fastpath`` and is what that path falls back to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from forgeml.data.dataset import RecordBatch
from forgeml.data.protobuf_record import Record
from forgeml.data.rows import RowCollector
from forgeml.errors import DataFormatError

_TENSOR_FIELDS = ("float32_tensor", "float64_tensor", "int32_tensor")
_MAX_WIDTH = 1 << 40  # a key this large without a shape is corruption, not a real column


def parse_record(payload: bytes, path: str | None, number: int) -> Any:
    """``Record.FromString`` with protobuf's error turned into a ``DataFormatError``."""
    try:
        return Record.FromString(payload)
    except Exception as exc:  # protobuf raises its own DecodeError, or RuntimeError under upb
        raise DataFormatError(f"record is not a valid aialgs.data.Record protobuf: {exc}", path=path, record=number) from exc


def _pick(entries: Any, what: str, path: str | None, number: int) -> Any | None:
    """The tensor to read from a features/label map: ``values``, else the only entry."""
    if "values" in entries:
        return entries["values"]
    if len(entries) == 0:
        return None
    if len(entries) == 1:
        return next(iter(entries.values()))
    names = ", ".join(sorted(entries))
    raise DataFormatError(f"record has no {what} tensor named 'values' (has: {names})", path=path, record=number)


def _tensor(value: Any, what: str, path: str | None, number: int) -> Any:
    kind = value.WhichOneof("value")
    if kind not in _TENSOR_FIELDS:
        raise DataFormatError(
            f"{what} tensor of type {kind or 'none'} is not supported (need float32, float64 or int32)",
            path=path,
            record=number,
        )
    return getattr(value, kind)


def _row(tensor: Any, what: str, path: str | None, number: int) -> tuple[Any, Any, int | None]:
    """``(values, keys or None when dense, declared width or None)`` for one tensor.

    ``values`` and ``keys`` are protobuf's own containers, not copies: this runs once per record.
    """
    values = tensor.values
    keys = tensor.keys
    shape = tensor.shape
    width = math.prod(shape) if len(shape) else None
    if not len(keys):
        if width is None or width == len(values):
            return values, None, len(values)
        if len(values):
            raise DataFormatError(
                f"dense {what} tensor has {len(values)} values but its shape says {width}", path=path, record=number
            )
        return values, keys, width  # no keys, no values: an all-zero sparse row
    if len(keys) != len(values):
        raise DataFormatError(
            f"sparse {what} tensor has {len(keys)} keys but {len(values)} values", path=path, record=number
        )
    limit = width if width is not None else _MAX_WIDTH
    if max(keys) >= limit:
        raise DataFormatError(
            f"sparse {what} tensor has key {max(keys)} outside its shape {list(shape)}", path=path, record=number
        )
    return values, keys, width


class RecordCollector(RowCollector):
    """A ``RowCollector`` fed with ``Record`` messages (or their serialized payloads)."""

    def add_payload(self, payload: bytes, number: int) -> None:
        self.add(parse_record(payload, self.path, number), number)

    def add(self, record: Any, number: int) -> None:
        path = self.path
        value = _pick(record.features, "feature", path, number)
        if value is None:
            raise DataFormatError("record has no features", path=path, record=number)
        values, keys, width = _row(_tensor(value, "feature", path, number), "feature", path, number)
        self.add_row(values, keys, width, self._label(record, number), number)

    def _label(self, record: Any, number: int) -> Any:
        path = self.path
        value = _pick(record.label, "label", path, number)
        if value is None:
            return None
        values, keys, width = _row(_tensor(value, "label", path, number), "label", path, number)
        if keys is None:
            return values
        dense = [0.0] * (width if width is not None else max(keys, default=-1) + 1)
        for k, v in zip(keys, values, strict=True):
            dense[k] = v
        return dense


def decode_payloads(payloads: Iterable[bytes], path: str | None = None, first_record: int = 1) -> RecordBatch:
    """Decode serialized ``Record`` payloads, numbered from ``first_record``, into one batch."""
    collector = RecordCollector(path)
    for offset, payload in enumerate(payloads):
        collector.add_payload(payload, first_record + offset)
    return collector.batch()
