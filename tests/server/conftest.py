"""Fixtures for server tests: the server on a free port in a background thread, and real boto3 clients.

``server`` serves ``create_app(platform)`` with authentication on, over the test's own FORGEML_HOME,
and carries the default key pair; ``open_server`` serves with ``auth=False``. ``clients(name)``
gives a boto3 client for either (signed with the default key). Every endpoint a test leaves behind
is deleted when the server stops, so no endpoint host outlives its test.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import os
import queue
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import delete_endpoints

FEATURES = 4
WEIGHTS = np.array([1.0, -2.0, 0.5, 0.0])
ROLE = "arn:aws:iam::000000000000:role/forgeml-tests"


@dataclass
class RunningServer:
    url: str
    platform: Any
    access_key: str | None
    secret_key: str | None
    app: Any = None

    def part(self, kind: type) -> Any:
        """The piece of the app of that type (the ForgeMLServer, its RuntimeProxy ...), found through ``.app``."""
        node = self.app
        while node is not None:
            if isinstance(node, kind):
                return node
            for child in ("runtime", "json"):
                found = getattr(node, child, None)
                if isinstance(found, kind):
                    return found
            node = getattr(node, "app", None)
        raise LookupError(f"no {kind.__name__} in the app")

    def client(self, service: str, **config: Any) -> Any:
        """A real boto3 client for this server; ``config`` goes to botocore's Config (retries off by default)."""
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {"retries": {"total_max_attempts": 1}}
        options.update(config)
        return boto3.session.Session().client(
            service, endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=self.access_key or "AKIAUNSIGNEDTESTS000", aws_secret_access_key=self.secret_key or "x",
            config=Config(**options))


@contextlib.contextmanager
def serve(platform: Any, *, auth: bool) -> Iterator[RunningServer]:
    """create_app(platform, auth=auth) on uvicorn in a thread, on a free loopback port."""
    import uvicorn

    from forgeml.server.app import create_app
    from forgeml.serving.worker import bind_socket, socket_url

    app = create_app(platform, auth=auth)
    access_key = secret_key = None
    if auth:
        from forgeml.server.auth import KeyStore

        access_key, secret_key = KeyStore(platform.config).ensure_default()
    sock = bind_socket("127.0.0.1", 0)
    from forgeml.cli.server import KEEP_ALIVE_SECONDS

    config = uvicorn.Config(app, loop="asyncio", lifespan="on", log_config=None, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE_SECONDS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="forgeml-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the server thread did not start serving")
        time.sleep(0.01)
    try:
        yield RunningServer(socket_url(sock), platform, access_key, secret_key, app)
    finally:
        delete_endpoints(platform.config.home)  # before the server goes: the runtime proxy may hold them
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def platform(forgeml_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from forgeml.service.platform import Platform

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(forgeml_home.parent / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(forgeml_home.parent / "no-aws-credentials"))
    return Platform.get()


@pytest.fixture
def server(platform: Any) -> Iterator[RunningServer]:
    with serve(platform, auth=True) as running:
        yield running


@pytest.fixture
def open_server(platform: Any) -> Iterator[RunningServer]:
    with serve(platform, auth=False) as running:
        yield running


@pytest.fixture
def clients(server: RunningServer) -> Callable[..., Any]:
    """clients("sagemaker", **botocore_config) -> a boto3 client signed with the server's default key."""
    return server.client


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def raw_request(server: RunningServer, method: str, path: str, body: bytes = b"",
                headers: dict[str, str] | None = None, *, sign: bool = True,
                service: str = "sagemaker") -> RawResponse:
    """What boto3 would never send (malformed JSON, unknown members): signed with botocore's own signer."""
    import http.client
    from urllib.parse import urlsplit

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=server.url + path, data=body, headers=dict(headers or {}))
    if sign and server.access_key and server.secret_key:
        SigV4Auth(Credentials(server.access_key, server.secret_key), service, "us-east-1").add_auth(request)
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=dict(request.headers.items()))
        response = connection.getresponse()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def json_call(server: RunningServer, target: str, body: bytes, *, sign: bool = True) -> RawResponse:
    """POST / with ``X-Amz-Target: target`` and ``body`` as the JSON 1.1 protocol sends it."""
    service = {"SageMaker": "sagemaker", "Logs_20140328": "logs",
               "AnyScaleFrontendService": "application-autoscaling"}.get(target.split(".")[0], "sagemaker")
    return raw_request(server, "POST", "/", body, {"X-Amz-Target": target,
                                                   "Content-Type": "application/x-amz-json-1.1"},
                       sign=sign, service=service)


