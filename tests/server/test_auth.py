"""Signed-request authentication: the key store, SigV4 verification against botocore's real signer,
the ASGI middleware (buffered and streamed S3 bodies) and ``forgeml keys``."""

from __future__ import annotations

import argparse
import asyncio
import configparser
import hashlib
import json
import multiprocessing
import re
import stat
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import httpx
import pytest
import uvicorn
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from forgeml.cli.keys import add_keys_parser
from forgeml.config import Config
from forgeml.errors import ResourceNotFound
from forgeml.server.auth import AuthError, AuthMiddleware, KeyStore, SigV4Verifier
from forgeml.server.errors import PayloadHashMismatch, protocol_of
from forgeml.serving.worker import bind_socket, socket_url

HOST = "testserver"
BASE = f"http://{HOST}"


@pytest.fixture
def store(forgeml_home: Path) -> KeyStore:
    return KeyStore(Config.from_env())


@pytest.fixture
def pair(store: KeyStore) -> tuple[str, str]:
    return store.ensure_default()


@pytest.fixture
def verifier(store: KeyStore) -> SigV4Verifier:
    return SigV4Verifier(store)


# -- signing with botocore's own signer --------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """A request as the server receives it: what ``verify`` takes."""

    method: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> str:
        return dict(self.headers)[name.encode()].decode()

    def with_header(self, name: str, value: str) -> Wire:
        kept = [(key, old) for key, old in self.headers if key != name.encode()]
        return replace(self, headers=[*kept, (name.encode(), value.encode())])


def sign(method: str, url: str, pair: tuple[str, str], *, body: bytes = b"", headers: dict[str, str] | None = None,
         service: str = "sagemaker", region: str = "us-east-1", s3: bool = False) -> Wire:
    request = AWSRequest(method, url, data=body, headers=dict(headers or {}))
    signer = S3SigV4Auth if s3 else SigV4Auth
    signer(Credentials(*pair), service, region).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    wire_headers = [(b"host", parts.netloc.encode())]
    for name, value in prepared.headers.items():
        wire_headers.append((name.lower().encode(), value if isinstance(value, bytes) else value.encode()))
    return Wire(method, parts.path.encode(), parts.query.encode(), wire_headers, body)


def json_request(pair: tuple[str, str], **options: Any) -> Wire:
    return sign("POST", f"{BASE}/", pair, body=b'{"MaxResults": 10}', headers={
        "X-Amz-Target": "SageMaker.ListTrainingJobs", "Content-Type": "application/x-amz-json-1.1"}, **options)


def s3_request(pair: tuple[str, str], body: bytes = b"a,b\n1,2\n", **options: Any) -> Wire:
    return sign("PUT", f"{BASE}/bucket/data/train%20set/part~1.csv?x-id=PutObject", pair, body=body,
                headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}, service="s3", s3=True, **options)


def sts_request(pair: tuple[str, str]) -> Wire:
    return sign("POST", f"{BASE}/", pair, body=b"Action=GetCallerIdentity&Version=2011-06-15", service="sts",
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})


def runtime_request(pair: tuple[str, str], name: str = "ufo-endpoint") -> Wire:
    return sign("POST", f"{BASE}/endpoints/{name}/invocations", pair, body=b"45.0,1,2",
                headers={"Content-Type": "text/csv", "Accept": "application/json"})


def verify(verifier: SigV4Verifier, wire: Wire, *, streamed: bool = False) -> str:
    return verifier.verify(wire.method, wire.raw_path, wire.query, wire.headers, None if streamed else wire.body)


def refused(verifier: SigV4Verifier, wire: Wire, *, streamed: bool = False) -> AuthError:
    with pytest.raises(AuthError) as caught:
        verify(verifier, wire, streamed=streamed)
    return caught.value


# -- KeyStore ----------------------------------------------------------------------------------


