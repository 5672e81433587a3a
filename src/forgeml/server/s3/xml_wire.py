"""S3's wire format: XML documents built and parsed, dates in S3's two spellings, error bodies."""

from __future__ import annotations

import email.utils
import hashlib
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from forgeml.server.errors import REST_XML, error_response
from forgeml.server.s3.constants import S3_NAMESPACE
from forgeml.server.s3.errors import S3Error, _malformed_xml
from forgeml.server.s3.messages import _Response


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


def _xml_response(
    root: ET.Element, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> _Response:
    return _Response(status, [("Content-Type", "application/xml"), *(headers or [])], _xml_bytes(root))


def _error(err: S3Error, request_id: str) -> _Response:
    status, headers, body = error_response(REST_XML, err.status, err.code, err.message, request_id=request_id)
    decoded = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
    kept = [
        (name, value) for name, value in decoded if name.lower() not in ("content-length", "x-amz-request-id")
    ]
    return _Response(status, kept + err.headers, body)
