"""Request bodies as S3 receives them: aws-chunked framing undone, Content-MD5 and x-amz-checksum-*
verified, streamed to a file (objects, parts) or kept in memory (XML documents).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from anyio import to_thread
from starlette.types import Receive

from forgeml.server.errors import ClientGone
from forgeml.server.s3.constants import (
    CHECKSUM_HEADER_PREFIX,
    CHECKSUM_NON_VALUES,
    IO_BLOCK,
    MAX_OBJECT_SIZE,
    MAX_XML_BODY,
)
from forgeml.server.s3.errors import S3Error, _entity_too_large, _invalid_argument
from forgeml.server.s3.messages import _Request


class _Checksum(Protocol):
    def update(self, data: bytes) -> None: ...

    def b64digest(self) -> str: ...


class _CrcChecksum:
    def __init__(self, function: Callable[[bytes, int], int], width: int) -> None:
        self._function = function
        self._width = width
        self._value = 0

    def update(self, data: bytes) -> None:
        self._value = self._function(data, self._value)

    def b64digest(self) -> str:
        return base64.b64encode(self._value.to_bytes(self._width, "big")).decode()


class _HashChecksum:
    def __init__(self, name: str) -> None:
        self._hash = hashlib.new(name)

    def update(self, data: bytes) -> None:
        self._hash.update(data)

    def b64digest(self) -> str:
        return base64.b64encode(self._hash.digest()).decode()


def _crt_function(name: str) -> Callable[[bytes, int], int] | None:
    """CRC32C / CRC64NVME from awscrt (botocore's own optional accelerator) when it is installed."""
    try:
        checksums = importlib.import_module("awscrt.checksums")
    except ImportError:
        return None
    function: Callable[[bytes, int], int] = getattr(checksums, name)
    return function


def _new_checksum(algorithm: str) -> _Checksum | None:
    """A running checksum for ``algorithm``, or None when forgeml cannot compute it (then unverified)."""
    if algorithm == "crc32":
        return _CrcChecksum(zlib.crc32, 4)
    if algorithm in ("sha1", "sha256", "sha512", "md5"):
        return _HashChecksum(algorithm)
    if algorithm in ("crc32c", "crc64nvme"):
        function = _crt_function(algorithm)
        return _CrcChecksum(function, 4 if algorithm == "crc32c" else 8) if function else None
    return None


class _Digests:
    """What is computed over a body as it is written: size, MD5 (the ETag) and the client's checksum."""

    def __init__(self, algorithm: str | None) -> None:
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.checksum = _new_checksum(algorithm) if algorithm else None

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self.md5.update(data)
        if self.checksum is not None:
            self.checksum.update(data)


class _AwsChunkedDecoder:
    """Undo ``aws-chunked`` framing as bytes arrive: ``<hex>[;chunk-signature=..]\\r\\n<data>\\r\\n``
    ... ``0\\r\\n<name>:<value>\\r\\n...\\r\\n``; the trailers (checksums) are kept in ``trailers``.

    Chunk signatures are not checked: the auth middleware verifies the seed signature only.
    """

    _MAX_LINE = 4096

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._state = "size"
        self._remaining = 0
        self.trailers: dict[str, str] = {}

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out = bytearray()
        progressing = True
        while progressing:  # each step decodes one piece of framing or data, until the buffer runs dry
            progressing = self._step(out)
        return bytes(out)

    def finish(self) -> None:
        if self._state == "trailer" and not self._buffer:
            return  # a client that ends after its last trailer line without the empty line
        if self._state != "done":
            raise S3Error(400, "IncompleteBody", "The request body terminated unexpectedly")

    def _step(self, out: bytearray) -> bool:
        """Consume one framing element; False when more bytes are needed."""
        if self._state == "data":
            take = min(self._remaining, len(self._buffer))
            if take == 0:
                return False
            out += self._buffer[:take]
            del self._buffer[:take]
            self._remaining -= take
            if self._remaining == 0:
                self._state = "data-end"
            return True
        if self._state == "data-end":
            if len(self._buffer) < 2:
                return False
            if self._buffer[:2] != b"\r\n":
                raise self._malformed()
            del self._buffer[:2]
            self._state = "size"
            return True
        if self._state == "done":
            if bytes(self._buffer).strip():
                raise self._malformed()
            self._buffer.clear()
            return False
        line = self._line()
        if line is None:
            return False
        if self._state == "size":
            self._start_chunk(line)
        else:
            self._trailer(line)
        return True

    def _line(self) -> bytes | None:
        end = self._buffer.find(b"\r\n")
        if end < 0:
            if len(self._buffer) > self._MAX_LINE:
                raise self._malformed()
            return None
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _start_chunk(self, line: bytes) -> None:
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise self._malformed() from exc
        if size < 0:
            raise self._malformed()
        if size == 0:
            self._state = "trailer"
        else:
            self._remaining = size
            self._state = "data"

    def _trailer(self, line: bytes) -> None:
        if not line.strip():
            self._state = "done"
            return
        name, separator, value = line.partition(b":")
        if not separator:
            raise self._malformed()
        self.trailers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")

    @staticmethod
    def _malformed() -> S3Error:
        return S3Error(400, "InvalidRequest", "The aws-chunked body is malformed")


@dataclass
class _BodySpec:
    """What the request's headers promise about its body, checked once the body has been read."""

    chunked: bool
    content_md5: bytes | None
    algorithm: str | None
    expected_checksum: str | None
    from_trailer: bool
    decoded_length: int | None

    @classmethod
    def from_headers(cls, headers: dict[str, str]) -> _BodySpec:
        encodings = [part.strip().lower() for part in headers.get("content-encoding", "").split(",")]
        chunked = "aws-chunked" in encodings or headers.get("x-amz-content-sha256", "").startswith(
            "STREAMING-"
        )
        algorithm, expected, from_trailer = cls._checksum_declaration(headers)
        decoded = headers.get("x-amz-decoded-content-length")
        try:
            decoded_length = int(decoded) if decoded is not None else None
        except ValueError as exc:
            raise _invalid_argument("x-amz-decoded-content-length must be an integer") from exc
        return cls(chunked, cls._content_md5(headers), algorithm, expected, from_trailer, decoded_length)

    @staticmethod
    def _content_md5(headers: dict[str, str]) -> bytes | None:
        value = headers.get("content-md5")
        if value is None:
            return None
        try:
            digest = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise S3Error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.") from exc
        if len(digest) != 16:
            raise S3Error(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        return digest

    @staticmethod
    def _checksum_declaration(headers: dict[str, str]) -> tuple[str | None, str | None, bool]:
        trailer = headers.get("x-amz-trailer", "").strip().lower()
        if trailer.startswith(CHECKSUM_HEADER_PREFIX):
            return trailer[len(CHECKSUM_HEADER_PREFIX) :], None, True
        for name, value in headers.items():
            if name.startswith(CHECKSUM_HEADER_PREFIX) and name not in CHECKSUM_NON_VALUES:
                return name[len(CHECKSUM_HEADER_PREFIX) :], value.strip(), False
        return None, None, False

    def verify(self, digests: _Digests, trailers: dict[str, str]) -> tuple[str, str] | None:
        """Raise the S3 error for a body that breaks a promise; the accepted (algorithm, checksum)."""
        if self.decoded_length is not None and digests.size != self.decoded_length:
            raise S3Error(
                400,
                "IncompleteBody",
                "You did not provide the number of bytes specified by the x-amz-decoded-content-length header",
            )
        if self.content_md5 is not None and digests.md5.digest() != self.content_md5:
            raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
        if self.algorithm is None:
            return None
        name = CHECKSUM_HEADER_PREFIX + self.algorithm
        expected = trailers.get(name) if self.from_trailer else self.expected_checksum
        if expected is None:
            raise S3Error(
                400, "InvalidRequest", f"The request declared the trailer {name} but did not send it"
            )
        computed = digests.checksum.b64digest() if digests.checksum is not None else None
        if computed is not None and computed != expected:
            raise S3Error(
                400,
                "BadDigest",
                f"The {self.algorithm.upper()} you specified did not match the calculated checksum.",
            )
        return self.algorithm, expected


async def _receive_pieces(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def _decoded_blocks(
    receive: Receive, spec: _BodySpec, trailers: dict[str, str]
) -> AsyncIterator[bytes]:
    """The body's bytes in blocks of about IO_BLOCK, aws-chunked framing removed; fills ``trailers``."""
    decoder = _AwsChunkedDecoder() if spec.chunked else None
    pending = bytearray()
    async for piece in _receive_pieces(receive):
        pending += decoder.feed(piece) if decoder is not None else piece
        if len(pending) >= IO_BLOCK:
            yield bytes(pending)
            pending.clear()
    if decoder is not None:
        decoder.finish()
        trailers.update(decoder.trailers)
    if pending:
        yield bytes(pending)


@dataclass(frozen=True)
class _Received:
    size: int
    md5_hex: str
    checksum: tuple[str, str] | None


def _write_block(handle: IO[bytes], digests: _Digests, block: bytes) -> None:
    digests.update(block)
    handle.write(block)


async def _receive_to_file(request: _Request, target: Path, *, limit: int = MAX_OBJECT_SIZE) -> _Received:
    """Stream the request body into ``target``, checking its digests; raises before anything is kept."""
    spec = _BodySpec.from_headers(request.headers)
    declared = spec.decoded_length if spec.chunked else _content_length(request.headers)
    if declared is not None and declared > limit:
        raise _entity_too_large()
    digests = _Digests(spec.algorithm)
    trailers: dict[str, str] = {}
    handle: IO[bytes] = await to_thread.run_sync(_open_for_writing, target)
    try:
        async for block in _decoded_blocks(request.receive, spec, trailers):
            if digests.size + len(block) > limit:
                raise _entity_too_large()
            await to_thread.run_sync(_write_block, handle, digests, block)
    finally:
        await to_thread.run_sync(handle.close)
    checksum = spec.verify(digests, trailers)
    return _Received(digests.size, digests.md5.hexdigest(), checksum)


def _content_length(headers: dict[str, str]) -> int | None:
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


def _open_for_writing(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "wb")  # noqa: SIM115 - closed by the caller once the body is written


async def _receive_small(request: _Request, limit: int = MAX_XML_BODY) -> bytes:
    """A small body (an XML document) in memory, with the same digest checks as an object body."""
    spec = _BodySpec.from_headers(request.headers)
    digests = _Digests(spec.algorithm)
    trailers: dict[str, str] = {}
    body = bytearray()
    async for block in _decoded_blocks(request.receive, spec, trailers):
        body += block
        if len(body) > limit:
            raise S3Error(400, "MaxMessageLengthExceeded", "Your request was too big.")
    digests.update(bytes(body))
    spec.verify(digests, trailers)
    return bytes(body)