def test_ensure_default_writes_private_keys_and_a_credentials_profile(store: KeyStore, forgeml_home: Path) -> None:
    access_key_id, secret = store.ensure_default()
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", access_key_id)
    assert len(secret) == 40 and re.fullmatch(r"[A-Za-z0-9+/]{40}", secret)
    for name in ("keys.json", "credentials"):
        assert stat.S_IMODE((forgeml_home / name).stat().st_mode) == 0o600, name
    stored = json.loads((forgeml_home / "keys.json").read_text())
    assert stored["default"] == access_key_id
    assert [(key["AccessKeyId"], key["SecretAccessKey"], key["Status"]) for key in stored["keys"]] == \
        [(access_key_id, secret, "Active")]
    ini = configparser.ConfigParser()
    ini.read(forgeml_home / "credentials")
    assert ini.sections() == ["forgeml"]
    assert dict(ini["forgeml"]) == {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret}
    assert store.ensure_default() == (access_key_id, secret)
    assert KeyStore(Config.from_env()).ensure_default() == (access_key_id, secret)
    assert len(store.list()) == 1


def test_boto3_session_reads_the_forgeml_profile(store: KeyStore, forgeml_home: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    access_key_id, secret = store.ensure_default()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(forgeml_home / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(forgeml_home / "no-config"))
    credentials = boto3.Session(profile_name="forgeml").get_credentials()
    assert credentials is not None
    frozen = credentials.get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key) == (access_key_id, secret)


def test_create_list_and_revoke(store: KeyStore, verifier: SigV4Verifier) -> None:
    default = store.ensure_default()
    extra = store.create()
    assert extra[0] != default[0] and re.fullmatch(r"AKIA[A-Z0-9]{16}", extra[0])
    listed = store.list()
    assert [(key["AccessKeyId"], key["Status"], key["Default"]) for key in listed] == \
        [(default[0], "Active", True), (extra[0], "Active", False)]
    assert all(set(key) == {"AccessKeyId", "Status", "CreateDate", "Default"} for key in listed)
    assert abs(listed[1]["CreateDate"].timestamp() - time.time()) < 300
    assert store.secret_for(extra[0]) == extra[1]
    assert verify(verifier, json_request(extra)) == extra[0]

    store.revoke(extra[0])
    store.revoke(extra[0])
    assert store.secret_for(extra[0]) is None
    assert [key["Status"] for key in store.list()] == ["Active", "Inactive"]
    assert refused(verifier, json_request(extra)).code == "UnrecognizedClientException"
    with pytest.raises(ResourceNotFound, match="AKIANOSUCHKEY0000000 cannot be found"):
        store.revoke("AKIANOSUCHKEY0000000")


def test_a_revoke_from_another_process_reaches_a_running_verifier(store: KeyStore, pair: tuple[str, str],
                                                                  verifier: SigV4Verifier) -> None:
    assert verify(verifier, json_request(pair)) == pair[0]
    KeyStore(Config.from_env()).revoke(pair[0])
    assert refused(verifier, json_request(pair)).code == "UnrecognizedClientException"


def test_revoked_default_is_replaced_and_other_profiles_are_kept(store: KeyStore, forgeml_home: Path) -> None:
    first = store.ensure_default()
    with (forgeml_home / "credentials").open("a") as handle:
        handle.write("\n[team]\naws_access_key_id = AKIATEAM000000000000\naws_secret_access_key = abc\n")
    store.revoke(first[0])
    second = store.ensure_default()
    assert second != first and store.secret_for(second[0]) == second[1]
    ini = configparser.ConfigParser()
    ini.read(forgeml_home / "credentials")
    assert ini["forgeml"]["aws_access_key_id"] == second[0]
    assert ini["team"]["aws_access_key_id"] == "AKIATEAM000000000000"
    assert stat.S_IMODE((forgeml_home / "credentials").stat().st_mode) == 0o600


def test_a_deleted_credentials_file_is_rewritten_with_the_same_default(store: KeyStore, forgeml_home: Path) -> None:
    first = store.ensure_default()
    (forgeml_home / "credentials").unlink()
    assert store.ensure_default() == first
    assert f"aws_access_key_id = {first[0]}" in (forgeml_home / "credentials").read_text()


