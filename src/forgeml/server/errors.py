"""Which AWS protocol a request speaks, and error answers in that protocol's own shape.

Every part of the server (authentication, the SageMaker JSON API, CloudWatch, the runtime, S3, STS)
refuses a request the way the AWS service it imitates would, so botocore parses the refusal into the
usual ``ClientError`` with the right ``Error.Code``.  The protocol is decided from the request line and
headers alone, before the body is read, because the auth middleware must be able to answer early.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape

import cbor2

JSON = "json"
REST_JSON = "rest-json"
QUERY = "query"
REST_XML = "rest-xml"
RPC_V2_CBOR = "rpc-v2-cbor"
#: JSON 1.0 from a client of a query-era service (``x-amzn-query-mode: true``: CloudWatch), which reads its
#: error code from ``x-amzn-query-error``
JSON_QUERY = "json-query"
PROTOCOLS = (JSON, REST_JSON, QUERY, REST_XML, RPC_V2_CBOR, JSON_QUERY)

#: Smithy RPC v2 CBOR's header, on requests and answers alike
SMITHY_PROTOCOL_HEADER = b"smithy-protocol"
QUERY_MODE_HEADER = b"x-amzn-query-mode"
QUERY_ERROR_HEADER = b"x-amzn-query-error"
CBOR_CONTENT_TYPE = b"application/cbor"
#: query-compatible services (CloudWatch) answer their query-era codes in ``x-amzn-query-error``, and
#: botocore reports that code: JSON-era code -> query-era code (others are the same in both)
QUERY_COMPATIBLE_CODES = {
    "ValidationException": "ValidationError",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "IncompleteSignatureException": "IncompleteSignature",
}

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

Headers = list[tuple[bytes, bytes]]


class ClientGone(Exception):
    """The client disconnected before its whole body arrived: nothing is stored and no one is answered."""


class PayloadHashMismatch(Exception):
    """A streamed body's SHA-256 differs from the ``x-amz-content-sha256`` the client signed.

    The auth middleware raises it from the ``receive`` it hands the S3 app, when the last chunk
    arrives; the S3 app catches it, stores nothing and answers ``XAmzContentSHA256Mismatch`` (400).
    """

    code = "XAmzContentSHA256Mismatch"
    status = 400

    def __init__(self, claimed: str, computed: str) -> None:
        super().__init__("The provided 'x-amz-content-sha256' header does not match what was computed.")
        self.message = str(self.args[0])
        self.claimed = claimed
        self.computed = computed


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of a (lower-case) header in ASGI's list form, decoded as Latin-1."""
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _query_has_action(query_string: bytes) -> bool:
    return any(pair.split(b"=", 1)[0] == b"Action" for pair in query_string.split(b"&"))


def _is_runtime_path(path: str) -> bool:
    """``/endpoints/{name}/invocations`` (and the runtime's other per-endpoint operations)."""
    parts = path.split("/")
    return len(parts) >= 4 and parts[0] == "" and parts[1] == "endpoints" and parts[2] != ""


def _signed_for_s3(headers: Iterable[tuple[bytes, bytes]], query_string: bytes) -> bool:
    """A header-signed or presigned request whose credential scope names the ``s3`` service."""
    authorization = header_value(headers, b"authorization") or ""
    return "/s3/aws4_request" in authorization or b"%2Fs3%2Faws4_request" in query_string


def protocol_of(scope: Mapping[str, Any]) -> str:
    """One of ``PROTOCOLS``: how this request expects to be answered.

    JSON services name the operation in ``X-Amz-Target`` (``json-query`` when the client also says
    ``x-amzn-query-mode: true``, as botocore does for CloudWatch); Smithy RPC v2 CBOR requests carry
    ``smithy-protocol: rpc-v2-cbor``; the SageMaker runtime lives under ``/endpoints/``; STS's
    query protocol posts a form to ``/`` (or puts ``Action=`` in the query); everything else is S3's
    REST-XML.  A request signed for the ``s3`` service is always S3, so a bucket called ``endpoints``
    still gets S3 answers.
    """
    headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
    if header_value(headers, b"x-amz-target") is not None:
        query_mode = (header_value(headers, QUERY_MODE_HEADER) or "").strip().lower() == "true"
        return JSON_QUERY if query_mode else JSON
    query_string = bytes(scope.get("query_string") or b"")
    if _signed_for_s3(headers, query_string):
        return REST_XML
    if header_value(headers, SMITHY_PROTOCOL_HEADER) is not None:
        return RPC_V2_CBOR
    path = str(scope.get("path") or "/")
    method = str(scope.get("method") or "GET").upper()
    if method == "POST" and _is_runtime_path(path):
        return REST_JSON
    if path == "/":
        content_type = (header_value(headers, b"content-type") or "").split(";")[0].strip().lower()
        if method == "POST" and content_type == FORM_CONTENT_TYPE:
            return QUERY
        if _query_has_action(query_string):
            return QUERY
    return REST_XML


