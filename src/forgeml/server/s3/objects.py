"""Object operations: PutObject, GetObject/HeadObject (ranges, parts, conditions, response
overrides), DeleteObject and CopyObject, with the header rules they share.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncGenerator
from typing import IO
from urllib.parse import unquote

from anyio import to_thread

from forgeml.server.s3.bodies import _receive_small, _receive_to_file
from forgeml.server.s3.constants import (
    CHECKSUM_HEADER_PREFIX,
    DEFAULT_CONTENT_TYPE,
    IO_BLOCK,
    MAX_METADATA_BYTES,
    MAX_PART_NUMBER,
    RESPONSE_OVERRIDES,
    STORED_HEADERS,
)
from forgeml.server.s3.errors import S3Error, _invalid_argument, _invalid_range, _precondition_failed
from forgeml.server.s3.handler_base import S3Handlers
from forgeml.server.s3.messages import _Request, _Response
from forgeml.server.s3.records import ObjectInfo, ObjectRecord, _etag_matches, _normalized_key
from forgeml.server.s3.xml_wire import (
    _child,
    _http_date,
    _iso_date,
    _parse_http_date,
    _xml_response,
    _xml_root,
)


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


def _checksum_headers(checksum: tuple[str, str] | None) -> list[tuple[str, str]]:
    if checksum is None:
        return []
    return [(CHECKSUM_HEADER_PREFIX + checksum[0], checksum[1]), ("x-amz-checksum-type", "FULL_OBJECT")]


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


class ObjectHandlers(S3Handlers):
    """The operations on one object."""

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
