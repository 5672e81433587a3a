"""S3's REST-XML protocol (the subset SageMaker clients use) over forgeml's artifact folder.

What boto3 uploads here is the very file a training job reads as ``s3://bucket/key``, and what a job
writes is what boto3 downloads: both live at ``$FORGEML_HOME/s3/<bucket>/<key>``.  What S3 keeps
about an object that a file system does not (ETag, Content-Type, ``x-amz-meta-*``, checksums) lives
in sidecar records under ``$FORGEML_HOME/s3/.forgeml/``, a folder no bucket name can reach, so
listings and jobs never see them.  A sidecar is trusted only while the file's size, mtime and inode
still match it: when a job overwrites an object, its ETag is recomputed from the new content.

Bodies stream in and out in 1 MiB blocks (objects can be GBs), file work runs in worker threads,
uploads land in a staging folder and are renamed into place, so a reader never sees half an object.
Addressing is path style (``/{bucket}/{key}``); virtual-host style (``{bucket}.localhost:port``, or
any domain listed in ``FORGEML_S3_DOMAIN``) is accepted too.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.utils
import errno
import fcntl
import hashlib
import importlib
import json
import logging
import os
import re
import shutil
import time
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, quote, quote_plus, unquote

from anyio import to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forgeml.errors import ValidationException
from forgeml.server.errors import REST_XML, PayloadHashMismatch, error_response
from forgeml.storage.uri import check_key, parse_s3_uri

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

logger = logging.getLogger("forgeml.server.s3")

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
MAX_KEYS = 1000
MAX_KEY_BYTES = 1024
MAX_OBJECT_SIZE = 5 * 1024**3
MIN_PART_SIZE = 5 * 1024**2
MAX_PART_NUMBER = 10_000
MAX_XML_BODY = 4 * 1024 * 1024
MAX_METADATA_BYTES = 2048
MAX_DELETE_KEYS = 1000
IO_BLOCK = 1024 * 1024
INTERNAL_FOLDER = ".forgeml"
# Headers S3 stores with an object and returns on GET/HEAD.
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}
# Query parameters that qualify an operation rather than name a sub-resource (acl, tagging, ...).
NEUTRAL_QUERY = {
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "start-after",
    "encoding-type",
    "fetch-owner",
    "marker",
    "x-id",
    "partNumber",
    "uploadId",
    "versionId",
    "max-parts",
    "part-number-marker",
    "max-buckets",
    "bucket-region",
    *RESPONSE_OVERRIDES,
}
UNSUPPORTED_OPERATION_NAMES = {
    ("GET", "bucket", "versions"): "ListObjectVersions",
    ("GET", "bucket", "uploads"): "ListMultipartUploads",
    ("GET", "bucket", "object-lock"): "GetObjectLockConfiguration",
    ("PUT", "bucket", "object-lock"): "PutObjectLockConfiguration",
    ("POST", "object", "restore"): "RestoreObject",
    ("POST", "object", "select"): "SelectObjectContent",
    ("POST", "bucket", ""): "PostObject",
}
CHECKSUM_HEADER_PREFIX = "x-amz-checksum-"
CHECKSUM_NON_VALUES = {"x-amz-checksum-algorithm", "x-amz-checksum-mode", "x-amz-checksum-type"}


# -- errors ---------------------------------------------------------------------------------------


class S3Error(Exception):
    """An S3 error answer: HTTP status, S3's error code and message, and any extra headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []


class _ClientGone(Exception):
    """The client went away before its body arrived: nothing is stored and nothing is answered."""


def _no_such_bucket() -> S3Error:
    return S3Error(404, "NoSuchBucket", "The specified bucket does not exist")


def _no_such_key() -> S3Error:
    return S3Error(404, "NoSuchKey", "The specified key does not exist.")


def _no_such_upload() -> S3Error:
    return S3Error(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been "
        "aborted or completed.",
    )


def _invalid_argument(message: str) -> S3Error:
    return S3Error(400, "InvalidArgument", message)


def _malformed_xml() -> S3Error:
    return S3Error(
        400,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published schema",
    )


def _precondition_failed() -> S3Error:
    return S3Error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")


def _invalid_range(size: int) -> S3Error:
    return S3Error(
        416, "InvalidRange", "The requested range is not satisfiable", [("Content-Range", f"bytes */{size}")]
    )


def _not_implemented(operation: str) -> S3Error:
    return S3Error(501, "NotImplemented", f"forgeml's S3 subset does not implement {operation}")


def _key_conflict(key: str) -> S3Error:
    return _invalid_argument(
        f"The key '{key}' cannot be stored: forgeml keeps objects as files, and this key would need a file "
        "and a folder at the same path (a shorter key is an object, or this key is a prefix of other objects)."
    )


# -- formats --------------------------------------------------------------------------------------


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


