"""The worker as a real subprocess serving built-in algorithms: what /invocations answers is exactly
what ``algorithm.invoke`` answers in process, with SageMaker's statuses around it."""

from __future__ import annotations

import http.client
import io
import json
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.registry import get_algorithm
from forgeml.data.csv_format import write_csv
from forgeml.data.recordio_protobuf import read_records
from forgeml.serving.worker import MAX_PAYLOAD_BYTES, WorkerProcess, start_worker

pytestmark = pytest.mark.filterwarnings("ignore:.*Unknown file format")

FEATURES = 4
RECORDIO = "application/x-recordio-protobuf"
ROWS = np.array([[0.5, 1.2, -0.3, 2.0], [-1.0, 0.1, 0.7, -0.4], [2.2, -0.8, 0.0, 1.1]], dtype=np.float32)
CSV_ONE = b"0.5,1.2,-0.3,2.0"
CSV_MANY = "\n".join(",".join(repr(float(v)) for v in row) for row in ROWS).encode()
JSON_MANY = json.dumps({"instances": [{"features": row.tolist()} for row in ROWS]}).encode()

HYPERPARAMETERS = {
    "linear-learner": {"predictor_type": "binary_classifier", "feature_dim": str(FEATURES), "epochs": "2"},
    "xgboost": {"num_round": "5", "objective": "binary:logistic"},
    "kmeans": {"k": "3", "feature_dim": str(FEATURES)},
}


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[WorkerProcess, Any]]]:
    root = tmp_path_factory.mktemp("builtin")
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, FEATURES)).astype(np.float32)
    labels = (features @ np.array([1.0, -2.0, 0.5, 0.0]) > 0).astype(np.float32)
    (root / "train").mkdir()
    write_csv(root / "train" / "data.csv", features, labels)
    channels = {"train": ChannelData(root / "train", "text/csv")}
    started: dict[str, tuple[WorkerProcess, Any]] = {}
    try:
        for name, hyperparameters in HYPERPARAMETERS.items():
            model_dir = root / name
            train_builtin(name, hyperparameters, channels, model_dir, root / f"{name}-output", stream=io.StringIO())
            started[name] = (start_worker(model_dir, algorithm=name), get_algorithm(name).load_model(model_dir))
        yield started
    finally:
        for worker, _ in started.values():
            worker.stop()


def call(
    url: str, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST", path: str = "/invocations"
) -> tuple[int, dict[str, str], bytes]:
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def decoded(body: bytes) -> list[dict[str, list[float]]]:
    return [
        {key: list(value.float32_tensor.values) for key, value in record.label.items()}
        for record in read_records(io.BytesIO(body))
    ]


def direct(name: str, model: Any, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    return get_algorithm(name).invoke(model, body, content_type, accept)


@pytest.mark.parametrize("name", list(HYPERPARAMETERS))
def test_ping_is_200_with_an_empty_body(workers: dict[str, tuple[WorkerProcess, Any]], name: str) -> None:
    worker, _ = workers[name]
    status, headers, body = call(worker.url, method="GET", path="/ping")
    assert (status, body, headers["content-length"]) == (200, b"", "0")


@pytest.mark.parametrize(
    ("name", "body", "content_type", "accept"),
    [
        ("linear-learner", CSV_ONE, "text/csv", "application/json"),
        ("linear-learner", CSV_MANY, "text/csv", "text/csv"),
        ("linear-learner", JSON_MANY, "application/json", "application/json"),
        ("linear-learner", JSON_MANY, "application/json", "application/jsonlines"),
        ("linear-learner", CSV_MANY, "text/csv; label_size=0", RECORDIO),
        ("xgboost", CSV_ONE, "text/csv", "text/csv"),
        ("xgboost", CSV_MANY, "text/csv", "application/json"),
        ("xgboost", b"0:0.5 1:1.2 2:-0.3 3:2.0", "text/libsvm", "text/csv"),
        ("kmeans", CSV_MANY, "text/csv", "application/json"),
        ("kmeans", JSON_MANY, "application/json", "text/csv"),
    ],
)
def test_answers_exactly_what_the_algorithm_answers(
    workers: dict[str, tuple[WorkerProcess, Any]], name: str, body: bytes, content_type: str, accept: str
) -> None:
    worker, model = workers[name]
    expected_body, expected_type = direct(name, model, body, content_type, accept)
    status, headers, answer = call(worker.url, body, {"Content-Type": content_type, "Accept": accept})
    assert status == 200
    assert headers["content-type"] == expected_type
    assert int(headers["content-length"]) == len(answer)
    if expected_type == RECORDIO:  # protobuf map entries have no fixed order across processes
        assert decoded(answer) == decoded(expected_body)
    else:
        assert answer == expected_body


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("application/xml, text/csv", "text/csv"),
        ("application/jsonlines;q=0.9", "application/jsonlines"),
    ],
)
def test_accept_negotiation(workers: dict[str, tuple[WorkerProcess, Any]], accept: str | None, expected: str) -> None:
    worker, model = workers["linear-learner"]
    headers = {"Content-Type": "text/csv"} | ({"Accept": accept} if accept else {})
    status, answer_headers, answer = call(worker.url, CSV_MANY, headers)
    assert (status, answer_headers["content-type"]) == (200, expected)
    assert answer == direct("linear-learner", model, CSV_MANY, "text/csv", expected)[0]


