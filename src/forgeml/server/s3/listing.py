"""ListObjects (v1 and v2): the key-ordered walk over a bucket folder, delimiters rolled up into
CommonPrefixes, markers and continuation tokens, and the ListBucketResult documents.
"""

from __future__ import annotations

import base64
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

from forgeml.server.s3.constants import MAX_KEYS
from forgeml.server.s3.errors import _invalid_argument
from forgeml.server.s3.handler_base import S3Handlers
from forgeml.server.s3.messages import _Request, _Response
from forgeml.server.s3.records import ObjectInfo
from forgeml.server.s3.xml_wire import _add_owner, _child, _iso_date, _xml_response, _xml_root


@dataclass(frozen=True)
class ListingPage:
    objects: list[ObjectInfo]
    prefixes: list[str]
    truncated: bool
    last: str | None


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


class ListingHandlers(S3Handlers):
    """The ListObjects and ListObjectsV2 operations."""

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
