"""Turning a reader's ``source`` argument into bytes or a byte stream.

Every reader accepts a path (str or ``os.PathLike``), raw bytes, or a binary file object, and
every reader must see through gzip: SageMaker channels often hold ``*.gz`` objects and Pipe mode
streams them through unchanged.  Centralising that here keeps the format modules about formats.
"""

from __future__ import annotations

import gzip
import io
import mmap
import os
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, BinaryIO, Union

import numpy as np

from forgeml.errors import DataFormatError

Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes]]

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_SIZE = 1 << 20


def is_pathlike(source: object) -> bool:
    return isinstance(source, str | os.PathLike)


def source_name(source: object, path: str | os.PathLike[str] | None = None) -> str | None:
    """The file name errors should cite: ``path`` if given, else the source's own name."""
    if path is not None:
        return os.fspath(path)
    if is_pathlike(source):
        return os.fspath(source)  # type: ignore[call-overload]
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else None


def _gunzip(data: bytes | np.ndarray, name: str | None) -> bytes:
    try:
        return gzip.decompress(bytes(data) if isinstance(data, np.ndarray) else data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFormatError(f"corrupt gzip data: {exc}", path=name) from exc


def _map_file(file_path: Path, name: str | None) -> np.ndarray:
    """The file's bytes, memory-mapped read-only.

    Mapping instead of reading saves one full copy: decoders copy the values they keep out of
    the page cache directly.  The mapping lives as long as the returned array (so the file must
    not be truncated meanwhile, as with ``np.memmap``).
    """
    try:
        with open(file_path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):  # a FIFO or device: read it to the end
                return np.frombuffer(handle.read(), dtype=np.uint8)
            if info.st_size == 0:
                return np.zeros(0, dtype=np.uint8)
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise DataFormatError(f"cannot read: {exc.strerror or exc}", path=name) from exc
    return np.frombuffer(mapped, dtype=np.uint8)


def read_all(source: Source, path: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, str | None]:
    """The whole source as a read-only ``uint8`` array, decompressed if it is gzip."""
    name = source_name(source, path)
    data: bytes | np.ndarray
    if is_pathlike(source):
        data = _map_file(Path(source), name)  # type: ignore[arg-type]
    elif isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source) if not isinstance(source, bytes) else source
    else:
        data = source.read()  # type: ignore[union-attr]
    head = bytes(data[:2])
    if head == GZIP_MAGIC:
        data = _gunzip(data, name)
    elif name is not None and name.endswith(".gz") and len(data):
        raise DataFormatError("file name ends in .gz but the data is not gzip", path=name)
    if isinstance(data, np.ndarray):
        return data, name
    return np.frombuffer(data, dtype=np.uint8), name


class _PrefixedStream(io.RawIOBase):
    """A stream that first replays bytes already read from ``inner`` (to sniff gzip magic)."""

    def __init__(self, prefix: bytes, inner: IO[bytes]) -> None:
        super().__init__()
        self._prefix = prefix
        self._inner = inner

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            head, self._prefix = self._prefix, b""
            return head + self._inner.read()
        if self._prefix:
            head, self._prefix = self._prefix[:size], self._prefix[size:]
            if len(head) == size:
                return head
            return head + self._inner.read(size - len(head))
        return self._inner.read(size)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _GzipStream(io.RawIOBase):
    """gzip decompression whose failures read as ``DataFormatError`` naming the file."""

    def __init__(self, inner: IO[bytes], name: str | None) -> None:
        super().__init__()
        self._gzip = gzip.GzipFile(fileobj=inner, mode="rb")
        self._name = name

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._gzip.read(-1 if size is None else size)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(f"corrupt gzip data: {exc}", path=self._name) from exc

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes, looping over short reads (pipes return what is there)."""
    parts = []
    remaining = size
    while remaining > 0:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def sniff_stream(stream: IO[bytes], name: str | None) -> BinaryIO:
    """Wrap ``stream`` so gzip data reads decompressed; works on unseekable pipes."""
    head = _read_exactly(stream, 2)
    replay = _PrefixedStream(head, stream)
    if head == GZIP_MAGIC:
        return _GzipStream(replay, name)  # type: ignore[arg-type, return-value]
    return replay  # type: ignore[return-value]


@contextmanager
def open_stream(source: Source, path: str | os.PathLike[str] | None = None) -> Iterator[tuple[BinaryIO, str | None]]:
    """A sequential byte stream over ``source`` (gzip transparently decoded) and its name."""
    name = source_name(source, path)
    if is_pathlike(source):
        try:
            handle = open(source, "rb")  # type: ignore[arg-type]  # noqa: SIM115
        except OSError as exc:
            raise DataFormatError(f"cannot open: {exc.strerror}", path=name) from exc
        with handle:
            yield sniff_stream(handle, name), name
        return
    if isinstance(source, bytes | bytearray | memoryview):
        yield sniff_stream(io.BytesIO(bytes(source)), name), name
        return
    yield sniff_stream(source, name), name  # type: ignore[arg-type]


def read_chunks(stream: IO[bytes], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Fixed-size reads until EOF; the last chunk may be short."""
    while True:
        chunk = _read_exactly(stream, chunk_size)
        if not chunk:
            return
        yield chunk
        if len(chunk) < chunk_size:
            return


def iter_line_blocks(stream: IO[bytes], chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Blocks of whole lines (each ends at a newline, except perhaps the last)."""
    pending: list[bytes] = []
    for chunk in read_chunks(stream, chunk_size):
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            pending.append(chunk)  # a line longer than a chunk: keep collecting
            continue
        pending.append(chunk[:cut])
        yield b"".join(pending)
        pending = [chunk[cut:]] if cut < len(chunk) else []
    if pending:
        yield b"".join(pending)


def iter_line_batches(
    stream: IO[bytes], batch_size: int, chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[bytes, int]]:
    """``(text, number of its first line)`` for runs of ``batch_size`` lines (the last may be short).

    Line numbers are 1-based and physical, so errors can cite the line a user sees in an editor.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    pending: list[bytes] = []
    pending_lines = 0
    line = 1
    for block in iter_line_blocks(stream, chunk_size):
        newlines = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
        pos = 0
        used = 0
        while pending_lines + len(newlines) - used >= batch_size:
            take = batch_size - pending_lines
            cut = int(newlines[used + take - 1]) + 1
            pending.append(block[pos:cut])
            yield b"".join(pending), line
            line += batch_size
            pending, pending_lines = [], 0
            pos, used = cut, used + take
        if pos < len(block):
            pending.append(block[pos:])
            pending_lines += len(newlines) - used
    if pending:
        yield b"".join(pending), line