def test_xgboost_default_accept_is_csv(workers: dict[str, tuple[WorkerProcess, Any]]) -> None:
    worker, model = workers["xgboost"]
    status, headers, answer = call(worker.url, CSV_MANY, {"Content-Type": "text/csv"})
    assert (status, headers["content-type"]) == (200, "text/csv")
    assert answer == direct("xgboost", model, CSV_MANY, "text/csv", "")[0]


@pytest.mark.parametrize(
    ("name", "content_type", "accept"),
    [
        ("linear-learner", "image/png", "application/json"),
        ("linear-learner", "text/csv", "application/xml"),
        ("xgboost", "application/json", "text/csv"),
        ("kmeans", "text/plain", "application/json"),
    ],
)
def test_unsupported_content_type_or_accept_is_415(
    workers: dict[str, tuple[WorkerProcess, Any]], name: str, content_type: str, accept: str
) -> None:
    worker, _ = workers[name]
    status, headers, answer = call(worker.url, CSV_ONE, {"Content-Type": content_type, "Accept": accept})
    assert status == 415
    assert headers["content-type"].startswith("text/plain")
    assert b"not supported" in answer


@pytest.mark.parametrize(
    ("name", "body", "content_type", "message"),
    [
        ("linear-learner", b"0.5,abc,-0.3,2.0", "text/csv", b"could not parse value 'abc'"),
        ("linear-learner", b"0.5,1.2", "text/csv", b"the model expects 4"),
        ("linear-learner", b"{not json", "application/json", b"could not parse"),
        ("linear-learner", b"", "text/csv", b"empty"),
        ("kmeans", b"1,2,3,4\n1,2", "text/csv", b"columns"),
    ],
)
def test_malformed_payload_is_400_with_the_reason(
    workers: dict[str, tuple[WorkerProcess, Any]], name: str, body: bytes, content_type: str, message: bytes
) -> None:
    worker, _ = workers[name]
    status, _, answer = call(worker.url, body, {"Content-Type": content_type})
    assert status == 400
    assert message in answer


def test_xgboost_empty_body_is_204(workers: dict[str, tuple[WorkerProcess, Any]]) -> None:
    worker, _ = workers["xgboost"]
    status, headers, answer = call(worker.url, b"", {"Content-Type": "text/csv"})
    assert (status, answer) == (204, b"")
    assert "content-length" not in headers


def test_oversize_body_is_413_before_the_model(workers: dict[str, tuple[WorkerProcess, Any]]) -> None:
    worker, _ = workers["linear-learner"]
    body = CSV_ONE + b"\n" + b"0" * (MAX_PAYLOAD_BYTES - len(CSV_ONE))
    assert len(body) == MAX_PAYLOAD_BYTES + 1
    status, _, answer = call(worker.url, body, {"Content-Type": "text/csv"})
    assert status == 413
    assert f"{MAX_PAYLOAD_BYTES + 1} bytes".encode() in answer and b"6 MiB" in answer
    # exactly at the limit is the model's business (here: a malformed record, so 400)
    status, _, _ = call(worker.url, body[:-1], {"Content-Type": "text/csv"})
    assert status == 400


def test_custom_attributes_and_inference_id(workers: dict[str, tuple[WorkerProcess, Any]]) -> None:
    worker, model = workers["linear-learner"]
    headers = {
        "Content-Type": "text/csv",
        "X-Amzn-SageMaker-Custom-Attributes": "trace=abc-123,tenant=7",
        "X-Amzn-SageMaker-Inference-Id": "request-0001",
    }
    status, answer_headers, answer = call(worker.url, CSV_ONE, headers)
    assert status == 200
    assert answer == direct("linear-learner", model, CSV_ONE, "text/csv", "")[0]
    assert answer_headers["x-amzn-sagemaker-inference-id"] == "request-0001"
    # a built-in algorithm returns no custom attributes, so the response carries none
    assert "x-amzn-sagemaker-custom-attributes" not in answer_headers


def test_routes_and_methods(workers: dict[str, tuple[WorkerProcess, Any]]) -> None:
    worker, _ = workers["kmeans"]
    assert call(worker.url, method="GET", path="/nothing-here")[0] == 404
    status, headers, _ = call(worker.url, method="GET", path="/invocations")
    assert (status, headers["allow"]) == (405, "POST")
    assert call(worker.url, method="POST", path="/ping")[0] == 405
    assert call(worker.url, method="HEAD", path="/ping")[0] == 200


def test_keep_alive_and_concurrent_clients(workers: dict[str, tuple[WorkerProcess, Any]]) -> None:
    worker, model = workers["linear-learner"]
    expected = direct("linear-learner", model, CSV_MANY, "text/csv", "text/csv")[0]
    parsed = urlsplit(worker.url)
    failures: list[str] = []

    def client() -> None:
        connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
        try:
            for _ in range(50):
                connection.request("POST", "/invocations", CSV_MANY, {"Content-Type": "text/csv", "Accept": "text/csv"})
                response = connection.getresponse()
                body = response.read()
                if response.status != 200 or body != expected:
                    failures.append(f"{response.status} {body!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
