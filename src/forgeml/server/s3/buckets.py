"""Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
GetBucketVersioning and DeleteObjects.
"""

from __future__ import annotations

from forgeml.server.s3.bodies import _receive_small
from forgeml.server.s3.constants import MAX_DELETE_KEYS
from forgeml.server.s3.errors import S3Error, _invalid_argument, _malformed_xml
from forgeml.server.s3.handler_base import S3Handlers
from forgeml.server.s3.listing import _decode_token, _encode_token, _max_keys
from forgeml.server.s3.messages import _Request, _Response
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


class BucketHandlers(S3Handlers):
    """The operations on a bucket as a whole."""

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
