"""The server as a whole: health, routing by protocol, request log, the JSON protocol's refusals, the CLI."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.server.conftest import RunningServer, json_call, raw_request, training_request, wait_until

import forgeml

MIB = 1024 * 1024


def assert_aws_error(response: Any, status: int, code: str) -> str:
    """The JSON 1.1 error shape botocore reads; returns the message."""
    assert response.status == status, response.body[:300]
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    assert response.headers["x-amzn-errortype"] == code
    body = response.json()
    assert body["__type"] == code
    return str(body["message"])


def test_health_answers_unsigned_with_the_version(server: RunningServer) -> None:
    response = raw_request(server, "GET", "/health", sign=False)
    assert response.status == 200
    assert response.json() == {"status": "ok", "version": forgeml.__version__}
    assert raw_request(server, "HEAD", "/health", sign=False).body == b""
    # only GET/HEAD skip authentication; other methods must be signed, and even then reach nothing
    for method in ("PUT", "DELETE", "POST"):
        assert raw_request(server, method, "/health", sign=False).status == 403
        refused = raw_request(server, method, "/health")
        assert refused.status == 405 and refused.json()["__type"] == "MethodNotAllowed"
    assert not (server.platform.config.local_s3_root / "health").exists()


def test_unsigned_and_badly_signed_requests_are_refused(server: RunningServer) -> None:
    unsigned = json_call(server, "SageMaker.ListTrainingJobs", b"{}", sign=False)
    assert unsigned.status == 403 and unsigned.json()["__type"].startswith("MissingAuthenticationToken")
    wrong_secret = RunningServer(server.url, server.platform, server.access_key, "not-the-secret")
    with pytest.raises(ClientError) as refused:
        wrong_secret.client("sagemaker").list_training_jobs()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert server.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_without_auth_no_signature_is_needed_and_no_key_is_made(open_server: RunningServer) -> None:
    assert json_call(open_server, "SageMaker.ListModels", b"{}", sign=False).json() == {"Models": []}
    assert open_server.client("sagemaker").list_endpoints()["Endpoints"] == []
    assert not (open_server.platform.config.home / "credentials").exists()


def test_requests_reach_the_service_their_protocol_names(server: RunningServer, clients: Any) -> None:
    identity = clients("sts").get_caller_identity()
    assert identity["Account"] == "000000000000"
    s3 = clients("s3", s3={"addressing_style": "path"})
    s3.create_bucket(Bucket="routing-check")
    assert "routing-check" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert clients("logs").describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs")["logStreams"] == []
    assert clients("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker")["ScalableTargets"] == []
    with pytest.raises(ClientError) as runtime:
        clients("sagemaker-runtime").invoke_endpoint(EndpointName="nowhere", Body=b"1")
    assert runtime.value.response["Error"]["Code"] == "ValidationError"


def test_one_log_line_per_request_without_bodies_or_secrets(server: RunningServer,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="forgeml.server"):
        server.client("sagemaker").list_models(NameContains="body-marker")
        raw_request(server, "GET", "/health", sign=False)
        json_call(server, "SageMaker.DescribeModel", b'{"ModelName": "missing-model"}')
        # a line is written once its response is sent, so the client may read the answer first
        lines = wait_until(lambda: (lambda found: found if len(found) >= 3 else None)(
            [r.getMessage() for r in caplog.records if r.name == "forgeml.server"]), timeout=10, what="3 log lines")
    assert len(lines) == 3, lines
    assert lines[0].startswith("POST SageMaker.ListModels 200 ") and lines[0].endswith(" ms")
    assert lines[1].startswith("GET /health 200 ")
    assert lines[2].startswith("POST SageMaker.DescribeModel 400 ")
    text = "\n".join(lines)
    assert "body-marker" not in text and str(server.secret_key) not in text and "missing-model" not in text


def test_malformed_requests_get_the_json_protocols_errors(server: RunningServer) -> None:
    message = assert_aws_error(json_call(server, "SageMaker.ListModels", b'{"MaxResults": '), 400,
                               "SerializationException")
    assert message.startswith("The request body is not valid JSON")
    message = assert_aws_error(json_call(server, "SageMaker.ListModels", b"[1, 2]"), 400, "SerializationException")
    assert message == "The request body must be a JSON object, not an array"
    assert_aws_error(json_call(server, "SageMaker.ListModels", b"[" * 100000), 400, "SerializationException")
    message = assert_aws_error(json_call(server, "SageMaker.CreateTrainingJob", json.dumps(
        {**training_request("raw-typed"), "ResourceConfig": "big", "HyperParameters": ["a"]}).encode()),
        400, "SerializationException")
    assert message.startswith("2 serialization errors detected: ")
    assert "Value 'big' at 'resourceConfig' cannot be read as a structure (it is a string)" in message
    assert "Value 'an array' at 'hyperParameters' cannot be read as a map (it is an array)" in message

    message = assert_aws_error(json_call(server, "SageMaker.DescribeTrainingJob",
                                         b'{"TrainingJobName": "a", "Verbose": true}'), 400, "ValidationException")
    assert 'Unknown parameter in input: "Verbose", must be one of: TrainingJobName' in message
    assert assert_aws_error(json_call(server, "SageMaker.FlyToTheMoon", b"{}"), 400,
                            "UnknownOperationException") == "Unknown operation SageMaker.FlyToTheMoon"
    message = assert_aws_error(json_call(server, "Kinesis_20131202.PutRecord", b"{}"), 400,
                               "UnknownOperationException")
    assert "Unknown service in X-Amz-Target 'Kinesis_20131202.PutRecord'" in message
    assert_aws_error(json_call(server, "NoOperation", b"{}"), 400, "UnknownOperationException")
    # the server still serves, and nothing was stored
    assert server.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


@pytest.mark.parametrize("auth", [True, False])
def test_oversize_bodies_are_refused_with_413(platform: Any, auth: bool) -> None:
    from tests.server.conftest import serve

    with serve(platform, auth=auth) as running:
        padding = "x" * (17 * MIB)
        body = json.dumps({**training_request("too-big"), "HyperParameters": {"padding": padding}}).encode()
        response = json_call(running, "SageMaker.CreateTrainingJob", body)
        assert response.status == 413
        assert response.json()["__type"] == "RequestEntityTooLarge"
        sm = running.client("sagemaker")
        with pytest.raises(ClientError):
            sm.describe_training_job(TrainingJobName="too-big")
        assert sm.list_training_jobs()["TrainingJobSummaries"] == []


def test_an_unexpected_failure_is_a_generic_500_logged_with_its_traceback(
        server: RunningServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(**params: Any) -> dict[str, Any]:
        raise RuntimeError("disk layout detail that must not leak")

    monkeypatch.setattr(server.platform.models, "list_models", broken)
    with caplog.at_level(logging.INFO, logger="forgeml.server"), pytest.raises(ClientError) as failed:
        server.client("sagemaker").list_models()
    response = failed.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert response["Error"] == {"Code": "InternalFailure",
                                 "Message": "We encountered an internal error. Please try again."}
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged and logged[0].exc_info is not None
    assert "disk layout detail" in str(logged[0].exc_info[1])
    assert server.client("sagemaker").list_endpoints()["Endpoints"] == []


# -- the CLI -------------------------------------------------------------------------------------


def start_cli(home: Path, *args: str) -> tuple[subprocess.Popen[str], str, str]:
    """``python -m forgeml.cli.server --port 0 ...``: the process, the URL and the announcement it printed.

    The announcement is read line by line up to its "Use it:" line: those lines sit in the pipe
    reader's buffer, where ``communicate`` (which reads the raw pipe) would never see them.
    """
    env = {**os.environ, "FORGEML_HOME": str(home), "FORGEML_STOP_GRACE_SECONDS": "2"}
    process = subprocess.Popen([sys.executable, "-m", "forgeml.cli.server", "--port", "0", *args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    printed = ""
    while "Use it:" not in printed:
        line = process.stdout.readline()
        if not line:
            process.kill()
            pytest.fail(f"the server did not start: {printed}{process.communicate(timeout=10)}")
        printed += line
    if "listening on " not in printed:
        process.kill()
        pytest.fail(f"the server did not say where it listens: {printed}")
    return process, printed.split("listening on ")[1].split()[0], printed


def stop_cli(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return process.returncode, out, err


def wait_healthy(url: str) -> None:
    import urllib.request

    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.parametrize("workers", [1, 2])
def test_cli_serves_with_the_credentials_it_prints_and_stops_on_sigterm(forgeml_home: Path, workers: int,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    process, url, printed = start_cli(forgeml_home, "--workers", str(workers))
    try:
        wait_healthy(url)
        credentials = forgeml_home / "credentials"
        assert credentials.exists() and oct(credentials.stat().st_mode & 0o777) == "0o600"
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(forgeml_home / "no-config"))
        sm = boto3.session.Session(profile_name="forgeml").client("sagemaker", endpoint_url=url,
                                                                  region_name="us-east-1")
        sm.create_training_job(**training_request("cli-job"))
        assert sm.describe_training_job(TrainingJobName="cli-job")["TrainingJobName"] == "cli-job"
    finally:
        code, out, err = stop_cli(process)
    assert code == 0, err
    assert f"AWS_SHARED_CREDENTIALS_FILE={forgeml_home / 'credentials'} AWS_PROFILE=forgeml AWS_ENDPOINT_URL={url}" \
        in printed + out
    assert "POST SageMaker.CreateTrainingJob 200" in err


def test_cli_refuses_no_auth_off_loopback_and_warns_on_loopback(forgeml_home: Path) -> None:
    refused = subprocess.run([sys.executable, "-m", "forgeml.cli.server", "--no-auth", "--host", "0.0.0.0"],
                             env={**os.environ, "FORGEML_HOME": str(forgeml_home)}, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2
    assert "--no-auth serves every request unsigned, so it only listens on a loopback address" in refused.stderr
    assert "not 0.0.0.0" in refused.stderr

    process, url, printed = start_cli(forgeml_home, "--no-auth")
    try:
        wait_healthy(url)
    finally:
        code, out, err = stop_cli(process)
    assert code == 0
    assert "AUTHENTICATION IS OFF (--no-auth)" in err
    assert f"AWS_ENDPOINT_URL={url}" in printed
    assert not (forgeml_home / "credentials").exists()


def test_a_refused_upload_does_not_break_the_next_request(server: RunningServer) -> None:
    """An S3 PUT refused before its body is read closes its connection (the client may be waiting
    on Expect: 100-continue), so the same client's next requests are answered properly."""
    good = server.client("s3")
    good.create_bucket(Bucket="uploads")
    bad = RunningServer(server.url, server.platform, server.access_key, "not-the-secret").client("s3")
    for attempt in range(3):
        with pytest.raises(ClientError) as refused:
            bad.put_object(Bucket="uploads", Key=f"k{attempt}", Body=b"x" * 100_000)
        assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    good.put_object(Bucket="uploads", Key="ok", Body=b"y" * 100_000)
    assert good.get_object(Bucket="uploads", Key="ok")["Body"].read() == b"y" * 100_000
    assert [o["Key"] for o in good.list_objects_v2(Bucket="uploads")["Contents"]] == ["ok"]