# -- what tests create ---------------------------------------------------------------------------


def training_request(name: str, code: str = "print('hello from the job')", **extra: Any) -> dict[str, Any]:
    """A CreateTrainingJob request for a job that runs ``python -c code`` (seconds, no data)."""
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "python", "TrainingInputMode": "File",
                                   "ContainerEntrypoint": ["python", "-c", code]},
        "OutputDataConfig": {"S3OutputPath": "s3://server-tests/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }
    request.update(extra)
    return request


def wait_until(probe: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """The first truthy value of ``probe()``; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def linear_learner_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny binary Linear Learner model (4 features) packed as SageMaker's model.tar.gz."""
    from forgeml.algorithms.harness import ChannelData, train_builtin
    from forgeml.data.csv_format import write_csv

    root = tmp_path_factory.mktemp("server-ll")
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, FEATURES)).astype(np.float32)
    labels = (features @ WEIGHTS > 0).astype(np.float32)
    (root / "train").mkdir()
    write_csv(root / "train" / "data.csv", features, labels)
    hyperparameters = {"predictor_type": "binary_classifier", "feature_dim": str(FEATURES), "epochs": "3"}
    train_builtin("linear-learner", hyperparameters, {"train": ChannelData(root / "train", "text/csv")},
                  root / "model", root / "output", stream=io.StringIO())
    archive = root / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted((root / "model").iterdir()):
            tar.add(path, arcname=path.name)
    return archive


@pytest.fixture
def linear_learner_model(platform: Any, linear_learner_tarball: Path) -> Callable[[str], dict[str, Any]]:
    """make(name) -> a CreateModel request for the tiny Linear Learner artifact (uploaded to the store)."""
    from forgeml.sdk.image_uris import retrieve

    def make(name: str) -> dict[str, Any]:
        uri = f"s3://server-models/{name}/model.tar.gz"
        platform.artifacts.ensure_bucket("server-models")
        platform.artifacts.put_file(linear_learner_tarball, uri)
        return {"ModelName": name, "ExecutionRoleArn": ROLE,
                "PrimaryContainer": {"Image": retrieve("linear-learner", "us-east-1"), "ModelDataUrl": uri},
                "Tags": [{"Key": "team", "Value": "ufo"}]}

    return make


# -- the real command in a child process (load and restart tests) --------------------------------

#: generous bounds: the machine may be shared with other test runs
SUBPROCESS_CALL_TIMEOUT_SECONDS = 120


@dataclass
class ServerProcess:
    """``forgeml server`` running in a child process, with the URL and key it printed."""

    process: subprocess.Popen[str]
    url: str
    access_key: str
    secret_key: str
    log: Path

    def client(self, service: str, session: Any) -> Any:
        from botocore.config import Config

        return session.client(service, endpoint_url=self.url, region_name="us-east-1",
                              aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                              config=Config(retries={"total_max_attempts": 1}, max_pool_connections=4,
                                            read_timeout=SUBPROCESS_CALL_TIMEOUT_SECONDS))

    def stop(self) -> int:
        """SIGTERM, as an operator or a service manager stops it; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


def start_server(home: Path, log: Path, **env: str) -> ServerProcess:
    """Start the command; wait for its "Use it:" line (printed once the key exists) and for /health."""
    with open(log, "ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "forgeml.cli.server", "--port", "0", "--log-level", "warning"],
            env={**os.environ, "FORGEML_HOME": str(home), **env}, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # keeps reading, so the server never blocks on a full pipe
        for line in process.stdout or ():
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    url = None
    deadline = time.monotonic() + 60
    while url is None:
        try:
            line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            process.kill()
            pytest.fail(f"forgeml server printed no 'Use it:' line within 60 s; stderr: {log.read_text()[-2000:]}")
        found = re.search(r"^Use it:.*AWS_ENDPOINT_URL=(\S+)", line)
        url = found.group(1) if found else None
    credentials = configparser.ConfigParser()
    credentials.read(home / "credentials")
    running = ServerProcess(process, url, credentials["forgeml"]["aws_access_key_id"],
                            credentials["forgeml"]["aws_secret_access_key"], log)
    wait_until(lambda: _healthy(url), timeout=60, what="the server's /health")
    return running


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False
