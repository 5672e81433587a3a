"""Records in, requests out, answers back: how a transform job cuts objects and reassembles outputs.

``split_object`` cuts an input object into records by ``SplitType`` (None: the object is one record;
Line: lines, CSV records with quoted newlines kept whole; RecordIO and TFRecord: their frames).
``make_batches`` packs records into request payloads by ``BatchStrategy`` within ``MaxPayloadInMB``.
``split_response`` cuts a model's answer to a batch back into one output per record, so that a
MultiRecord job writes what a SingleRecord job would: CSV and JSON Lines answers by line, a JSON
answer by the entries of its one array (``{"predictions": [...]}``, ``[...]``), RecordIO answers by
frame. An answer that cannot be cut so (a count that does not match) gives None.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from forgeml.data.recordio import FIRST, HEADER, HEADER_SIZE, LAST, LENGTH_MASK, MAGIC, WHOLE, padded
from forgeml.errors import ClientError

MIB = 1024 * 1024
CSV = "text/csv"
JSON = "application/json"
JSON_LINES = ("application/jsonlines", "application/json-lines", "application/x-jsonlines", "application/jsonl")
RECORDIO_PROTOBUF = "application/x-recordio-protobuf"
TFRECORD_HEADER = struct.Struct("<QI")
TFRECORD_FOOTER_SIZE = 4


class RecordError(ClientError):
    """A record of an input object could not be split, parsed, filtered, sent or answered."""

    def __init__(self, uri: str, record: int, detail: str, what: str = "Cannot transform",
                 last_record: int | None = None) -> None:
        where = f"records {record}-{last_record}" if last_record is not None and last_record > record else \
            f"record {record}"
        super().__init__(f"{what} {uri}, {where}: {detail}")
        self.uri = uri
        self.record = record
        self.detail = detail


def mime_of(content_type: str | None) -> str:
    """``"text/csv; charset=utf-8"`` -> ``"text/csv"``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def record_format(content_type: str | None) -> str | None:
    """``"csv"`` or ``"json"`` for the content types filters and joins understand, else None."""
    mime = mime_of(content_type)
    if mime == CSV:
        return "csv"
    if mime == JSON or mime in JSON_LINES:
        return "json"
    return None


def is_line_based(content_type: str | None) -> bool:
    mime = mime_of(content_type)
    return mime == CSV or mime in JSON_LINES


def is_text(content_type: str | None) -> bool:
    mime = mime_of(content_type)
    return mime.startswith("text/") or mime == JSON or mime in JSON_LINES


# -- splitting -------------------------------------------------------------------------------------


def split_object(data: bytes, split_type: str, content_type: str | None, uri: str, *,
                 strip_padding: bool = False) -> list[bytes]:
    """The records of one (decompressed) input object."""
    if split_type == "Line":
        return split_lines(data, csv=mime_of(content_type) == CSV)
    if split_type == "RecordIO":
        return split_recordio(data, uri, strip_padding=strip_padding)
    if split_type == "TFRecord":
        return split_tfrecord(data, uri)
    return [data] if data else []


def split_lines(data: bytes, *, csv: bool = False) -> list[bytes]:
    """Non-empty lines without their ``\\n`` (or ``\\r\\n``); with ``csv``, quoted newlines stay inside."""
    if csv and b'"' in data:
        return _csv_records(data)
    lines = data.split(b"\n")
    if b"\r" in data:
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    return [line for line in lines if line]


def _csv_records(data: bytes) -> list[bytes]:
    """Lines joined while a quoted field is open (RFC 4180 doubles quotes, so parity tells)."""
    records: list[bytes] = []
    parts: list[bytes] = []
    open_quote = 0
    for line in data.split(b"\n"):
        parts.append(line)
        open_quote ^= line.count(b'"') & 1
        if open_quote:
            continue
        record = b"\n".join(parts)
        parts = []
        if record.endswith(b"\r"):
            record = record[:-1]
        if record:
            records.append(record)
    if parts:  # an unterminated quote: the rest is one record, for the model to judge
        records.append(b"\n".join(parts))
    return records


def split_recordio(data: bytes, uri: str, *, strip_padding: bool = False) -> list[bytes]:
    """Each record's frames (multi-part records whole); ``strip_padding`` drops a record's last padding."""
    records: list[bytes] = []
    size = len(data)
    pos = 0
    while size - pos >= 4:  # under 4 stray bytes at the very end are ignored, as dmlc-core does
        start = pos
        number = len(records) + 1
        while True:
            if size - pos < HEADER_SIZE:
                raise RecordError(uri, number, f"truncated RecordIO header at byte offset {pos}", "Cannot split")
            magic, word = HEADER.unpack_from(data, pos)
            if magic != MAGIC:
                raise RecordError(uri, number, f"invalid RecordIO magic number 0x{magic:08x} at byte offset {pos} "
                                                f"(expected 0x{MAGIC:08x})", "Cannot split")
            cflag, length = word >> 29, word & LENGTH_MASK
            body = pos + HEADER_SIZE
            if body + length > size:
                raise RecordError(uri, number, f"truncated record: the header at byte offset {pos} announces "
                                                f"{length} payload bytes but only {size - body} remain", "Cannot split")
            if cflag > LAST or (cflag in (WHOLE, FIRST)) != (pos == start):
                raise RecordError(uri, number, f"unexpected RecordIO continuation flag {cflag} at byte offset {pos}",
                                  "Cannot split")
            unpadded = body + length
            pos = min(body + padded(length), size)
            if cflag in (WHOLE, LAST):
                break
        records.append(data[start : unpadded if strip_padding else pos])
    return records