def new_request_id() -> str:
    return str(uuid.uuid4())


def _json_error(status: int, code: str, message: str, request_id: str,
                content_type: bytes) -> tuple[int, Headers, bytes]:
    body = json.dumps({"__type": code, "message": message}).encode()
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
               (b"x-amzn-errortype", code.encode()), (b"x-amzn-requestid", request_id.encode())]
    return status, headers, body


def _rest_xml_error(status: int, code: str, message: str, request_id: str) -> tuple[int, Headers, bytes]:
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{escape(request_id)}</RequestId></Error>").encode()
    headers = [(b"content-type", b"application/xml"), (b"content-length", str(len(body)).encode()),
               (b"x-amz-request-id", request_id.encode())]
    return status, headers, body


def _query_error(status: int, code: str, message: str, request_id: str) -> tuple[int, Headers, bytes]:
    fault = "Sender" if status < 500 else "Receiver"
    body = (f'<ErrorResponse xmlns="{STS_NAMESPACE}"><Error><Type>{fault}</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{escape(request_id)}</RequestId>"
            "</ErrorResponse>").encode()
    headers = [(b"content-type", b"text/xml"), (b"content-length", str(len(body)).encode()),
               (b"x-amzn-requestid", request_id.encode())]
    return status, headers, body


def query_error_header(status: int, code: str) -> tuple[bytes, bytes]:
    """``x-amzn-query-error: <query-era code>;Sender`` (``Receiver`` for 5xx)."""
    fault = "Sender" if status < 500 else "Receiver"
    return QUERY_ERROR_HEADER, f"{QUERY_COMPATIBLE_CODES.get(code, code)};{fault}".encode()


def _cbor_error(status: int, code: str, message: str, request_id: str) -> tuple[int, Headers, bytes]:
    """The only RPC v2 CBOR service served (CloudWatch) is query-compatible: the query code always goes along."""
    body = cbor2.dumps({"__type": code, "message": message})
    headers = [(b"content-type", CBOR_CONTENT_TYPE), (b"content-length", str(len(body)).encode()),
               (SMITHY_PROTOCOL_HEADER, b"rpc-v2-cbor"), (b"x-amzn-requestid", request_id.encode()),
               query_error_header(status, code)]
    return status, headers, body


def error_response(protocol: str, status: int, code: str, message: str, *,
                   request_id: str | None = None) -> tuple[int, Headers, bytes]:
    """The status, headers and body of an AWS error answer in ``protocol``'s shape.

    json: ``{"__type", "message"}`` as ``application/x-amz-json-1.1``; rest-json: the same body as
    ``application/json``; both also carry ``x-amzn-ErrorType``.  rest-xml: S3's ``<Error>``
    document.  query: STS's ``<ErrorResponse>`` with ``Type`` Sender (4xx) or Receiver (5xx).
    rpc-v2-cbor: the ``{"__type", "message"}`` map in CBOR with ``smithy-protocol: rpc-v2-cbor``;
    json-query: the json answer as ``application/x-amz-json-1.0``; both also carry
    ``x-amzn-query-error: <query-era code>;Sender|Receiver`` for the query-compatible CloudWatch.
    """
    request_id = request_id or new_request_id()
    if protocol == RPC_V2_CBOR:
        return _cbor_error(status, code, message, request_id)
    if protocol == JSON_QUERY:
        status, headers, body = _json_error(status, code, message, request_id, b"application/x-amz-json-1.0")
        return status, [*headers, query_error_header(status, code)], body
    if protocol == JSON:
        return _json_error(status, code, message, request_id, b"application/x-amz-json-1.1")
    if protocol == REST_JSON:
        return _json_error(status, code, message, request_id, b"application/json")
    if protocol == QUERY:
        return _query_error(status, code, message, request_id)
    if protocol == REST_XML:
        return _rest_xml_error(status, code, message, request_id)
    raise ValueError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


async def send_error(send: Any, protocol: str, status: int, code: str, message: str, *,
                     head: bool = False, close: bool = False) -> None:
    """Answer an ASGI request with an AWS error (no body for HEAD, as S3 does).

    ``close`` ends the connection after the answer: needed when the request's body was never read
    (a client waiting on ``Expect: 100-continue`` never sends it, and the connection cannot carry
    another request).
    """
    status, headers, body = error_response(protocol, status, code, message)
    if close:
        headers = [*headers, (b"connection", b"close")]
    if head:
        headers = [(name, b"0" if name == b"content-length" else value) for name, value in headers]
        body = b""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
