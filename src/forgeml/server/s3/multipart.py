"""Multipart uploads: CreateMultipartUpload, UploadPart(Copy), CompleteMultipartUpload, ListParts and
AbortMultipartUpload, with S3's rules on part numbers, ranges and the completed part list.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from anyio import to_thread

from forgeml.server.s3.bodies import _receive_small, _receive_to_file
from forgeml.server.s3.constants import MAX_KEYS, MIN_PART_SIZE
from forgeml.server.s3.errors import S3Error, _invalid_argument, _malformed_xml
from forgeml.server.s3.listing import _max_keys
from forgeml.server.s3.messages import _Request, _Response
from forgeml.server.s3.objects import (
    ObjectHandlers,
    _checksum_headers,
    _object_record_from_headers,
    _part_number,
    _write_conditions,
)
from forgeml.server.s3.records import ObjectInfo, PartInfo, _unquoted_etag
from forgeml.server.s3.xml_wire import (
    _add_owner,
    _child,
    _child_text,
    _children,
    _iso_date,
    _local_name,
    _parse_xml,
    _xml_response,
    _xml_root,
)


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


class MultipartHandlers(ObjectHandlers):
    """The multipart upload operations (UploadPartCopy reads its source as CopyObject does)."""

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