def split_tfrecord(data: bytes, uri: str) -> list[bytes]:
    """TFRecord frames: ``length (u64) | crc (u32) | data | crc (u32)``; CRCs are passed on unchecked."""
    records: list[bytes] = []
    size = len(data)
    pos = 0
    while pos < size:
        number = len(records) + 1
        if size - pos < TFRECORD_HEADER.size:
            raise RecordError(uri, number, f"truncated TFRecord header at byte offset {pos}", "Cannot split")
        length, _crc = TFRECORD_HEADER.unpack_from(data, pos)
        end = pos + TFRECORD_HEADER.size + length + TFRECORD_FOOTER_SIZE
        if end > size:
            raise RecordError(uri, number, f"truncated record: the header at byte offset {pos} announces {length} "
                                            f"data bytes but the object ends first", "Cannot split")
        records.append(data[pos:end])
        pos = end
    return records


# -- batching --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One request: ``count`` records from index ``first`` (0-based) of the object, and its body."""

    first: int
    count: int
    payload: bytes


def separator_for(split_type: str) -> bytes:
    """What goes between records of one MultiRecord request: a newline for lines, nothing for frames."""
    return b"\n" if split_type == "Line" else b""


def make_batches(records: Sequence[bytes], *, multi_record: bool, max_bytes: int, separator: bytes,
                 uri: str) -> list[Batch]:
    """Pack records in order: one per request, or as many whole records as fit in ``max_bytes``."""
    batches: list[Batch] = []
    gap = len(separator)
    first = 0
    size = -gap
    for index, record in enumerate(records):
        length = len(record)
        if length > max_bytes:
            raise RecordError(uri, index + 1, f"the record is {length} bytes, over MaxPayloadInMB "
                                              f"({max_bytes // MIB} MB = {max_bytes} bytes)", "Cannot send")
        if not multi_record:
            batches.append(Batch(index, 1, record))
            continue
        if size + gap + length > max_bytes:
            batches.append(Batch(first, index - first, separator.join(records[first:index])))
            first, size = index, -gap
        size += gap + length
    if multi_record and first < len(records):
        batches.append(Batch(first, len(records) - first, separator.join(records[first:])))
    return batches


# -- answers ---------------------------------------------------------------------------------------


def strip_newline(body: bytes) -> bytes:
    """One trailing line break removed: a record's output as a unit, without its terminator."""
    if body.endswith(b"\r\n"):
        return body[:-2]
    return body[:-1] if body.endswith(b"\n") else body


def split_response(body: bytes, content_type: str | None, count: int) -> list[bytes] | None:
    """One output per record, each as the model would answer that record alone; None if it cannot tell.

    Line-based outputs lose their line breaks (AssembleWith puts them back); a JSON answer's entries
    are wrapped the way the whole answer was (``{"predictions": [e]}``, ``[e]``); RecordIO answers
    keep each record's frame.
    """
    if count == 1:
        return [strip_newline(body) if is_text(content_type) else body]
    mime = mime_of(content_type)
    if mime == CSV or mime in JSON_LINES:
        lines = split_lines(body, csv=mime == CSV)
        return lines if len(lines) == count else None
    if mime == JSON:
        return _split_json(body, count)
    if mime == RECORDIO_PROTOBUF:
        try:
            frames = split_recordio(body, "the model's answer")
        except RecordError:
            return None
        return frames if len(frames) == count else None
    return None


def _split_json(body: bytes, count: int) -> list[bytes] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if isinstance(value, list):
        return [json.dumps([entry]).encode() for entry in value] if len(value) == count else None
    if isinstance(value, dict) and len(value) == 1:
        ((key, entries),) = value.items()
        if isinstance(entries, list) and len(entries) == count:
            return [json.dumps({key: [entry]}).encode() for entry in entries]
    return None


def line_block(body: bytes, content_type: str | None, count: int) -> bytes | None:
    """The answer itself when it already is ``count`` plain lines, each ending in ``\\n``.

    The common MultiRecord case (CSV or JSON Lines out, AssembleWith Line, no join) then costs one
    scan of the answer instead of a split and a join per record.
    """
    mime = mime_of(content_type)
    if not (mime == CSV or mime in JSON_LINES) or not body.endswith(b"\n") or body.startswith(b"\n"):
        return None
    if body.count(b"\n") != count or b"\n\n" in body or b"\r" in body or (mime == CSV and b'"' in body):
        return None
    return body