def _create_keys(home: str, count: int) -> None:
    store = KeyStore(Config.from_env(home))
    for _ in range(count):
        store.create()


def test_concurrent_creates_from_several_processes_lose_nothing(store: KeyStore, forgeml_home: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_create_keys, args=(str(forgeml_home), 5)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    ids = [key["AccessKeyId"] for key in store.list()]
    assert len(ids) == 15 and len(set(ids)) == 15
    assert not [path.name for path in forgeml_home.iterdir() if path.name.startswith(".keys.json.")]


# -- SigV4 verification ------------------------------------------------------------------------


@pytest.mark.parametrize("make", [json_request, s3_request, sts_request, runtime_request])
def test_botocore_signed_requests_of_every_shape_verify(make: Callable[[tuple[str, str]], Wire],
                                                        pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    assert verify(verifier, make(pair)) == pair[0]


@pytest.mark.parametrize(("service", "region"), [("logs", "eu-west-1"), ("monitoring", "ap-southeast-2"),
                                                 ("application-autoscaling", "us-west-2"),
                                                 ("sagemaker", "eu-central-1")])
def test_any_region_and_each_served_service(service: str, region: str, pair: tuple[str, str],
                                            verifier: SigV4Verifier) -> None:
    assert verify(verifier, json_request(pair, service=service, region=region)) == pair[0]


def test_a_service_forgeml_does_not_serve_is_refused(pair: tuple[str, str], verifier: SigV4Verifier,
                                                     store: KeyStore) -> None:
    error = refused(verifier, json_request(pair, service="dynamodb"))
    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    assert "got 'dynamodb'" in error.message
    assert verify(SigV4Verifier(store, services=None), json_request(pair, service="dynamodb")) == pair[0]


def test_non_s3_paths_are_double_encoded_and_s3_paths_are_not(pair: tuple[str, str],
                                                              verifier: SigV4Verifier) -> None:
    runtime = sign("POST", f"{BASE}/endpoints/a%3Ab/invocations", pair, body=b"1")
    assert verify(verifier, runtime) == pair[0]
    s3 = sign("GET", f"{BASE}/bucket/a%3Ab/c%20d", pair, service="s3", s3=True,
              headers={"X-Amz-Content-SHA256": hashlib.sha256(b"").hexdigest()})
    assert verify(verifier, s3) == pair[0]


def _other_second(stamp: str) -> str:
    """The same X-Amz-Date one second off within its minute (never the original, whatever its second)."""
    second = int(stamp[-3:-1])
    return f"{stamp[:-3]}{(second + 1) % 60:02d}Z"


TAMPERS: dict[str, Callable[[Wire], Wire]] = {
    "method": lambda wire: replace(wire, method="PUT"),
    "path": lambda wire: replace(wire, raw_path=wire.raw_path + b"x"),
    "query": lambda wire: replace(wire, query=b"MaxResults=11"),
    "signed header": lambda wire: wire.with_header("x-amz-target", "SageMaker.DeleteEndpoint"),
    "body": lambda wire: replace(wire, body=b'{"MaxResults": 11}'),
    "date": lambda wire: wire.with_header("x-amz-date", _other_second(wire.header("x-amz-date"))),
}


@pytest.mark.parametrize("part", sorted(TAMPERS))
def test_tampering_with_any_signed_part_is_refused(part: str, pair: tuple[str, str],
                                                   verifier: SigV4Verifier) -> None:
    wire = json_request(pair)
    tampered = TAMPERS[part](wire)
    assert tampered != wire
    error = refused(verifier, tampered)
    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    assert error.message.startswith("The request signature we calculated does not match")


def test_an_unsigned_header_may_change(pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    wire = json_request(pair).with_header("user-agent", "something else")
    assert verify(verifier, wire) == pair[0]


def test_s3_and_sts_use_their_own_codes_for_a_bad_signature(pair: tuple[str, str],
                                                           verifier: SigV4Verifier) -> None:
    s3 = s3_request(pair)
    error = refused(verifier, replace(s3, raw_path=b"/bucket/other.csv"))
    assert (error.code, error.status) == ("SignatureDoesNotMatch", 403)
    assert error.message == ("The request signature we calculated does not match the signature you provided. "
                             "Check your key and signing method.")
    sts = sts_request(pair)
    assert refused(verifier, replace(sts, body=b"Action=GetCallerIdentity&Version=2011-06-16")).code == \
        "SignatureDoesNotMatch"


def test_s3_body_differing_from_its_signed_hash(pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    wire = replace(s3_request(pair), body=b"tampered")
    error = refused(verifier, wire)
    assert (error.code, error.status) == ("XAmzContentSHA256Mismatch", 400)
    assert verify(verifier, wire, streamed=True) == pair[0]  # streamed: the middleware checks the body


@pytest.mark.parametrize(("make", "code"), [(json_request, "UnrecognizedClientException"),
                                            (runtime_request, "UnrecognizedClientException"),
                                            (s3_request, "InvalidAccessKeyId"),
                                            (sts_request, "InvalidClientTokenId")])
def test_unknown_key_id(make: Callable[[tuple[str, str]], Wire], code: str, pair: tuple[str, str],
                        verifier: SigV4Verifier) -> None:
    error = refused(verifier, make(("AKIAUNKNOWN000000000", pair[1])))
    assert (error.code, error.status) == (code, 403)


def test_wrong_secret(pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    assert refused(verifier, json_request((pair[0], "x" * 40))).code == "InvalidSignatureException"


@pytest.mark.parametrize(("make", "code", "message"), [
    (json_request, "MissingAuthenticationTokenException", "Request is missing Authentication Token"),
    (s3_request, "AccessDenied", "Access Denied"),
    (sts_request, "MissingAuthenticationToken", "Request is missing Authentication Token"),
])
def test_unsigned_requests(make: Callable[[tuple[str, str]], Wire], code: str, message: str, pair: tuple[str, str],
                           verifier: SigV4Verifier) -> None:
    wire = make(pair)
    unsigned = replace(wire, headers=[(name, value) for name, value in wire.headers if name != b"authorization"])
    error = refused(verifier, unsigned)
    assert (error.code, error.status, error.message) == (code, 403, message)


def _shifted(store: KeyStore, seconds: float) -> SigV4Verifier:
    """A verifier whose clock runs ``seconds`` ahead of the one botocore signed with."""
    return SigV4Verifier(store, clock=lambda: time.time() + seconds)


def test_a_request_16_minutes_old_is_expired_and_14_minutes_is_fine(store: KeyStore, pair: tuple[str, str]) -> None:
    wire = json_request(pair)
    error = refused(_shifted(store, 16 * 60), wire)
    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    signed_at = wire.header("x-amz-date")
    assert re.fullmatch(rf"Signature expired: {signed_at} is now earlier than \d{{8}}T\d{{6}}Z "
                        r"\(\d{8}T\d{6}Z - 15 min\.\)", error.message), error.message
    assert verify(_shifted(store, 14 * 60), wire) == pair[0]
    assert refused(_shifted(store, 16 * 60), s3_request(pair)).code == "RequestTimeTooSkewed"
    assert refused(_shifted(store, 16 * 60), sts_request(pair)).code == "SignatureDoesNotMatch"


def test_a_request_dated_16_minutes_ahead_is_refused(store: KeyStore, pair: tuple[str, str]) -> None:
    error = refused(_shifted(store, -16 * 60), json_request(pair))
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith(f"Signature not yet current: {json_request(pair).header('x-amz-date')[:8]}")
    assert "+ 15 min.)" in error.message
    assert refused(_shifted(store, -16 * 60), s3_request(pair)).code == "RequestTimeTooSkewed"


def test_streaming_s3_uploads_verify_from_headers(pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    # the plain signer keeps a preset x-amz-content-sha256 literal (the S3 signer would recompute it)
    for literal in ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "UNSIGNED-PAYLOAD"):
        wire = sign("PUT", f"{BASE}/bucket/big.bin?x-id=PutObject", pair, service="s3",
                    body=b"5\r\nhello\r\n0\r\n", headers={
                        "X-Amz-Content-SHA256": literal, "Content-Encoding": "aws-chunked",
                        "X-Amz-Decoded-Content-Length": "5", "X-Amz-Trailer": "x-amz-checksum-crc32"})
        assert wire.header("x-amz-content-sha256") == literal
        assert verify(verifier, wire, streamed=True) == pair[0]
        assert verify(verifier, wire) == pair[0]


def test_an_invalid_payload_hash_header_is_refused(pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    wire = sign("PUT", f"{BASE}/bucket/key", pair, service="s3", headers={"X-Amz-Content-SHA256": "nope"})
    error = refused(verifier, wire, streamed=True)
    assert (error.code, error.status) == ("InvalidArgument", 400)
    assert error.message.startswith("x-amz-content-sha256 must be UNSIGNED-PAYLOAD")


def test_malformed_and_unsupported_authorization(pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    wire = json_request(pair)
    no_signature = wire.with_header("authorization", wire.header("authorization").rsplit(",", 1)[0])
    error = refused(verifier, no_signature)
    assert (error.code, error.message) == ("IncompleteSignatureException",
                                           "Authorization header requires 'Signature' parameter.")
    version2 = s3_request(pair).with_header("authorization", f"AWS {pair[0]}:c2lnbmF0dXJl")
    error = refused(verifier, version2)
    assert (error.code, error.status) == ("InvalidRequest", 400)
    assert "Please use AWS4-HMAC-SHA256" in error.message


def test_presigned_s3_urls(store: KeyStore, pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    request = AWSRequest("GET", f"{BASE}/bucket/data/train.csv")
    S3SigV4QueryAuth(Credentials(*pair), "s3", "us-east-1", expires=120).add_auth(request)
    parts = urlsplit(request.prepare().url)
    wire = Wire("GET", parts.path.encode(), parts.query.encode(), [(b"host", HOST.encode())], b"")
    assert verify(verifier, wire, streamed=True) == pair[0]
    error = refused(_shifted(store, 121), wire, streamed=True)
    assert (error.code, error.message) == ("AccessDenied", "Request has expired")
    tampered = replace(wire, raw_path=b"/bucket/data/other.csv")
    assert refused(verifier, tampered, streamed=True).code == "SignatureDoesNotMatch"


# -- the ASGI middleware -----------------------------------------------------------------------


class TinyApp:
    """Answers each protocol minimally and records what it saw; its S3 PUT commits only whole bodies."""

    def __init__(self, *, catch_mismatch: bool = True) -> None:
        self.calls: list[dict[str, Any]] = []
        self.objects: dict[str, bytes] = {}
        self.catch_mismatch = catch_mismatch

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        protocol = protocol_of(scope)
        self.calls.append({"path": scope["path"], "key": scope.get("forgeml.access_key_id"), "protocol": protocol})
        if protocol == "rest-xml" and scope["method"] == "PUT":
            await self._put(scope, receive, send)
            return
        body = await self._read(receive)
        if protocol == "json":
            await self._answer(send, 200, b"application/x-amz-json-1.1", b'{"TrainingJobSummaries": []}')
        elif protocol == "rest-json":
            await self._answer(send, 200, b"application/json", json.dumps({"echo": body.decode()}).encode())
        elif protocol == "query":
            key = str(scope.get("forgeml.access_key_id"))
            await self._answer(send, 200, b"text/xml", (
                "<GetCallerIdentityResponse><GetCallerIdentityResult>"
                f"<Arn>arn:aws:iam::000000000000:user/{key}</Arn><UserId>{key}</UserId>"
                "<Account>000000000000</Account></GetCallerIdentityResult>"
                "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>").encode())
        else:
            await self._answer(send, 200, b"application/octet-stream", self.objects.get(scope["path"], b""))

    @staticmethod
    async def _read(receive: Any) -> bytes:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _put(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self.catch_mismatch:
            self.objects[scope["path"]] = await self._read(receive)
        else:
            try:
                self.objects[scope["path"]] = await self._read(receive)
            except PayloadHashMismatch as mismatch:
                await self._answer(send, 400, b"application/xml",
                                   f"<Error><Code>{mismatch.code}</Code></Error>".encode())
                return
        await self._answer(send, 200, b"application/xml", b"", extra=[(b"etag", b'"e"')])

    @staticmethod
    async def _answer(send: Any, status: int, content_type: bytes, body: bytes,
                      extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def send_via(app: Any, wire: Wire, *, content: Any = None) -> httpx.Response:
    """Deliver a signed wire request through ``app`` with httpx's in-process ASGI transport."""
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            url = wire.raw_path.decode() + (f"?{wire.query.decode()}" if wire.query else "")
            headers = [(name, value) for name, value in wire.headers if name != b"content-length"]
            return await client.request(wire.method, url, headers=headers,
                                        content=wire.body if content is None else content)

    return asyncio.run(go())


def test_middleware_passes_signed_requests_and_names_the_key(pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    app = TinyApp()
    middleware = AuthMiddleware(app, verifier)
    response = send_via(middleware, runtime_request(pair))
    assert response.status_code == 200 and response.json() == {"echo": "45.0,1,2"}
    assert send_via(middleware, json_request(pair)).json() == {"TrainingJobSummaries": []}
    assert [call["key"] for call in app.calls] == [pair[0], pair[0]]


@pytest.mark.parametrize(("make", "content_type", "code"), [
    (json_request, "application/x-amz-json-1.1", "InvalidSignatureException"),
    (runtime_request, "application/json", "InvalidSignatureException"),
])
def test_middleware_refuses_in_the_json_shapes(make: Callable[[tuple[str, str]], Wire], content_type: str, code: str,
                                               pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    app = TinyApp()
    response = send_via(AuthMiddleware(app, verifier), replace(make(pair), body=b"changed"))
    assert response.status_code == 403
    assert response.headers["content-type"] == content_type
    assert response.headers["x-amzn-errortype"] == code
    assert response.json()["__type"] == code
    assert app.calls == []


def test_middleware_refuses_sts_and_s3_in_xml(pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    app = TinyApp()
    middleware = AuthMiddleware(app, verifier)
    sts = send_via(middleware, sts_request(("AKIAUNKNOWN000000000", pair[1])))
    assert sts.status_code == 403
    namespace = "{https://sts.amazonaws.com/doc/2011-06-15/}"
    assert ET.fromstring(sts.content).findtext(f"{namespace}Error/{namespace}Code") == "InvalidClientTokenId"
    s3 = send_via(middleware, s3_request(("AKIAUNKNOWN000000000", pair[1])))
    assert s3.status_code == 403 and ET.fromstring(s3.content).findtext("Code") == "InvalidAccessKeyId"
    head = send_via(middleware, replace(s3_request(("AKIAUNKNOWN000000000", pair[1]), body=b""), method="HEAD"))
    assert head.status_code == 403 and head.content == b""
    assert app.calls == [] and app.objects == {}


def test_exempt_paths_and_no_auth_mode(verifier: SigV4Verifier) -> None:
    app = TinyApp()
    health = Wire("GET", b"/health", b"", [(b"host", HOST.encode())], b"")
    assert send_via(AuthMiddleware(app, verifier), health).status_code == 200
    unsigned = Wire("POST", b"/", b"", [(b"host", HOST.encode()), (b"x-amz-target", b"SageMaker.ListTrainingJobs")],
                    b"{}")
    assert send_via(AuthMiddleware(app, verifier), unsigned).status_code == 403
    assert send_via(AuthMiddleware(app, None), unsigned).status_code == 200
    assert [call["path"] for call in app.calls] == ["/health", "/"]
    assert all(call["key"] is None for call in app.calls)


def test_middleware_refuses_oversize_bodies_with_413(pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    app = TinyApp()
    middleware = AuthMiddleware(app, verifier, max_body_bytes=1024)
    big = sign("POST", f"{BASE}/endpoints/ep/invocations", pair, body=b"1," * 600, headers={"Content-Type": "text/csv"})
    declared = send_via(middleware, big)
    assert declared.status_code == 413 and declared.json()["__type"] == "RequestEntityTooLarge"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * 400

    streamed = send_via(middleware, big, content=chunks())
    assert streamed.status_code == 413 and streamed.headers["x-amzn-errortype"] == "RequestEntityTooLarge"
    assert app.calls == []


def test_a_client_that_disconnects_mid_body_gets_no_answer(pair: tuple[str, str], verifier: SigV4Verifier) -> None:
    app = TinyApp()
    wire = json_request(pair)
    messages = iter([{"type": "http.request", "body": wire.body[:5], "more_body": True}, {"type": "http.disconnect"}])
    sent: list[Any] = []

    async def receive() -> Any:
        return next(messages)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "raw_path": b"/", "query_string": b"",
             "headers": wire.headers}
    asyncio.run(AuthMiddleware(app, verifier)(scope, receive, send))
    assert sent == [] and app.calls == []


def _chunks(body: bytes, size: int = 7) -> Callable[[], AsyncIterator[bytes]]:
    async def generate() -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start:start + size]

    return generate


def test_streamed_s3_body_is_hashed_and_committed_when_it_matches(pair: tuple[str, str],
                                                                  verifier: SigV4Verifier) -> None:
    app = TinyApp()
    body = b"label,f1\n1,0.5\n0,0.25\n" * 5
    wire = s3_request(pair, body=body)
    response = send_via(AuthMiddleware(app, verifier), wire, content=_chunks(body)())
    assert response.status_code == 200
    assert app.objects == {"/bucket/data/train set/part~1.csv": body}
    assert app.calls[0]["key"] == pair[0]


@pytest.mark.parametrize("app_catches", [True, False])
def test_streamed_s3_body_differing_from_its_hash_is_not_committed(app_catches: bool, pair: tuple[str, str],
                                                                   verifier: SigV4Verifier) -> None:
    app = TinyApp(catch_mismatch=app_catches)
    wire = s3_request(pair, body=b"the signed body")
    response = send_via(AuthMiddleware(app, verifier), wire, content=_chunks(b"another body, same size?")())
    assert response.status_code == 400
    assert ET.fromstring(response.content).findtext("Code") == "XAmzContentSHA256Mismatch"
    assert app.objects == {}
    assert len(app.calls) == 1


# -- end to end: real boto3 clients against uvicorn in a thread -------------------------------


@contextmanager
def serving(app: Any) -> Iterator[str]:
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield socket_url(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def client(name: str, url: str, pair: tuple[str, str]) -> Any:
    return boto3.client(name, endpoint_url=url, region_name="us-east-1", aws_access_key_id=pair[0],
                        aws_secret_access_key=pair[1],
                        config=BotoConfig(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


def error_code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def test_real_boto3_clients_through_the_middleware(store: KeyStore, pair: tuple[str, str]) -> None:
    app = TinyApp()
    stranger = ("AKIAUNKNOWN000000000", pair[1])
    wrong_secret = (pair[0], "w" * 40)
    with serving(AuthMiddleware(app, SigV4Verifier(store))) as url:
        assert client("sagemaker", url, pair).list_training_jobs()["TrainingJobSummaries"] == []
        assert error_code(lambda: client("sagemaker", url, stranger).list_training_jobs()) == \
            "UnrecognizedClientException"
        assert error_code(lambda: client("sagemaker", url, wrong_secret).list_training_jobs()) == \
            "InvalidSignatureException"

        runtime = client("sagemaker-runtime", url, pair)
        answer = runtime.invoke_endpoint(EndpointName="ufo-ep", ContentType="text/csv", Body=b"45.0,1,2")
        assert json.loads(answer["Body"].read()) == {"echo": "45.0,1,2"}
        assert error_code(lambda: client("sagemaker-runtime", url, stranger).invoke_endpoint(
            EndpointName="ufo-ep", ContentType="text/csv", Body=b"1")) == "UnrecognizedClientException"

        assert client("sts", url, pair).get_caller_identity()["UserId"] == pair[0]
        assert error_code(lambda: client("sts", url, stranger).get_caller_identity()) == "InvalidClientTokenId"

        s3 = client("s3", url, pair)
        s3.put_object(Bucket="bucket", Key="data/train.csv", Body=b"1,2,3\n" * 100)
        assert "/bucket/data/train.csv" in app.objects
        assert error_code(lambda: client("s3", url, wrong_secret).put_object(
            Bucket="bucket", Key="other", Body=b"x")) == "SignatureDoesNotMatch"
        assert error_code(lambda: client("s3", url, stranger).get_object(Bucket="bucket", Key="k")) == \
            "InvalidAccessKeyId"
        params = {"Bucket": "bucket", "Key": "data/train.csv"}
        version2 = httpx.get(s3.generate_presigned_url("get_object", Params=params, ExpiresIn=60), timeout=30)
        assert version2.status_code == 400
        assert "Please use AWS4-HMAC-SHA256" in str(ET.fromstring(version2.content).findtext("Message"))
        s3v4 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=pair[0],
                            aws_secret_access_key=pair[1], config=BotoConfig(signature_version="s3v4"))
        presigned = s3v4.generate_presigned_url("get_object", Params=params, ExpiresIn=60)
        fetched = httpx.get(presigned, timeout=30)
        assert fetched.status_code == 200 and fetched.content == b"1,2,3\n" * 100
    assert "/bucket/other" not in app.objects
    assert {call["key"] for call in app.calls} == {pair[0]}


# -- forgeml keys --------------------------------------------------------------------------------


def run_keys(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="forgeml")
    add_keys_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["keys", *argv])
    return int(args.func(args))


def test_keys_cli_create_list_revoke(forgeml_home: Path, store: KeyStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_keys("list") == 0
    assert "No access keys yet" in capsys.readouterr().out

    assert run_keys("create") == 0
    out = capsys.readouterr().out
    found = re.search(r"AccessKeyId:\s+(AKIA[A-Z0-9]{16})\nSecretAccessKey:\s+(\S{40})\n", out)
    assert found, out
    access_key_id, secret = found.groups()
    assert store.secret_for(access_key_id) == secret
    assert f"aws_access_key_id = {access_key_id}" in out
    assert f"AWS_SHARED_CREDENTIALS_FILE={forgeml_home / 'credentials'}" in out

    default = store.ensure_default()
    assert run_keys("list") == 0
    listing = capsys.readouterr().out
    assert access_key_id in listing and default[0] in listing and "profile forgeml" in listing
    assert secret not in listing and default[1] not in listing
    assert listing.count("Active") == 2 and "Inactive" not in listing

    assert run_keys("revoke", access_key_id) == 0
    assert f"Revoked {access_key_id}" in capsys.readouterr().out
    assert run_keys("list") == 0
    listing = capsys.readouterr().out
    rows = {line.split()[0]: line for line in listing.splitlines() if line.strip().startswith("AKIA")}
    assert "Inactive" in rows[access_key_id]
    assert "Active" in rows[default[0]] and "Inactive" not in rows[default[0]]
    assert store.secret_for(access_key_id) is None
    with pytest.raises(ResourceNotFound):
        run_keys("revoke", "AKIANOSUCHKEY0000000")