def _iso_date(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None  # S3 ignores a date condition it cannot read


def _normalized_key(key: str) -> str:
    """The key as the file system stores it: empty segments collapse, as ``Path`` joins them."""
    return "/".join(segment for segment in key.split("/") if segment)


def _unquoted_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def _etag_matches(condition: str, etag: str) -> bool:
    wanted = [_unquoted_etag(part) for part in condition.split(",")]
    return "*" in wanted or _unquoted_etag(etag) in wanted


def _xml_root(name: str) -> ET.Element:
    root = ET.Element(name)
    root.set("xmlns", S3_NAMESPACE)
    return root


def _child(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = str(text)
    return element


def _xml_bytes(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode()


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_xml(body: bytes) -> ET.Element:
    """A request document; DTDs are refused outright (no entity tricks reach the parser)."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise _malformed_xml()
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise _malformed_xml() from exc


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local_name(child.tag) == name]


def _child_text(element: ET.Element, name: str) -> str | None:
    found = _children(element, name)
    return (found[0].text or "") if found else None


def _owner_id(account_id: str) -> str:
    """A stable 64-hex canonical user id for the account, the shape S3 uses."""
    return hashlib.sha256(f"forgeml:{account_id}".encode()).hexdigest()


def _add_owner(parent: ET.Element, tag: str, account_id: str) -> None:
    owner = _child(parent, tag)
    _child(owner, "ID", _owner_id(account_id))
    _child(owner, "DisplayName", "forgeml")


# -- checksums and bodies -------------------------------------------------------------------------


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
            raise _ClientGone()
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


def _entity_too_large() -> S3Error:
    return S3Error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")


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


# -- object records and the file store -------------------------------------------------------------


@dataclass
class ObjectRecord:
    """What S3 knows about an object beyond its bytes; kept in a sidecar next to (not in) the bucket."""

    etag: str
    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    part_sizes: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "etag": self.etag,
            "content_type": self.content_type,
            "metadata": self.metadata,
            "headers": self.headers,
            "checksums": self.checksums,
            "part_sizes": self.part_sizes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectRecord:
        return cls(
            etag=str(data["etag"]),
            content_type=str(data.get("content_type") or DEFAULT_CONTENT_TYPE),
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            checksums={str(k): str(v) for k, v in (data.get("checksums") or {}).items()},
            part_sizes=[int(size) for size in data.get("part_sizes") or []],
        )


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: float
    record: ObjectRecord


@dataclass(frozen=True)
class PartInfo:
    number: int
    etag: str
    size: int
    modified: float
    checksums: dict[str, str]


@dataclass(frozen=True)
class ListingPage:
    objects: list[ObjectInfo]
    prefixes: list[str]
    truncated: bool
    last: str | None


def _stat_identity(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def _is_temporary(name: str) -> bool:
    """An upload in progress, as the ArtifactStore names them (``.<name>.tmp-<pid>``)."""
    return name.startswith(".") and ".tmp-" in name


def _is_listable_name(name: str) -> bool:
    if _is_temporary(name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False  # bytes that are not UTF-8 cannot be an S3 key
    return True


def _md5_of(handle: IO[bytes]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    handle.seek(0)
    while block := handle.read(IO_BLOCK):
        digest.update(block)
    handle.seek(0)
    return digest.hexdigest()


def _copy_range(source: IO[bytes], target: IO[bytes], start: int, length: int) -> str:
    """Copy ``length`` bytes from ``start``; returns the MD5 of what was copied."""
    digest = hashlib.md5(usedforsecurity=False)
    source.seek(start)
    remaining = length
    while remaining > 0:
        block = source.read(min(IO_BLOCK, remaining))
        if not block:
            raise S3Error(500, "InternalError", "The source object changed while it was being copied")
        digest.update(block)
        target.write(block)
        remaining -= len(block)
    return digest.hexdigest()


def _common_prefix(name: str, prefix: str, delimiter: str) -> str | None:
    """The CommonPrefixes entry ``name`` rolls up into, or None when it is listed on its own."""
    if not delimiter or not name.startswith(prefix):
        return None
    index = name.find(delimiter, len(prefix))
    return name[: index + len(delimiter)] if index >= 0 else None


@dataclass(frozen=True)
class _ListingQuery:
    prefix: str
    delimiter: str
    after: str
    skip_under: str | None  # a common prefix returned on an earlier page: nothing below it again

    @classmethod
    def create(cls, prefix: str, delimiter: str, after: str) -> _ListingQuery:
        rolled = _common_prefix(after, prefix, delimiter) if after else None
        return cls(prefix, delimiter, after, after if rolled == after else None)

    def skips_key(self, key: str) -> bool:
        return key <= self.after or (self.skip_under is not None and key.startswith(self.skip_under))

    def skips_folder(self, folder_key: str) -> bool:
        """Whether no key under ``folder_key`` (ending in '/') can be listed."""
        if not (folder_key.startswith(self.prefix) or self.prefix.startswith(folder_key)):
            return True
        if self.after > folder_key and not self.after.startswith(folder_key):
            return True  # every key below sorts before the marker
        return self.skip_under is not None and folder_key.startswith(self.skip_under)


def _sorted_entries(folder: Path, base: str) -> list[tuple[str, Path, bool]]:
    """(key or key prefix ending in '/', path, is_folder) in S3's key order (UTF-8 byte order)."""
    entries: list[tuple[str, Path, bool]] = []
    try:
        with os.scandir(folder) as scan:
            for entry in scan:
                if not _is_listable_name(entry.name):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    entries.append((f"{base}{entry.name}/", Path(entry.path), True))
                elif entry.is_file():
                    entries.append((base + entry.name, Path(entry.path), False))
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries.sort(key=lambda item: item[0])  # code point order is UTF-8 byte order
    return entries


def _walk_listing(folder: Path, base: str, query: _ListingQuery) -> Iterator[tuple[str, Path | None]]:
    for name, path, is_folder in _sorted_entries(folder, base):
        if is_folder:
            if query.skips_folder(name):
                continue
            common = _common_prefix(name, query.prefix, query.delimiter)
            if common is None:
                yield from _walk_listing(path, name, query)
            elif _holds_listable_key(path, name, query):
                yield common, None
        elif name.startswith(query.prefix) and not query.skips_key(name):
            common = _common_prefix(name, query.prefix, query.delimiter)
            yield (common, None) if common is not None else (name, path)


def _holds_listable_key(folder: Path, base: str, query: _ListingQuery) -> bool:
    for name, path, is_folder in _sorted_entries(folder, base):
        if is_folder:
            if not query.skips_folder(name) and _holds_listable_key(path, name, query):
                return True
        elif not query.skips_key(name):
            return True
    return False


def _iter_listing(bucket_root: Path, query: _ListingQuery) -> Iterator[tuple[str, Path | None]]:
    """Keys (with their file) and common prefixes (with None), each once, in key order."""
    last_prefix: str | None = None
    for name, path in _walk_listing(bucket_root, "", query):
        if path is None:
            if name == last_prefix:
                continue
            last_prefix = name
        yield name, path


class LocalObjectStore:
    """Buckets and objects as folders and files under ``root``, with S3's metadata in sidecars.

    Every commit, delete and sidecar write of a bucket happens under that bucket's file lock, so
    concurrent requests (threads or server worker processes) never pair an object with another
    write's record.
    """

    def __init__(self, root: Path, region: str) -> None:
        self.root = root
        self.region = region
        internal = root / INTERNAL_FOLDER
        self._staging = internal / "staging"
        self._metadata = internal / "metadata"
        self._uploads = internal / "multipart"
        self._locks = internal / "locks"

    # -- names --------------------------------------------------------------------------------------
    @staticmethod
    def check_bucket(bucket: str) -> None:
        try:
            parse_s3_uri(f"s3://{bucket}/")
        except ValidationException as exc:
            raise S3Error(400, "InvalidBucketName", "The specified bucket is not valid.") from exc

    def bucket_path(self, bucket: str) -> Path:
        self.check_bucket(bucket)
        return self.root / bucket

    def object_path(self, bucket: str, key: str) -> Path:
        """The file behind a key; keys that would leave the bucket are refused, never resolved."""
        bucket_root = self.bucket_path(bucket)
        if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
            raise S3Error(400, "KeyTooLongError", "Your key is too long")
        try:
            check_key(key, field="key")
        except ValidationException as exc:
            raise _invalid_argument(exc.message) from exc
        return bucket_root / key

    def require_bucket(self, bucket: str) -> Path:
        path = self.bucket_path(bucket)
        if not path.is_dir():
            raise _no_such_bucket()
        return path

    def staging_file(self) -> Path:
        return self._staging / uuid.uuid4().hex

    # -- locks and sidecars -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, bucket: str) -> Iterator[None]:
        self._locks.mkdir(parents=True, exist_ok=True)
        with open(self._locks / f"{bucket}.lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _sidecar(self, bucket: str, key: str) -> Path:
        digest = hashlib.sha256(_normalized_key(key).encode("utf-8", "surrogateescape")).hexdigest()
        return self._metadata / bucket / "objects" / digest[:2] / f"{digest}.json"

    def _read_record(self, bucket: str, key: str, stat: os.stat_result) -> ObjectRecord | None:
        try:
            data = json.loads(self._sidecar(bucket, key).read_text())
            if data.get("stat") != _stat_identity(stat):
                return None  # the file changed behind S3's back (a job wrote it): the record is stale
            return ObjectRecord.from_json(data["record"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_record(self, bucket: str, key: str, stat: os.stat_result, record: ObjectRecord) -> None:
        path = self._sidecar(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps({"stat": _stat_identity(stat), "record": record.to_json()}))
        os.replace(tmp, path)

    def describe(self, bucket: str, key: str, handle: IO[bytes], *, cache: bool = True) -> ObjectInfo:
        """The object open in ``handle``; an object without a valid record gets its MD5 ETag now.

        ``cache=False`` while the bucket's lock is held (the cache write takes that lock).
        """
        stat = os.fstat(handle.fileno())
        record = self._read_record(bucket, key, stat)
        if record is None:
            record = ObjectRecord(etag=f'"{_md5_of(handle)}"')
            if cache:
                self._cache_record(bucket, key, stat, record)
        return ObjectInfo(_normalized_key(key), stat.st_size, stat.st_mtime, record)

    def _cache_record(self, bucket: str, key: str, stat: os.stat_result, record: ObjectRecord) -> None:
        with self._lock(bucket):
            try:
                current = (self.root / bucket / key).stat()
            except OSError:
                return
            if (
                _stat_identity(current) == _stat_identity(stat)
                and self._read_record(bucket, key, current) is None
            ):
                self._write_record(bucket, key, stat, record)

    def _info_at(self, bucket: str, key: str, path: Path, *, cache: bool = True) -> ObjectInfo | None:
        try:
            with open(path, "rb") as handle:
                return self.describe(bucket, key, handle, cache=cache)
        except OSError:
            return None  # deleted between listing and reading

    # -- buckets ------------------------------------------------------------------------------------
    def list_buckets(self) -> list[tuple[str, float, str]]:
        """(name, creation time, region) of every bucket folder, by name."""
        buckets = []
        for entry in _sorted_entries(self.root, ""):
            name = entry[0].rstrip("/")
            if not entry[2]:
                continue
            try:
                self.check_bucket(name)
            except S3Error:
                continue
            buckets.append((name, *self._bucket_info(name)))
        return buckets

    def _bucket_info(self, bucket: str) -> tuple[float, str]:
        """(creation time, region); buckets a job made implicitly report their folder's time."""
        try:
            data = json.loads((self._metadata / bucket / "bucket.json").read_text())
            return float(data["created"]), str(data.get("region") or self.region)
        except (OSError, ValueError, KeyError, TypeError):
            try:
                return (self.root / bucket).stat().st_mtime, self.region
            except OSError:
                return time.time(), self.region

    def bucket_region(self, bucket: str) -> str:
        return self._bucket_info(bucket)[1]

    def create_bucket(self, bucket: str, region: str) -> None:
        path = self.bucket_path(bucket)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(bucket):
            try:
                path.mkdir()
            except FileExistsError as exc:
                raise S3Error(
                    409,
                    "BucketAlreadyOwnedByYou",
                    "Your previous request to create the named bucket succeeded and you already own it.",
                ) from exc
            info = self._metadata / bucket / "bucket.json"
            info.parent.mkdir(parents=True, exist_ok=True)
            info.write_text(json.dumps({"created": time.time(), "region": region}))

    def delete_bucket(self, bucket: str) -> None:
        path = self.require_bucket(bucket)
        with self._lock(bucket):
            if _holds_listable_key(path, "", _ListingQuery.create("", "", "")):
                raise S3Error(409, "BucketNotEmpty", "The bucket you tried to delete is not empty")
            shutil.rmtree(path)
            shutil.rmtree(self._metadata / bucket, ignore_errors=True)
        for upload in self._uploads_of(bucket):
            shutil.rmtree(upload, ignore_errors=True)

    # -- objects ------------------------------------------------------------------------------------
    def open_object(self, bucket: str, key: str) -> tuple[IO[bytes], ObjectInfo]:
        path = self.object_path(bucket, key)
        self.require_bucket(bucket)
        if key.endswith("/"):
            raise _no_such_key()
        try:
            handle = open(path, "rb")  # noqa: SIM115 - handed to the caller, who closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise _no_such_key() from exc
        try:
            return handle, self.describe(bucket, key, handle)
        except BaseException:
            handle.close()
            raise

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        handle, info = self.open_object(bucket, key)
        handle.close()
        return info

    def commit(
        self,
        bucket: str,
        key: str,
        staged: Path,
        record: ObjectRecord,
        conditions: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Move a fully written staging file into place with its record, atomically for readers."""
        path = self.object_path(bucket, key)
        bucket_root = self.bucket_path(bucket)
        stat = staged.stat()
        with self._lock(bucket):
            if not bucket_root.is_dir():
                raise _no_such_bucket()
            self._check_write_conditions(bucket, key, path, conditions or {})
            self._write_record(bucket, key, stat, record)  # first, so the object is never seen without it
            installed = self._install(staged, path, key)
            if _stat_identity(installed) != _stat_identity(stat):
                self._write_record(bucket, key, installed, record)  # copied across file systems
        return ObjectInfo(_normalized_key(key), installed.st_size, installed.st_mtime, record)

    def _check_write_conditions(self, bucket: str, key: str, path: Path, conditions: dict[str, str]) -> None:
        """``If-None-Match: *`` (create only) and ``If-Match: <etag>`` (replace only that version)."""
        if_none_match, if_match = conditions.get("if-none-match"), conditions.get("if-match")
        if if_none_match is None and if_match is None:
            return
        current = self._info_at(bucket, key, path, cache=False) if path.is_file() else None
        if (
            if_none_match is not None
            and current is not None
            and _etag_matches(if_none_match, current.record.etag)
        ):
            raise _precondition_failed()
        if if_match is not None and (current is None or not _etag_matches(if_match, current.record.etag)):
            raise _precondition_failed() if current is not None else _no_such_key()

    def _install(self, staged: Path, path: Path, key: str) -> os.stat_result:
        for _attempt in range(3):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._replace(staged, path)
                return path.stat()
            except FileNotFoundError:
                continue  # a folder on the way was pruned by a delete: make it again
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                raise _key_conflict(key) from exc
        raise S3Error(500, "InternalError", "We encountered an internal error. Please try again.")

    @staticmethod
    def _replace(staged: Path, path: Path) -> None:
        try:
            os.replace(staged, path)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # The bucket folder is on another file system: copy next to the target, then rename.
            sibling = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
            shutil.copyfile(staged, sibling)
            os.replace(sibling, path)
            staged.unlink()

    def make_folder(self, bucket: str, key: str) -> None:
        """A zero-byte ``dir/`` key: the folder itself (a file system cannot hold both)."""
        path = self.object_path(bucket, key)
        with self._lock(bucket):
            if not self.bucket_path(bucket).is_dir():
                raise _no_such_bucket()
            try:
                path.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as exc:
                raise _key_conflict(key) from exc

    def delete_object(self, bucket: str, key: str) -> None:
        path = self.object_path(bucket, key)
        bucket_root = self.require_bucket(bucket)
        with self._lock(bucket):
            if key.endswith("/"):
                with contextlib.suppress(OSError):
                    path.rmdir()  # an empty folder marker; a folder holding objects stays
            elif path.is_file():
                path.unlink()
                self._sidecar(bucket, key).unlink(missing_ok=True)
            self._prune(path.parent, bucket_root)

    @staticmethod
    def _prune(folder: Path, bucket_root: Path) -> None:
        """Remove folders left empty, as S3 has no folders once their last object is gone."""
        while folder != bucket_root and bucket_root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def copy_to_staging(self, source: IO[bytes], start: int, length: int) -> tuple[Path, str]:
        staged = self.staging_file()
        staged.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(staged, "wb") as target:
                md5_hex = _copy_range(source, target, start, length)
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        return staged, md5_hex

    def list_page(self, bucket: str, query: _ListingQuery, max_keys: int) -> ListingPage:
        bucket_root = self.require_bucket(bucket)
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        last: str | None = None
        truncated = False
        if max_keys == 0:
            return ListingPage(objects, prefixes, False, None)
        for name, path in _iter_listing(bucket_root, query):
            if len(objects) + len(prefixes) >= max_keys:
                truncated = True
                break
            if path is None:
                prefixes.append(name)
            else:
                info = self._info_at(bucket, name, path)
                if info is None:
                    continue
                objects.append(info)
            last = name
        return ListingPage(objects, prefixes, truncated, last)

    # -- multipart uploads ---------------------------------------------------------------------------
    def create_upload(self, bucket: str, key: str, template: ObjectRecord, algorithm: str | None) -> str:
        self.object_path(bucket, key)
        self.require_bucket(bucket)
        upload_id = uuid.uuid4().hex
        folder = self._uploads / upload_id
        folder.mkdir(parents=True)
        manifest = {
            "bucket": bucket,
            "key": key,
            "initiated": time.time(),
            "record": template.to_json(),
            "algorithm": algorithm,
        }
        (folder / "upload.json").write_text(json.dumps(manifest))
        return upload_id

    def upload_folder(self, bucket: str, key: str, upload_id: str) -> tuple[Path, dict[str, Any]]:
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id):
            raise _no_such_upload()
        folder = self._uploads / upload_id
        try:
            manifest: dict[str, Any] = json.loads((folder / "upload.json").read_text())
        except (OSError, ValueError) as exc:
            raise _no_such_upload() from exc
        if manifest.get("bucket") != bucket or manifest.get("key") != key:
            raise _no_such_upload()
        return folder, manifest

    def _uploads_of(self, bucket: str) -> list[Path]:
        found = []
        for manifest in self._uploads.glob("*/upload.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(manifest.read_text()).get("bucket") == bucket:
                    found.append(manifest.parent)
        return found

    @staticmethod
    def store_part(folder: Path, number: int, staged: Path, etag: str, checksums: dict[str, str]) -> PartInfo:
        target = folder / f"part-{number:05d}"
        os.replace(staged, target)
        stat = target.stat()
        part = PartInfo(number, etag, stat.st_size, stat.st_mtime, checksums)
        info = {"etag": etag, "size": stat.st_size, "modified": stat.st_mtime, "checksums": checksums}
        tmp = folder / f".part-{number:05d}.json.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps(info))
        os.replace(tmp, folder / f"part-{number:05d}.json")
        return part

    @staticmethod
    def list_parts(folder: Path) -> list[PartInfo]:
        parts = []
        for path in sorted(folder.glob("part-*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError):
                data = json.loads(path.read_text())
                number = int(path.name[len("part-") : -len(".json")])
                parts.append(
                    PartInfo(
                        number, data["etag"], int(data["size"]), float(data["modified"]), data["checksums"]
                    )
                )
        return parts

    def complete_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        requested: list[tuple[int, str, dict[str, str]]],
        conditions: dict[str, str],
    ) -> ObjectInfo:
        folder, manifest = self.upload_folder(bucket, key, upload_id)
        parts = _checked_parts(self.list_parts(folder), requested)
        staged = self.staging_file()
        staged.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(staged, "wb") as target:
                for part in parts:
                    with open(folder / f"part-{part.number:05d}", "rb") as source:
                        shutil.copyfileobj(source, target, IO_BLOCK)
            record = ObjectRecord.from_json(manifest["record"])
            digests = b"".join(bytes.fromhex(_unquoted_etag(part.etag)) for part in parts)
            record.etag = f'"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(parts)}"'
            record.part_sizes = [part.size for part in parts]
            info = self.commit(bucket, key, staged, record, conditions)
        finally:
            staged.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        return info

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        folder, _manifest = self.upload_folder(bucket, key, upload_id)
        shutil.rmtree(folder, ignore_errors=True)


def _checked_parts(
    stored: list[PartInfo], requested: list[tuple[int, str, dict[str, str]]]
) -> list[PartInfo]:
    """The stored parts a CompleteMultipartUpload names, after S3's checks on the list."""
    if not requested:
        raise _malformed_xml()
    numbers = [number for number, _etag, _checksums in requested]
    if numbers != sorted(set(numbers)):
        raise S3Error(
            400,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        )
    by_number = {part.number: part for part in stored}
    chosen = []
    for number, etag, checksums in requested:
        part = by_number.get(number)
        if (
            part is None
            or _unquoted_etag(etag) != _unquoted_etag(part.etag)
            or any(
                name in part.checksums and part.checksums[name] != value for name, value in checksums.items()
            )
        ):
            raise S3Error(
                400,
                "InvalidPart",
                "One or more of the specified parts could not be found.  The part may not have been uploaded, "
                "or the specified entity tag may not match the part's entity tag.",
            )
        chosen.append(part)
    if any(part.size < MIN_PART_SIZE for part in chosen[:-1]):
        raise S3Error(
            400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size."
        )
    return chosen


# -- requests and responses ----------------------------------------------------------------------


@dataclass
class _Request:
    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]
    receive: Receive
    scheme: str

    @property
    def subresources(self) -> set[str]:
        return {name for name in self.query if name not in NEUTRAL_QUERY and not name.startswith("X-Amz-")}

    def location(self) -> str:
        host = self.headers.get("host", "localhost")
        return f"{self.scheme}://{host}/{self.bucket}/{quote(self.key, safe='/')}"


@dataclass
class _Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: AsyncGenerator[bytes, None] | None = None
    length: int | None = None  # Content-Length of a streamed (or HEAD) body


_Handler = Callable[[_Request], Awaitable[_Response]]


def _xml_response(
    root: ET.Element, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> _Response:
    return _Response(status, [("Content-Type", "application/xml"), *(headers or [])], _xml_bytes(root))


def _request_headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or []:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _virtual_host_domains() -> tuple[str, ...]:
    configured = os.environ.get("FORGEML_S3_DOMAIN", "")
    return ("localhost", *(part.strip().lower() for part in configured.split(",") if part.strip()))


def _bucket_from_host(host: str, domains: tuple[str, ...]) -> str | None:
    """``{bucket}.localhost:port`` (or ``{bucket}.<FORGEML_S3_DOMAIN>``) names the bucket in the host."""
    hostname = host.lower()
    if hostname.startswith("["):
        return None  # an IPv6 literal never carries a bucket
    hostname = hostname.rsplit(":", 1)[0]
    for domain in domains:
        suffix = f".{domain}"
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            return hostname[: -len(suffix)]
    return None


def _request_id() -> str:
    return uuid.uuid4().hex[:16].upper()


def _object_record_from_headers(headers: dict[str, str]) -> ObjectRecord:
    metadata = {
        name[len("x-amz-meta-") :]: value for name, value in headers.items() if name.startswith("x-amz-meta-")
    }
    if sum(len(name) + len(value) for name, value in metadata.items()) > MAX_METADATA_BYTES:
        raise S3Error(
            400, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size."
        )
    stored = {name: headers[name] for name in STORED_HEADERS if name in headers}
    if "content-encoding" in stored:
        encodings = [part.strip() for part in stored["content-encoding"].split(",")]
        kept = [part for part in encodings if part and part.lower() != "aws-chunked"]
        if kept:
            stored["content-encoding"] = ",".join(kept)
        else:
            del stored["content-encoding"]
    return ObjectRecord(
        etag="",
        content_type=headers.get("content-type") or DEFAULT_CONTENT_TYPE,
        metadata=metadata,
        headers=stored,
    )


def _object_headers(info: ObjectInfo, *, checksums: bool) -> list[tuple[str, str]]:
    record = info.record
    headers = [
        ("Last-Modified", _http_date(info.modified)),
        ("ETag", record.etag),
        ("Content-Type", record.content_type),
        ("Accept-Ranges", "bytes"),
    ]
    headers += [(name, value) for name, value in record.headers.items()]
    headers += [(f"x-amz-meta-{name}", value) for name, value in record.metadata.items()]
    if checksums and record.checksums:
        headers += [(CHECKSUM_HEADER_PREFIX + name, value) for name, value in record.checksums.items()]
        headers.append(("x-amz-checksum-type", "FULL_OBJECT"))
    return headers


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Inclusive (first, last) for ``bytes=a-b``, ``a-`` or ``-n``; None for the whole object.

    A Range S3 cannot read (another unit, several ranges, last < first) is ignored, as S3 and HTTP
    do; a readable one that selects nothing is ``InvalidRange`` (416).
    """
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if match is None or not any(match.groups()):
        return None
    first, last = match.groups()
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _invalid_range(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _invalid_range(size)
    return start, min(int(last), size - 1) if last else size - 1


def _read_conditions(headers: dict[str, str], info: ObjectInfo, *, prefix: str = "") -> bool:
    """HTTP conditions on an object: True to go on, False for 304 Not Modified; 412 raised.

    With ``prefix`` ``x-amz-copy-source-`` these are CopyObject's conditions on its source, where
    every failure is a 412.
    """
    copying = bool(prefix)
    modified = int(info.modified)
    if_match = headers.get(f"{prefix}if-match")
    if_none_match = headers.get(f"{prefix}if-none-match")
    if if_match is not None and not _etag_matches(if_match, info.record.etag):
        raise _precondition_failed()
    unmodified_since = _parse_http_date(headers.get(f"{prefix}if-unmodified-since"))
    if if_match is None and unmodified_since is not None and modified > unmodified_since:
        raise _precondition_failed()
    if if_none_match is not None and _etag_matches(if_none_match, info.record.etag):
        if copying:
            raise _precondition_failed()
        return False
    modified_since = _parse_http_date(headers.get(f"{prefix}if-modified-since"))
    if if_none_match is None and modified_since is not None and modified <= modified_since:
        if copying:
            raise _precondition_failed()
        return False
    return True


async def _file_blocks(handle: IO[bytes], start: int, length: int) -> AsyncGenerator[bytes, None]:
    try:
        await to_thread.run_sync(handle.seek, start)
        remaining = length
        while remaining > 0:
            block: bytes = await to_thread.run_sync(handle.read, min(IO_BLOCK, remaining))
            if not block:
                break
            remaining -= len(block)
            yield block
    finally:
        await to_thread.run_sync(handle.close)


def _encoder(encoding: str | None) -> Callable[[str], str]:
    """Keys in listings, URL-encoded when the client asked (botocore always does) and raw otherwise."""
    if encoding is None:
        return lambda value: value
    return lambda value: quote_plus(value, safe="/")


def _max_keys(query: dict[str, str], name: str = "max-keys", ceiling: int = MAX_KEYS) -> int:
    raw = query.get(name)
    if raw is None:
        return ceiling
    try:
        value = int(raw)
    except ValueError as exc:
        raise _invalid_argument(f"Provided {name} not an integer or within integer range") from exc
    if value < 0:
        raise _invalid_argument(f"Argument {name} must be an integer between 0 and 2147483647")
    return min(value, ceiling)


def _encoding_type(query: dict[str, str]) -> str | None:
    encoding = query.get("encoding-type")
    if encoding is not None and encoding.lower() != "url":
        raise _invalid_argument("Invalid Encoding Method specified in Request")
    return "url" if encoding is not None else None


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        name = base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeError) as exc:
        raise _invalid_argument("The continuation token provided is incorrect") from exc
    if not name:
        raise _invalid_argument("The continuation token provided is incorrect")
    return name


def _part_number(raw: str | None) -> int:
    try:
        number = int(raw or "")
    except ValueError as exc:
        raise _invalid_argument("Part number must be an integer between 1 and 10000, inclusive") from exc
    if not 1 <= number <= MAX_PART_NUMBER:
        raise _invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
    return number


def _copy_source(header: str) -> tuple[str, str]:
    """``x-amz-copy-source`` (``[/]bucket/key[?versionId=..]``, URL-encoded) -> (bucket, key)."""
    source = header.split("?versionId=", 1)[0]
    source = unquote(source).lstrip("/")
    bucket, _, key = source.partition("/")
    if not bucket or not key:
        raise _invalid_argument("Invalid copy source object key")
    return bucket, key


def _operation_name(method: str, target: str, subresource: str) -> str:
    known = UNSUPPORTED_OPERATION_NAMES.get((method, target, subresource))
    if known:
        return known
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}.get(
        method, method
    )
    words = "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", subresource))
    return f"{verb}{target.capitalize()}{words}"


def _checksum_headers(checksum: tuple[str, str] | None) -> list[tuple[str, str]]:
    if checksum is None:
        return []
    return [(CHECKSUM_HEADER_PREFIX + checksum[0], checksum[1]), ("x-amz-checksum-type", "FULL_OBJECT")]


# -- the application -------------------------------------------------------------------------------


class _BodyTracker:
    """Wraps ``receive`` to know whether a request's declared body was read to its end."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"0").strip()
        self._declared = b"transfer-encoding" in headers or (length.isdigit() and int(length) > 0)
        self._receive = receive
        self._finished = False

    @property
    def unread(self) -> bool:
        return self._declared and not self._finished

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self._finished = True
        return message


class S3App:
    """The S3 REST-XML subset as a raw ASGI application (see the module docstring)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.store = LocalObjectStore(platform.config.local_s3_root, platform.config.region)
        self.account_id = platform.config.account_id
        self.domains = _virtual_host_domains()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = _request_id()
        head = scope["method"] == "HEAD"
        body = _BodyTracker(scope, receive)
        try:
            response = await self._answer(scope, body.receive)
        except _ClientGone:
            return
        except S3Error as err:
            response = _error(err, request_id)
        except PayloadHashMismatch as err:
            response = _error(S3Error(400, err.code, err.message), request_id)
        except ValidationException as err:
            response = _error(_invalid_argument(err.message), request_id)
        except Exception:
            logger.exception("S3 %s %s failed", scope.get("method"), scope.get("path"))
            response = _error(
                S3Error(500, "InternalError", "We encountered an internal error. Please try again."),
                request_id,
            )
        if body.unread:
            # Answered before the body was read (often without "100 Continue"): the client may not
            # send it, so the connection cannot carry another request.
            response.headers.append(("Connection", "close"))
        await _send(send, response, request_id, head)

    async def _answer(self, scope: Scope, receive: Receive) -> _Response:
        if self.platform.artifacts.uses_remote_s3:
            raise _not_implemented(
                "S3 over a remote artifact store: forgeml's artifacts live in the S3 service at "
                "FORGEML_S3_ENDPOINT_URL; point S3 clients there"
            )
        request = self._parse(scope, receive)
        expected_owner = request.headers.get("x-amz-expected-bucket-owner")
        if expected_owner is not None and expected_owner != self.account_id:
            raise S3Error(403, "AccessDenied", "Access Denied")
        if not request.bucket:
            if request.method == "GET":
                return await self._list_buckets(request)
            raise S3Error(
                405, "MethodNotAllowed", "The specified method is not allowed against this resource."
            )
        if not request.key:
            return await self._bucket_operation(request)
        return await self._object_operation(request)

    def _parse(self, scope: Scope, receive: Receive) -> _Request:
        headers = _request_headers(scope)
        path = str(scope.get("path") or "/")
        query = dict(
            parse_qsl(bytes(scope.get("query_string") or b"").decode("latin-1"), keep_blank_values=True)
        )
        host_bucket = _bucket_from_host(headers.get("host", ""), self.domains)
        if host_bucket is not None:
            bucket, key = host_bucket, path[1:]
        else:
            bucket, _, key = path[1:].partition("/")
        return _Request(
            str(scope["method"]).upper(),
            bucket,
            key,
            query,
            headers,
            receive,
            str(scope.get("scheme", "http")),
        )

    # -- dispatch -----------------------------------------------------------------------------------
    async def _bucket_operation(self, request: _Request) -> _Response:
        subresources = request.subresources
        method = request.method
        handlers: dict[tuple[str, str], _Handler] = {
            ("GET", ""): self._list_objects,
            ("GET", "location"): self._bucket_location,
            ("GET", "versioning"): self._bucket_versioning,
            ("PUT", ""): self._create_bucket,
            ("HEAD", ""): self._head_bucket,
            ("DELETE", ""): self._delete_bucket,
            ("POST", "delete"): self._delete_objects,
        }
        return await self._route(request, "bucket", handlers, subresources, method)

    async def _object_operation(self, request: _Request) -> _Response:
        method = request.method
        subresources = request.subresources
        copying = "x-amz-copy-source" in request.headers
        if "uploadId" in request.query and not subresources:
            upload_handlers: dict[str, _Handler] = {
                "PUT": self._upload_part_copy if copying else self._upload_part,
                "GET": self._list_parts,
                "DELETE": self._abort_upload,
                "POST": self._complete_upload,
            }
            if method in upload_handlers:
                return await upload_handlers[method](request)
        if method == "PUT" and not subresources and copying:
            return await self._copy_object(request)
        handlers: dict[tuple[str, str], _Handler] = {
            ("GET", ""): self._get_object,
            ("HEAD", ""): self._get_object,
            ("PUT", ""): self._put_object,
            ("DELETE", ""): self._delete_object,
            ("POST", "uploads"): self._create_upload,
        }
        return await self._route(request, "object", handlers, subresources, method)

    @staticmethod
    async def _route(
        request: _Request,
        target: str,
        handlers: dict[tuple[str, str], _Handler],
        subresources: set[str],
        method: str,
    ) -> _Response:
        if len(subresources) > 1:
            raise _not_implemented(_operation_name(method, target, sorted(subresources)[0]))
        subresource = next(iter(subresources), "")
        handler = handlers.get((method, subresource))
        if handler is not None:
            return await handler(request)
        if method not in ("GET", "PUT", "DELETE", "HEAD", "POST"):
            raise S3Error(
                405, "MethodNotAllowed", "The specified method is not allowed against this resource."
            )
        raise _not_implemented(_operation_name(method, target, subresource))

    async def _in_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        return await to_thread.run_sync(function, *args)

    # -- buckets ------------------------------------------------------------------------------------
    async def _list_buckets(self, request: _Request) -> _Response:
        buckets: list[tuple[str, float, str]] = await self._in_thread(self.store.list_buckets)
        prefix = request.query.get("prefix", "")
        after = (
            _decode_token(request.query["continuation-token"])
            if "continuation-token" in request.query
            else ""
        )
        chosen = [bucket for bucket in buckets if bucket[0].startswith(prefix) and bucket[0] > after]
        limit = _max_keys(request.query, "max-buckets", 10_000)
        page, rest = chosen[:limit], chosen[limit:]
        root = _xml_root("ListAllMyBucketsResult")
        _add_owner(root, "Owner", self.account_id)
        listed = _child(root, "Buckets")
        for name, created, region in page:
            bucket = _child(listed, "Bucket")
            _child(bucket, "Name", name)
            _child(bucket, "CreationDate", _iso_date(created))
            _child(bucket, "BucketRegion", region)
        if rest and page:
            _child(root, "ContinuationToken", _encode_token(page[-1][0]))
        if prefix:
            _child(root, "Prefix", prefix)
        return _xml_response(root)

    async def _create_bucket(self, request: _Request) -> _Response:
        self.store.check_bucket(request.bucket)
        body = await _receive_small(request)
        region = self.platform.config.region
        if body.strip():
            constraint = _child_text(_parse_xml(body), "LocationConstraint")
            region = constraint or "us-east-1"
        await self._in_thread(self.store.create_bucket, request.bucket, region)
        return _Response(200, [("Location", f"/{request.bucket}")])

    async def _head_bucket(self, request: _Request) -> _Response:
        await self._in_thread(self.store.require_bucket, request.bucket)
        region = await self._in_thread(self.store.bucket_region, request.bucket)
        return _Response(200, [("x-amz-bucket-region", region), ("Content-Type", "application/xml")])

    async def _delete_bucket(self, request: _Request) -> _Response:
        await self._in_thread(self.store.delete_bucket, request.bucket)
        return _Response(204)

    async def _bucket_location(self, request: _Request) -> _Response:
        await self._in_thread(self.store.require_bucket, request.bucket)
        region = await self._in_thread(self.store.bucket_region, request.bucket)
        root = _xml_root("LocationConstraint")
        root.text = None if region == "us-east-1" else region
        return _xml_response(root)

    async def _bucket_versioning(self, request: _Request) -> _Response:
        await self._in_thread(self.store.require_bucket, request.bucket)
        return _xml_response(_xml_root("VersioningConfiguration"))  # never enabled: no Status element

    async def _list_objects(self, request: _Request) -> _Response:
        query = request.query
        version2 = query.get("list-type") == "2"
        if "list-type" in query and not version2:
            raise _invalid_argument("Invalid List Type specified in Request")
        encoding = _encoding_type(query)
        max_keys = _max_keys(query)
        prefix, delimiter = query.get("prefix", ""), query.get("delimiter", "")
        if version2:
            token = query.get("continuation-token")
            after = _decode_token(token) if token is not None else query.get("start-after", "")
        else:
            after = query.get("marker", "")
        listing = _ListingQuery.create(prefix, delimiter, after)
        page: ListingPage = await self._in_thread(self.store.list_page, request.bucket, listing, max_keys)
        if version2:
            return _xml_response(self._list_v2_document(request, page, max_keys, encoding))
        return _xml_response(self._list_v1_document(request, page, max_keys, encoding))

    def _list_v2_document(
        self, request: _Request, page: ListingPage, max_keys: int, encoding: str | None
    ) -> ET.Element:
        query, encode = request.query, _encoder(encoding)
        root = _xml_root("ListBucketResult")
        _child(root, "Name", request.bucket)
        _child(root, "Prefix", encode(query.get("prefix", "")))
        if query.get("delimiter"):
            _child(root, "Delimiter", encode(query["delimiter"]))
        _child(root, "MaxKeys", max_keys)
        if encoding:
            _child(root, "EncodingType", encoding)
        _child(root, "KeyCount", len(page.objects) + len(page.prefixes))
        _child(root, "IsTruncated", "true" if page.truncated else "false")
        if "continuation-token" in query:
            _child(root, "ContinuationToken", query["continuation-token"])
        if page.truncated and page.last is not None:
            _child(root, "NextContinuationToken", _encode_token(page.last))
        if "start-after" in query:
            _child(root, "StartAfter", encode(query["start-after"]))
        owner = query.get("fetch-owner", "").lower() == "true"
        self._add_contents(root, page, encode, owner=owner)
        return root

    def _list_v1_document(
        self, request: _Request, page: ListingPage, max_keys: int, encoding: str | None
    ) -> ET.Element:
        # botocore URL-decodes Delimiter, Marker, NextMarker and keys of a v1 listing, not Prefix.
        query, encode = request.query, _encoder(encoding)
        root = _xml_root("ListBucketResult")
        _child(root, "Name", request.bucket)
        _child(root, "Prefix", query.get("prefix", ""))
        _child(root, "Marker", encode(query.get("marker", "")))
        _child(root, "MaxKeys", max_keys)
        if query.get("delimiter"):
            _child(root, "Delimiter", encode(query["delimiter"]))
        if encoding:
            _child(root, "EncodingType", encoding)
        _child(root, "IsTruncated", "true" if page.truncated else "false")
        if page.truncated and page.last is not None:
            _child(root, "NextMarker", encode(page.last))
        self._add_contents(root, page, encode, owner=True)
        return root

    def _add_contents(
        self, root: ET.Element, page: ListingPage, encode: Callable[[str], str], *, owner: bool
    ) -> None:
        for info in page.objects:
            contents = _child(root, "Contents")
            _child(contents, "Key", encode(info.key))
            _child(contents, "LastModified", _iso_date(info.modified))
            _child(contents, "ETag", info.record.etag)
            _child(contents, "Size", info.size)
            _child(contents, "StorageClass", "STANDARD")
            if owner:
                _add_owner(contents, "Owner", self.account_id)
        for prefix in page.prefixes:
            _child(_child(root, "CommonPrefixes"), "Prefix", encode(prefix))

    async def _delete_objects(self, request: _Request) -> _Response:
        await self._in_thread(self.store.require_bucket, request.bucket)
        document = _parse_xml(await _receive_small(request))
        if _local_name(document.tag) != "Delete":
            raise _malformed_xml()
        keys = [_child_text(item, "Key") for item in _children(document, "Object")]
        if not keys or len(keys) > MAX_DELETE_KEYS or any(key is None for key in keys):
            raise _malformed_xml()
        quiet = (_child_text(document, "Quiet") or "").strip().lower() == "true"
        root = _xml_root("DeleteResult")
        for key in keys:
            assert key is not None
            try:
                if not key:
                    raise _invalid_argument("The key must not be empty")
                await self._in_thread(self.store.delete_object, request.bucket, key)
            except S3Error as err:
                failure = _child(root, "Error")
                _child(failure, "Key", key)
                _child(failure, "Code", err.code)
                _child(failure, "Message", err.message)
                continue
            if not quiet:
                _child(_child(root, "Deleted"), "Key", key)
        return _xml_response(root)

    # -- objects ------------------------------------------------------------------------------------
    async def _put_object(self, request: _Request) -> _Response:
        self.store.object_path(request.bucket, request.key)
        await self._in_thread(self.store.require_bucket, request.bucket)
        record = _object_record_from_headers(request.headers)
        if request.key.endswith("/"):
            return await self._put_folder(request)
        conditions = _write_conditions(request.headers)
        staged = self.store.staging_file()
        try:
            received = await _receive_to_file(request, staged)
            record.etag = f'"{received.md5_hex}"'
            record.checksums = dict([received.checksum]) if received.checksum else {}
            await self._in_thread(self.store.commit, request.bucket, request.key, staged, record, conditions)
        finally:
            staged.unlink(missing_ok=True)
        return _Response(200, [("ETag", record.etag), *_checksum_headers(received.checksum)])

    async def _put_folder(self, request: _Request) -> _Response:
        if await _receive_small(request):
            raise _invalid_argument("forgeml stores a key ending in '/' as a folder, which cannot hold data")
        await self._in_thread(self.store.make_folder, request.bucket, request.key)
        return _Response(200, [("ETag", f'"{hashlib.md5(b"", usedforsecurity=False).hexdigest()}"')])

    async def _get_object(self, request: _Request) -> _Response:
        head = request.method == "HEAD"
        handle, info = await self._in_thread(self.store.open_object, request.bucket, request.key)
        try:
            if not _read_conditions(request.headers, info):
                await to_thread.run_sync(handle.close)
                return _Response(
                    304, [("ETag", info.record.etag), ("Last-Modified", _http_date(info.modified))]
                )
            span, status, extra = self._selected_span(request, info)
            start, last = span if span is not None else (0, info.size - 1)
            length = last - start + 1
            checksums = span is None and request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"
            headers = _object_headers(info, checksums=checksums) + extra
            if not head:
                headers = _with_overrides(headers, request.query)
        except BaseException:
            await to_thread.run_sync(handle.close)
            raise
        if head:
            await to_thread.run_sync(handle.close)
            return _Response(status, headers, length=length)
        return _Response(status, headers, stream=_file_blocks(handle, start, length), length=length)

    @staticmethod
    def _selected_span(
        request: _Request, info: ObjectInfo
    ) -> tuple[tuple[int, int] | None, int, list[tuple[str, str]]]:
        """(inclusive byte span or None for all, status, extra headers) for Range or partNumber."""
        if "partNumber" in request.query:
            number = _part_number(request.query["partNumber"])
            sizes = info.record.part_sizes or [info.size]
            if number > len(sizes):
                raise S3Error(416, "InvalidPartNumber", "The requested partnumber is not satisfiable")
            if not info.record.part_sizes:
                return None, 200, []
            start = sum(sizes[: number - 1])
            last = start + sizes[number - 1] - 1
            content_range = ("Content-Range", f"bytes {start}-{last}/{info.size}")
            return (start, last), 206, [content_range, ("x-amz-mp-parts-count", str(len(sizes)))]
        span = _byte_range(request.headers.get("range"), info.size)
        if span is None:
            return None, 200, []
        return span, 206, [("Content-Range", f"bytes {span[0]}-{span[1]}/{info.size}")]

    async def _delete_object(self, request: _Request) -> _Response:
        await self._in_thread(self.store.delete_object, request.bucket, request.key)
        return _Response(204)

    async def _open_copy_source(self, request: _Request) -> tuple[IO[bytes], ObjectInfo, str, str]:
        source_bucket, source_key = _copy_source(request.headers["x-amz-copy-source"])
        handle, info = await self._in_thread(self.store.open_object, source_bucket, source_key)
        try:
            _read_conditions(request.headers, info, prefix="x-amz-copy-source-")
        except BaseException:
            await to_thread.run_sync(handle.close)
            raise
        return handle, info, source_bucket, source_key

    async def _copy_object(self, request: _Request) -> _Response:
        self.store.object_path(request.bucket, request.key)
        await self._in_thread(self.store.require_bucket, request.bucket)
        directive = request.headers.get("x-amz-metadata-directive", "COPY").upper()
        if directive not in ("COPY", "REPLACE"):
            raise _invalid_argument("Unknown metadata directive.")
        handle, info, source_bucket, source_key = await self._open_copy_source(request)
        try:
            if (source_bucket, _normalized_key(source_key)) == (
                request.bucket,
                _normalized_key(request.key),
            ) and (directive == "COPY"):
                raise S3Error(
                    400,
                    "InvalidRequest",
                    "This copy request is illegal because it is trying to copy an object to itself without changing "
                    "the object's metadata, storage class, website redirect location or encryption attributes.",
                )
            staged, md5_hex = await self._in_thread(self.store.copy_to_staging, handle, 0, info.size)
        finally:
            await to_thread.run_sync(handle.close)
        try:
            record = (
                _object_record_from_headers(request.headers)
                if directive == "REPLACE"
                else _copied(info.record)
            )
            record.etag = f'"{md5_hex}"'
            record.checksums = dict(info.record.checksums)
            copied: ObjectInfo = await self._in_thread(
                self.store.commit, request.bucket, request.key, staged, record
            )
        finally:
            staged.unlink(missing_ok=True)
        root = _xml_root("CopyObjectResult")
        _child(root, "LastModified", _iso_date(copied.modified))
        _child(root, "ETag", copied.record.etag)
        return _xml_response(root)

    # -- multipart uploads ---------------------------------------------------------------------------
    async def _create_upload(self, request: _Request) -> _Response:
        template = _object_record_from_headers(request.headers)
        algorithm = request.headers.get("x-amz-checksum-algorithm")
        upload_id = await self._in_thread(
            self.store.create_upload,
            request.bucket,
            request.key,
            template,
            algorithm.lower() if algorithm else None,
        )
        root = _xml_root("InitiateMultipartUploadResult")
        _child(root, "Bucket", request.bucket)
        _child(root, "Key", request.key)
        _child(root, "UploadId", upload_id)
        headers = []
        if algorithm:
            headers.append(("x-amz-checksum-algorithm", algorithm.upper()))
            headers.append(
                ("x-amz-checksum-type", request.headers.get("x-amz-checksum-type", "COMPOSITE").upper())
            )
        return _xml_response(root, headers=headers)

    async def _upload_part(self, request: _Request) -> _Response:
        number = _part_number(request.query.get("partNumber"))
        folder, _manifest = await self._in_thread(
            self.store.upload_folder, request.bucket, request.key, request.query["uploadId"]
        )
        staged = self.store.staging_file()
        try:
            received = await _receive_to_file(request, staged)
            checksums = {received.checksum[0]: received.checksum[1]} if received.checksum else {}
            etag = f'"{received.md5_hex}"'
            await self._in_thread(self.store.store_part, folder, number, staged, etag, checksums)
        finally:
            staged.unlink(missing_ok=True)
        return _Response(200, [("ETag", etag), *_checksum_headers(received.checksum)[:1]])

    async def _upload_part_copy(self, request: _Request) -> _Response:
        number = _part_number(request.query.get("partNumber"))
        folder, _manifest = await self._in_thread(
            self.store.upload_folder, request.bucket, request.key, request.query["uploadId"]
        )
        handle, info, _bucket, _key = await self._open_copy_source(request)
        try:
            span = _copy_source_range(request.headers.get("x-amz-copy-source-range"), info.size)
            start, last = span if span is not None else (0, info.size - 1)
            staged, md5_hex = await self._in_thread(
                self.store.copy_to_staging, handle, start, last - start + 1
            )
        finally:
            await to_thread.run_sync(handle.close)
        try:
            part: PartInfo = await self._in_thread(
                self.store.store_part, folder, number, staged, f'"{md5_hex}"', {}
            )
        finally:
            staged.unlink(missing_ok=True)
        root = _xml_root("CopyPartResult")
        _child(root, "LastModified", _iso_date(part.modified))
        _child(root, "ETag", part.etag)
        return _xml_response(root)

    async def _complete_upload(self, request: _Request) -> _Response:
        document = _parse_xml(await _receive_small(request))
        if _local_name(document.tag) != "CompleteMultipartUpload":
            raise _malformed_xml()
        requested = [_requested_part(item) for item in _children(document, "Part")]
        conditions = _write_conditions(request.headers)
        info: ObjectInfo = await self._in_thread(
            self.store.complete_upload,
            request.bucket,
            request.key,
            request.query["uploadId"],
            requested,
            conditions,
        )
        root = _xml_root("CompleteMultipartUploadResult")
        _child(root, "Location", request.location())
        _child(root, "Bucket", request.bucket)
        _child(root, "Key", request.key)
        _child(root, "ETag", info.record.etag)
        return _xml_response(root)

    async def _abort_upload(self, request: _Request) -> _Response:
        await self._in_thread(self.store.abort_upload, request.bucket, request.key, request.query["uploadId"])
        return _Response(204)

    async def _list_parts(self, request: _Request) -> _Response:
        upload_id = request.query["uploadId"]
        folder, manifest = await self._in_thread(
            self.store.upload_folder, request.bucket, request.key, upload_id
        )
        parts: list[PartInfo] = await self._in_thread(self.store.list_parts, folder)
        marker = int(request.query.get("part-number-marker") or 0)
        limit = _max_keys(request.query, "max-parts", MAX_KEYS)
        remaining = [part for part in parts if part.number > marker]
        page = remaining[:limit]
        root = _xml_root("ListPartsResult")
        for tag, text in (("Bucket", request.bucket), ("Key", request.key), ("UploadId", upload_id)):
            _child(root, tag, text)
        _child(root, "PartNumberMarker", marker)
        _child(root, "NextPartNumberMarker", page[-1].number if page else marker)
        _child(root, "MaxParts", limit)
        _child(root, "IsTruncated", "true" if len(remaining) > limit else "false")
        for part in page:
            element = _child(root, "Part")
            _child(element, "PartNumber", part.number)
            _child(element, "LastModified", _iso_date(part.modified))
            _child(element, "ETag", part.etag)
            _child(element, "Size", part.size)
        _add_owner(root, "Initiator", self.account_id)
        _add_owner(root, "Owner", self.account_id)
        _child(root, "StorageClass", "STANDARD")
        if manifest.get("algorithm"):
            _child(root, "ChecksumAlgorithm", str(manifest["algorithm"]).upper())
        return _xml_response(root)


def _write_conditions(headers: dict[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in ("if-none-match", "if-match") if name in headers}


def _with_overrides(headers: list[tuple[str, str]], query: dict[str, str]) -> list[tuple[str, str]]:
    """GetObject's ``response-content-type`` & co. replace the stored headers (presigned downloads)."""
    overrides = {
        RESPONSE_OVERRIDES[name]: value for name, value in query.items() if name in RESPONSE_OVERRIDES
    }
    kept = [(name, value) for name, value in headers if name.lower() not in overrides]
    return kept + list(overrides.items())


def _copied(record: ObjectRecord) -> ObjectRecord:
    return ObjectRecord(
        etag=record.etag,
        content_type=record.content_type,
        metadata=dict(record.metadata),
        headers=dict(record.headers),
    )


def _copy_source_range(header: str | None, size: int) -> tuple[int, int] | None:
    if header is None:
        return None
    match = re.fullmatch(r"bytes=(\d+)-(\d+)", header.strip())
    if match is None or int(match.group(2)) < int(match.group(1)) or int(match.group(2)) >= size:
        raise _invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are "
            "the zero-based offsets of the first and last bytes to copy"
        )
    return int(match.group(1)), int(match.group(2))


def _requested_part(element: ET.Element) -> tuple[int, str, dict[str, str]]:
    number_text, etag = _child_text(element, "PartNumber"), _child_text(element, "ETag")
    if number_text is None or etag is None:
        raise _malformed_xml()
    try:
        number = int(number_text)
    except ValueError as exc:
        raise _malformed_xml() from exc
    checksums = {}
    for child in element:
        name = _local_name(child.tag)
        if name.startswith("Checksum") and child.text:
            checksums[name[len("Checksum") :].lower()] = child.text.strip()
    return number, etag, checksums


def _error(err: S3Error, request_id: str) -> _Response:
    status, headers, body = error_response(REST_XML, err.status, err.code, err.message, request_id=request_id)
    decoded = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
    kept = [
        (name, value) for name, value in decoded if name.lower() not in ("content-length", "x-amz-request-id")
    ]
    return _Response(status, kept + err.headers, body)


async def _send(send: Send, response: _Response, request_id: str, head: bool) -> None:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    if response.status not in (204, 304):
        length = response.length if response.length is not None else len(response.body)
        headers.append((b"content-length", str(length).encode()))
    headers.append((b"x-amz-request-id", request_id.encode()))
    headers.append((b"x-amz-id-2", base64.b64encode(uuid.uuid4().bytes).decode().encode()))
    stream = response.stream
    try:
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if stream is None or head:
            body = b"" if head or response.status in (204, 304) else response.body
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        async for block in stream:
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if stream is not None:
            await stream.aclose()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_s3_app(platform: Platform) -> ASGIApp:
    """The S3 REST-XML subset over ``platform``'s artifact folder, as an ASGI application."""
    return S3App(platform)
