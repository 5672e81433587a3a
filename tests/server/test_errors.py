"""server.errors: which protocol a request speaks, and AWS error answers botocore parses back."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from botocore import parsers

from forgeml.server.errors import PayloadHashMismatch, error_response, protocol_of, send_error


def scope(method: str = "POST", path: str = "/", headers: dict[str, str] | None = None,
          query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "query_string": query,
            "headers": [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]}


S3_AUTH = "AWS4-HMAC-SHA256 Credential=AKIAAAAAAAAAAAAAAAAA/20240101/us-east-1/s3/aws4_request, " \
          "SignedHeaders=host, Signature=00"


@pytest.mark.parametrize(("request_scope", "protocol"), [
    (scope(headers={"X-Amz-Target": "SageMaker.ListTrainingJobs"}), "json"),
    (scope(headers={"X-Amz-Target": "Logs_20140328.GetLogEvents"}), "json"),
    (scope(path="/endpoints/my-endpoint/invocations", headers={"Content-Type": "text/csv"}), "rest-json"),
    (scope(headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}), "query"),
    (scope(method="GET", query=b"Action=GetCallerIdentity&Version=2011-06-15"), "query"),
    (scope(method="GET", path="/"), "rest-xml"),
    (scope(method="PUT", path="/bucket/key.csv"), "rest-xml"),
    (scope(method="GET", path="/endpoints/key"), "rest-xml"),
    (scope(path="/bucket/key", query=b"uploads"), "rest-xml"),
    # a bucket named "endpoints": the s3 credential scope decides
    (scope(path="/endpoints/x/invocations", headers={"Authorization": S3_AUTH}, query=b"uploads"), "rest-xml"),
    (scope(method="GET", path="/endpoints/x/invocations",
           query=b"X-Amz-Credential=AKIA%2F20240101%2Fus-east-1%2Fs3%2Faws4_request"), "rest-xml"),
])
def test_protocol_of_each_request_shape(request_scope: dict[str, Any], protocol: str) -> None:
    assert protocol_of(request_scope) == protocol


def parse_with_botocore(protocol: str, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> dict[str, Any]:
    """What a boto3 client would report: botocore's own parser for that protocol."""
    response = {"status_code": status, "body": body,
                "headers": {name.decode(): value.decode() for name, value in headers}}
    parsed: dict[str, Any] = parsers.create_parser(protocol).parse(response, None)
    return parsed


def test_json_error_shape_and_botocore_reads_it() -> None:
    status, headers, body = error_response("json", 400, "ValidationException", "Value 'x' at 'a' failed")
    header_map = dict(headers)
    assert status == 400
    assert header_map[b"content-type"] == b"application/x-amz-json-1.1"
    assert header_map[b"x-amzn-errortype"] == b"ValidationException"
    assert header_map[b"content-length"] == str(len(body)).encode()
    assert json.loads(body) == {"__type": "ValidationException", "message": "Value 'x' at 'a' failed"}
    error = parse_with_botocore("json", status, headers, body)["Error"]
    assert (error["Code"], error["Message"]) == ("ValidationException", "Value 'x' at 'a' failed")


def test_rest_json_error_shape_and_botocore_reads_it() -> None:
    status, headers, body = error_response("rest-json", 403, "UnrecognizedClientException", "bad token")
    header_map = dict(headers)
    assert header_map[b"content-type"] == b"application/json"
    assert json.loads(body) == {"__type": "UnrecognizedClientException", "message": "bad token"}
    parsed = parse_with_botocore("rest-json", status, headers, body)
    assert parsed["Error"]["Code"] == "UnrecognizedClientException"
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_rest_xml_error_shape_escapes_and_botocore_reads_it() -> None:
    status, headers, body = error_response("rest-xml", 404, "NoSuchKey", "key <a&b> is missing",
                                           request_id="req-1")
    root = ET.fromstring(body)
    assert root.tag == "Error"
    assert [child.tag for child in root] == ["Code", "Message", "RequestId"]
    assert (root.findtext("Code"), root.findtext("Message"), root.findtext("RequestId")) == \
        ("NoSuchKey", "key <a&b> is missing", "req-1")
    assert dict(headers)[b"x-amz-request-id"] == b"req-1"
    error = parse_with_botocore("rest-xml", status, headers, body)["Error"]
    assert (error["Code"], error["Message"]) == ("NoSuchKey", "key <a&b> is missing")


@pytest.mark.parametrize(("status", "fault"), [(403, "Sender"), (503, "Receiver")])
def test_query_error_shape_and_botocore_reads_it(status: int, fault: str) -> None:
    status, headers, body = error_response("query", status, "InvalidClientTokenId", "bad token")
    namespace = "{https://sts.amazonaws.com/doc/2011-06-15/}"
    root = ET.fromstring(body)
    assert root.tag == f"{namespace}ErrorResponse"
    assert root.findtext(f"{namespace}Error/{namespace}Type") == fault
    assert root.findtext(f"{namespace}Error/{namespace}Code") == "InvalidClientTokenId"
    assert root.findtext(f"{namespace}RequestId")
    error = parse_with_botocore("query", status, headers, body)["Error"]
    assert (error["Code"], error["Message"], error["Type"]) == ("InvalidClientTokenId", "bad token", fault)


def test_each_error_gets_a_fresh_request_id() -> None:
    ids = {dict(error_response("json", 400, "A", "m")[1])[b"x-amzn-requestid"] for _ in range(3)}
    assert len(ids) == 3


def test_unknown_protocol_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown protocol 'soap'"):
        error_response("soap", 400, "X", "y")


@pytest.mark.parametrize("head", [False, True])
def test_send_error_sends_one_complete_response(head: bool) -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(send_error(send, "rest-xml", 403, "AccessDenied", "Access Denied", head=head))
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 403
    assert sent[1]["more_body"] is False
    length = dict(sent[0]["headers"])[b"content-length"]
    if head:
        assert sent[1]["body"] == b"" and length == b"0"
    else:
        assert ET.fromstring(sent[1]["body"]).findtext("Code") == "AccessDenied"
        assert length == str(len(sent[1]["body"])).encode()


def test_payload_hash_mismatch_carries_both_digests() -> None:
    mismatch = PayloadHashMismatch("a" * 64, "b" * 64)
    assert (mismatch.code, mismatch.status) == ("XAmzContentSHA256Mismatch", 400)
    assert (mismatch.claimed, mismatch.computed) == ("a" * 64, "b" * 64)
    assert mismatch.message == "The provided 'x-amz-content-sha256' header does not match what was computed."
