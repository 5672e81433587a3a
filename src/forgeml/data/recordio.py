"""RecordIO framing (MXNet / dmlc-core), the envelope around each RecordIO-protobuf record.

A frame is ``magic (u32 LE) | lrecord (u32 LE) | payload | zero padding to 4 bytes``; the upper
three bits of ``lrecord`` are a continuation flag.  SageMaker's SDK always writes whole records
(flag 0), while dmlc-core splits a payload wherever the magic number occurs at a 4-byte-aligned
offset, drops that occurrence and marks the parts 1 (first), 2 (middle), 3 (last); a reader puts
the magic back between the parts.  The reader here accepts both, and every malformation becomes
a ``DataFormatError`` that names the file and the 1-based record number.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from forgeml.data.sources import CHUNK_SIZE, Source, open_stream
from forgeml.errors import DataFormatError

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)
LENGTH_MASK = (1 << 29) - 1
HEADER = struct.Struct("<II")
HEADER_SIZE = HEADER.size

WHOLE, FIRST, MIDDLE, LAST = 0, 1, 2, 3

Buffer = bytes | bytearray | memoryview
# Frame walkers also take uint8 numpy arrays (memory-mapped files); typeshed has no protocol
# that numpy's stubs satisfy, hence Any.
Frames = Any


def padded(length: int) -> int:
    """Payload length rounded up to the 4-byte boundary the next frame starts on."""
    return (length + 3) & ~3


def _frame(payload: Buffer, cflag: int) -> bytes:
    length = len(payload)
    return b"".join((HEADER.pack(MAGIC, (cflag << 29) | length), payload, b"\0" * (padded(length) - length)))


def encode_recordio(payload: Buffer, *, split_magic: bool = False) -> bytes:
    """One payload framed.  ``split_magic`` splits it like dmlc-core (the SDK never does)."""
    length = len(payload)
    if length > LENGTH_MASK:
        raise ValueError(f"a RecordIO payload must be below 2**29 bytes, got {length}")
    if not split_magic:
        return _frame(payload, WHOLE)
    view = memoryview(payload).cast("B")
    cuts = [i for i in range(0, length - length % 4, 4) if view[i : i + 4] == MAGIC_BYTES]
    if not cuts:
        return _frame(view, WHOLE)
    frames = []
    start = 0
    for i in cuts:
        frames.append(_frame(view[start:i], FIRST if start == 0 else MIDDLE))
        start = i + 4
    frames.append(_frame(view[start:], LAST))
    return b"".join(frames)


def write_recordio(f: IO[bytes], payload: Buffer, *, split_magic: bool = False) -> None:
    """Append one framed payload to ``f`` (byte-identical to the SDK's ``_write_recordio``)."""
    f.write(encode_recordio(payload, split_magic=split_magic))


def _bad_magic(buf: Frames, pos: int, path: str | None, record: int) -> DataFormatError:
    (found,) = struct.unpack_from("<I", buf, pos)
    return DataFormatError(
        f"invalid RecordIO magic number 0x{found:08x} at byte offset {pos} (expected 0x{MAGIC:08x})",
        path=path,
        record=record,
    )


def _uniform_run(buf: Frames, pos: int, stride: int, limit: int) -> int:
    """How many frames from ``pos`` repeat the first frame's header at a fixed stride.

    Each equal header proves the next frame starts ``stride`` bytes later, so the whole run is
    framed correctly without visiting frames one by one. Windows grow geometrically from a small
    probe, so records of varying length (sparse rows) cost a few comparisons each, not a scan of
    the rest of the buffer.
    """
    available = min(limit, (len(buf) - pos) // stride)
    if available < 2:
        return 0
    first = np.frombuffer(buf, dtype=np.uint8, count=HEADER_SIZE, offset=pos)
    total, window = 0, 16
    while total < available:
        k = min(window, available - total)
        rows = np.frombuffer(buf, dtype=np.uint8, count=k * stride, offset=pos + total * stride).reshape(k, stride)
        same = (rows[:, :HEADER_SIZE] == first).all(axis=1)
        if not bool(same.all()):
            return total + int(np.argmin(same))
        total += k
        window *= 4
    return total


def walk_records(
    buf: Frames,
    pos: int = 0,
    *,
    max_records: int | None = None,
    path: str | None = None,
    first_record: int = 1,
    final: bool = True,
    payloads: list[bytes] | None = None,
) -> tuple[int, int]:
    """Walk whole records in ``buf`` from ``pos``; return ``(end offset, records walked)``.

    ``final=False`` means more bytes may follow: an incomplete record at the end is left for
    the next call instead of being an error.  At the true end, fewer than 4 leftover bytes are
    ignored (as dmlc-core does) and a final frame may lack its padding.  When ``payloads`` is
    given, each record's payload (parts joined) is appended to it.
    """
    size = len(buf)
    count = 0
    record = first_record
    while max_records is None or count < max_records:
        start = pos
        if payloads is None and size - pos >= HEADER_SIZE:
            magic, word = HEADER.unpack_from(buf, pos)
            if magic == MAGIC and word >> 29 == WHOLE:
                limit = max_records - count if max_records is not None else size
                run = _uniform_run(buf, pos, HEADER_SIZE + padded(word), limit)
                if run:
                    pos += run * (HEADER_SIZE + padded(word))
                    count += run
                    record += run
                    continue
        parts: list[tuple[int, int]] = []
        while True:
            remaining = size - pos
            if remaining < HEADER_SIZE:
                if not final:
                    return start, count
                if remaining < 4 and not parts:
                    return pos, count  # nothing, or under 4 stray bytes: the end
                if remaining >= 4 and bytes(buf[pos : pos + 4]) != MAGIC_BYTES:
                    raise _bad_magic(buf, pos, path, record)
                what = "multi-part record is not terminated" if parts and remaining == 0 else "truncated record header"
                raise DataFormatError(f"{what} at byte offset {pos}", path=path, record=record)
            magic, word = HEADER.unpack_from(buf, pos)
            if magic != MAGIC:
                raise _bad_magic(buf, pos, path, record)
            cflag, length = word >> 29, word & LENGTH_MASK
            body = pos + HEADER_SIZE
            if body + length > size:
                if not final:
                    return start, count
                raise DataFormatError(
                    f"truncated record: header at byte offset {pos} announces {length} payload bytes "
                    f"but only {size - body} remain",
                    path=path,
                    record=record,
                )
            if cflag > LAST or (cflag in (WHOLE, FIRST)) == bool(parts):
                state = "inside" if parts else "outside"
                raise DataFormatError(
                    f"unexpected RecordIO continuation flag {cflag} {state} a multi-part record "
                    f"at byte offset {pos}",
                    path=path,
                    record=record,
                )
            next_pos = body + padded(length)
            if next_pos > size and not final:
                return start, count
            parts.append((body, body + length))
            pos = min(next_pos, size)
            if cflag in (WHOLE, LAST):
                break
        if payloads is not None:
            if len(parts) == 1:
                payloads.append(bytes(buf[parts[0][0] : parts[0][1]]))
            else:
                payloads.append(MAGIC_BYTES.join(bytes(buf[a:b]) for a, b in parts))
        count += 1
        record += 1
    return pos, count


def split_records(
    buf: Frames, *, path: str | None = None, first_record: int = 1
) -> list[bytes]:
    """Every payload in a complete RecordIO buffer."""
    payloads: list[bytes] = []
    walk_records(buf, path=path, first_record=first_record, payloads=payloads)
    return payloads


def iter_framed_blocks(
    stream: IO[bytes],
    *,
    max_records: int | None = None,
    path: str | None = None,
    chunk_size: int = CHUNK_SIZE,
    full_blocks: bool = False,
) -> Iterator[tuple[memoryview, int, int]]:
    """Read ``stream`` once, in chunks, yielding ``(framed bytes, first record number, count)``.

    Each block holds whole records only (at most ``max_records``), so it can be decoded on its
    own.  With ``full_blocks`` every block but the last holds exactly ``max_records`` records.
    Memory stays within about one block plus one chunk, however long the stream is.
    """
    pending = b""
    record = 1
    want = chunk_size
    eof = False
    while not eof:
        chunk = stream.read(want)
        eof = not chunk
        data = pending + chunk if pending else chunk
        pos = 0
        want = chunk_size
        while pos < len(data):
            end, count = walk_records(
                data, pos, max_records=max_records, path=path, first_record=record, final=eof
            )
            short = full_blocks and not eof and max_records is not None and count < max_records
            if count == 0 or short:
                if count:
                    # Read about what the rest of the block needs, so it is not rescanned often.
                    per_record = (end - pos) / count
                    want = max(chunk_size, int(per_record * (max_records - count)) + 1)  # type: ignore[operator]
                elif len(data) - pos >= chunk_size:
                    # A record longer than what we hold: read geometrically more so copies stay linear.
                    want = max(chunk_size, len(data) - pos)
                break
            yield memoryview(data)[pos:end], record, count  # a view: no copy of the block
            record += count
            pos = end
        if eof:
            return
        pending = data[pos:]


def read_recordio(f: Source, path: str | os.PathLike[str] | None = None) -> Iterator[bytes]:
    """Yield each record's payload from a RecordIO file, stream, or bytes, reading sequentially."""
    with open_stream(f, path) as (stream, name):
        for block, first, _count in iter_framed_blocks(stream, max_records=4096, path=name):
            yield from split_records(block, path=name, first_record=first)
