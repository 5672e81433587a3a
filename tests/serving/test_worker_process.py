"""The worker process's life: the listening line, start-up failures, ``--model-data``, the payload
limit from the environment (Content-Length and chunked bodies), and graceful SIGTERM."""

from __future__ import annotations

import http.client
import io
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.data.csv_format import write_csv
from forgeml.runtime.packaging import make_tarball
from forgeml.serving.worker import LISTENING, WorkerStartError, start_worker

SLOW_SCRIPT = """
import os
import time

print("user code prints while loading")


def model_fn(model_dir):
    return "model"


def transform_fn(model, request_body, content_type, accept):
    open(os.environ["STARTED_MARKER"], "w").close()
    time.sleep(float(os.environ.get("SLEEP_SECONDS", "1.5")))
    return "done after the stop", "text/plain"
"""


@pytest.fixture(scope="module")
def kmeans_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kmeans")
    (root / "train").mkdir()
    features = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    write_csv(root / "train" / "data.csv", features, np.zeros(200, dtype=np.float32))
    channels = {"train": ChannelData(root / "train", "text/csv")}
    train_builtin("kmeans", {"k": "2", "feature_dim": "3"}, channels, root / "model", root / "output", stream=io.StringIO())
    return root / "model"


def call(url: str, body: bytes, headers: dict[str, str], path: str = "/invocations") -> tuple[int, bytes]:
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    try:
        connection.request("POST" if path == "/invocations" else "GET", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def slow_model(tmp_path: Path) -> Path:
    model_dir = tmp_path / "slow"
    (model_dir / "code").mkdir(parents=True)
    (model_dir / "code" / "inference.py").write_text(textwrap.dedent(SLOW_SCRIPT))
    return model_dir


def test_listening_line_comes_first_even_when_user_code_prints(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "forgeml.serving.worker", "--model-dir", str(slow_model(tmp_path)), "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith(f"{LISTENING} http://127.0.0.1:")
        url = first[len(LISTENING) :].strip()
        assert call(url, b"", {}, path="/ping") == (200, b"")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "user code prints while loading" in stderr


def test_sigterm_lets_the_in_flight_request_finish(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    worker = start_worker(slow_model(tmp_path), environment={"STARTED_MARKER": str(marker)})
    results: list[tuple[int, bytes]] = []
    client = threading.Thread(target=lambda: results.append(call(worker.url, b"x", {"Content-Type": "text/plain"})))
    client.start()
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline, "the request never reached the model"
        time.sleep(0.01)
    worker.process.send_signal(signal.SIGTERM)
    client.join(timeout=30)
    assert results == [(200, b"done after the stop")]
    assert worker.process.wait(timeout=30) == 0
    parsed = urlsplit(worker.url)
    with pytest.raises(OSError), socket.create_connection((parsed.hostname, parsed.port), timeout=2):
        pass


def test_sigterm_when_idle_exits_zero_promptly(kmeans_model: Path) -> None:
    worker = start_worker(kmeans_model, algorithm="kmeans")
    assert call(worker.url, b"", {}, path="/ping") == (200, b"")
    started = time.monotonic()
    assert worker.stop() == 0
    assert time.monotonic() - started < 10


def test_model_that_cannot_load_exits_1_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(WorkerStartError, match="exited with status 1") as failure:
        start_worker(tmp_path / "empty", algorithm="linear-learner")
    assert "could not load the model" in str(failure.value)
    with pytest.raises(WorkerStartError, match="unknown algorithm 'not-an-algorithm'"):
        start_worker(tmp_path / "empty", algorithm="not-an-algorithm")
    with pytest.raises(WorkerStartError, match="inference.py is not in"):
        start_worker(tmp_path / "empty")


def test_model_data_tarball_is_extracted_first(kmeans_model: Path, tmp_path: Path) -> None:
    archive = make_tarball([kmeans_model], tmp_path / "model.tar.gz")
    worker = start_worker(tmp_path / "extracted", algorithm="kmeans", args=["--model-data", str(archive)])
    try:
        status, body = call(worker.url, b"0.1,0.2,0.3", {"Content-Type": "text/csv"})
        assert status == 200 and b"closest_cluster" in body
        assert (tmp_path / "extracted" / "model_algo-1").is_file()
    finally:
        worker.stop()


def test_payload_limit_from_the_environment(kmeans_model: Path) -> None:
    worker = start_worker(kmeans_model, algorithm="kmeans", environment={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.001"})
    limit = 1048  # 0.001 MiB
    try:
        row = b"0.1,0.2,0.3\n"
        fits = row * (limit // len(row))
        assert call(worker.url, fits, {"Content-Type": "text/csv"})[0] == 200
        status, message = call(worker.url, fits + row, {"Content-Type": "text/csv"})
        assert status == 413 and b"over the limit of 1048 bytes" in message
        # a chunked body (no Content-Length) is cut off once it passes the limit
        parsed = urlsplit(worker.url)
        with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
            head = b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(row * 20), row * 20) for _ in range(6)) + b"0\r\n\r\n"
            sock.sendall(head + chunks)
            answer = b""
            while b"over the limit" not in answer:  # headers and body may arrive in separate segments
                received = sock.recv(65536)
                if not received:
                    break
                answer += received
        assert answer.startswith(b"HTTP/1.1 413")
        assert b"over the limit of 1048 bytes" in answer
        # the worker is still serving
        assert call(worker.url, row, {"Content-Type": "text/csv"})[0] == 200
    finally:
        assert worker.stop() == 0


def test_bad_payload_limit_is_a_start_up_error(kmeans_model: Path) -> None:
    with pytest.raises(WorkerStartError, match="SAGEMAKER_MAX_PAYLOAD_IN_MB must be a number"):
        start_worker(kmeans_model, algorithm="kmeans", environment={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "six"})
