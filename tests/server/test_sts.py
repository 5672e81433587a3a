"""STS GetCallerIdentity through the real boto3 client, against the app served by uvicorn."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from botocore.config import Config
from botocore.exceptions import ClientError

from forgeml.server.sts import create_sts_app
from forgeml.service.platform import Platform
from forgeml.serving.worker import bind_socket

pytestmark = pytest.mark.timeout(60)

CREDENTIALS = {
    "aws_access_key_id": "AKIAFORGEMLTESTKEY00",
    "aws_secret_access_key": "not-checked-without-auth",
}


def _serve(app: Any) -> tuple[str, Callable[[], None]]:
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the STS test server did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}", stop


def _sts(url: str) -> Any:
    config = Config(retries={"total_max_attempts": 1})
    return boto3.client("sts", endpoint_url=url, region_name="us-east-1", config=config, **CREDENTIALS)


@pytest.fixture
def served(forgeml_home: Path) -> Iterator[str]:
    url, stop = _serve(create_sts_app(Platform.get()))
    yield url
    stop()


def test_get_caller_identity_names_the_configured_account(served: str) -> None:
    identity = _sts(served).get_caller_identity()
    assert identity["Account"] == "000000000000"
    assert identity["Arn"] == "arn:aws:iam::000000000000:user/forgeml"
    assert identity["UserId"] == "AIDAFORGEML"
    assert identity["ResponseMetadata"]["RequestId"]
    # sagemaker's Session.default_bucket() builds its bucket name from this answer.
    session = boto3.Session(region_name="us-east-1", **CREDENTIALS)
    account = session.client("sts", endpoint_url=served).get_caller_identity()["Account"]
    assert f"sagemaker-{session.region_name}-{account}" == "sagemaker-us-east-1-000000000000"


def test_the_account_comes_from_forgeml_account_id(
    forgeml_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGEML_ACCOUNT_ID", "123456789012")
    url, stop = _serve(create_sts_app(Platform.get()))
    try:
        identity = _sts(url).get_caller_identity()
        assert (identity["Account"], identity["Arn"]) == (
            "123456789012",
            "arn:aws:iam::123456789012:user/forgeml",
        )
    finally:
        stop()


def test_the_user_id_is_the_access_key_that_signed_the_request(forgeml_home: Path) -> None:
    app = create_sts_app(Platform.get())

    async def authenticated(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, "forgeml.access_key_id": "AKIAVERIFIEDBYAUTH01"}, receive, send)

    url, stop = _serve(authenticated)
    try:
        assert _sts(url).get_caller_identity()["UserId"] == "AKIAVERIFIEDBYAUTH01"
    finally:
        stop()


def test_other_actions_are_refused_in_the_query_error_shape(served: str) -> None:
    with pytest.raises(ClientError) as caught:
        _sts(served).assume_role(RoleArn="arn:aws:iam::000000000000:role/x", RoleSessionName="session")
    error = caught.value.response
    assert error["Error"]["Code"] == "InvalidAction"
    assert error["Error"]["Message"] == "Could not find operation AssumeRole for version 2011-06-15"
    assert error["Error"]["Type"] == "Sender"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400

    form = {"content-type": "application/x-www-form-urlencoded"}
    missing = httpx.post(f"{served}/", content=b"Version=2011-06-15", headers=form)
    assert missing.status_code == 400
    assert "<Code>MissingAction</Code>" in missing.text and "<ErrorResponse" in missing.text
    old_version = httpx.post(
        f"{served}/", content=b"Action=GetCallerIdentity&Version=2010-01-01", headers=form
    )
    assert old_version.status_code == 400
    assert "Could not find operation GetCallerIdentity for version 2010-01-01" in old_version.text
    too_big = httpx.post(f"{served}/", content=b"Action=GetCallerIdentity&x=" + b"a" * 70_000, headers=form)
    assert too_big.status_code == 413
    # The server keeps answering after every refusal.
    assert _sts(served).get_caller_identity()["Account"] == "000000000000"
