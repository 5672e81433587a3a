"""The worker in process: handler loading rules, the toolkit's default codecs, error mapping, and the
ASGI app's behaviour (offloading slow models, calls never overlapping, unhealthy pings) served by
``serve_in_thread``."""

from __future__ import annotations

import http.client
import io
import json
import tarfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from forgeml.algorithms.base import InferenceError, UnsupportedContentType
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.data.csv_format import write_csv
from forgeml.errors import ClientError, ValidationException
from forgeml.serving import codecs
from forgeml.serving.handlers import (
    BuiltinHandler,
    ModelLoadError,
    Response,
    classify_error,
    load_handler,
)
from forgeml.serving.script import ScriptHandler
from forgeml.serving.worker import MAX_PAYLOAD_BYTES, SLOW_STREAK, WorkerApp, payload_limit, serve_in_thread


def call(url: str, path: str = "/invocations", body: bytes = b"x", method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    try:
        connection.request(method, path, body=body if method == "POST" else None, headers={"Content-Type": "text/plain"})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


class FakeHandler:
    """Sleeps ``seconds`` per call, records which threads called it and how many calls overlapped."""

    def __init__(self, seconds: float = 0.0, healthy: bool = True) -> None:
        self.seconds = seconds
        self.healthy = healthy
        self.threads: set[str] = set()
        self.active = 0
        self.most_active = 0
        self.lock = threading.Lock()

    def ping(self) -> bool:
        return self.healthy

    def invoke(
        self, body: bytes, content_type: str | None, accept: str | None, custom_attributes: str | None = None, *, inference_id: str | None = None
    ) -> Response:
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        self.threads.add(threading.current_thread().name)
        if body == b"raise":
            raise ValueError("a handler that raises")
        time.sleep(self.seconds)
        with self.lock:
            self.active -= 1
        return Response(body[::-1], "text/plain", custom_attributes=custom_attributes)


@pytest.fixture
def served() -> Iterator[Any]:
    stops: list[Any] = []

    def serve(app: WorkerApp) -> str:
        url, stop = serve_in_thread(app)
        stops.append(stop)
        return url

    yield serve
    for stop in stops:
        stop()


# -- the app --------------------------------------------------------------------------------------


def test_inline_mode_calls_the_model_on_the_event_loop(served: Any) -> None:
    handler = FakeHandler()
    url = served(WorkerApp(handler, offload="inline"))
    assert call(url, body=b"abc")[2] == b"cba"
    assert handler.threads == {"forgeml-worker"}


def test_auto_mode_moves_a_slow_model_to_a_thread_for_good(served: Any) -> None:
    handler = FakeHandler(seconds=0.004)
    app = WorkerApp(handler, offload_threshold_ms=2.0)
    url = served(app)
    for _ in range(SLOW_STREAK - 1):
        call(url)
    assert not app.offloading
    call(url)
    assert app.offloading
    handler.seconds = 0.0
    for _ in range(20):
        call(url)
    assert app.offloading  # one-way: a model is not moved back and forth between threads
    assert any(name.startswith("forgeml-model") for name in handler.threads)


def test_a_fast_model_with_occasional_slow_calls_stays_inline(served: Any) -> None:
    handler = FakeHandler()
    app = WorkerApp(handler, offload_threshold_ms=5.0)
    url = served(app)
    for index in range(3 * SLOW_STREAK):
        handler.seconds = 0.008 if index % 4 == 0 else 0.0
        call(url)
    assert not app.offloading


def test_thread_mode_answers_ping_during_a_slow_call_and_never_overlaps_calls(served: Any) -> None:
    handler = FakeHandler(seconds=0.5)
    url = served(WorkerApp(handler, offload="thread"))
    clients = [threading.Thread(target=call, args=(url,)) for _ in range(4)]
    for client in clients:
        client.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert call(url, "/ping", method="GET")[0] == 200
    assert time.monotonic() - started < 1.0  # not behind the model's 2 s of queued work
    for client in clients:
        client.join(timeout=30)
    assert handler.most_active == 1


def test_a_handler_that_raises_is_500_and_unhealthy_ping_is_500(served: Any) -> None:
    url = served(WorkerApp(FakeHandler(healthy=False)))
    status, headers, body = call(url, body=b"raise")
    assert (status, body) == (500, b"ValueError: a handler that raises")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert call(url, "/ping", method="GET")[0] == 500


def test_custom_attributes_come_back_when_the_handler_returns_them(served: Any) -> None:
    url = served(WorkerApp(FakeHandler()))
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    connection.request("POST", "/invocations", b"ab", {"X-Amzn-SageMaker-Custom-Attributes": "a=1"})
    response = connection.getresponse()
    assert (response.read(), response.getheader("X-Amzn-SageMaker-Custom-Attributes")) == (b"ba", "a=1")
    connection.close()


def test_app_rejects_an_unknown_offload_mode() -> None:
    with pytest.raises(ValueError, match="offload must be one of"):
        WorkerApp(FakeHandler(), offload="sometimes")


def test_payload_limit() -> None:
    assert payload_limit({}) == MAX_PAYLOAD_BYTES == 6291456
    assert payload_limit({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "20"}) == 20 * 1024 * 1024
    for bad in ("0", "-1", "lots"):
        with pytest.raises(ModelLoadError):
            payload_limit({"SAGEMAKER_MAX_PAYLOAD_IN_MB": bad})


# -- error mapping and codecs ---------------------------------------------------------------------


class ToolkitStyleError(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (UnsupportedContentType("no png"), (415, "no png")),
        (InferenceError("bad row"), (400, "bad row")),
        (ClientError("bad input"), (400, "bad input")),
        (ValidationException("bad value"), (400, "bad value")),
        (ToolkitStyleError(422, "unprocessable"), (422, "unprocessable")),
        (KeyError("weights"), (500, "KeyError: 'weights'")),
        (RuntimeError("boom"), (500, "RuntimeError: boom")),
    ],
)
def test_classify_error(error: Exception, expected: tuple[int, str]) -> None:
    assert classify_error(error) == expected


def test_decode_defaults() -> None:
    assert codecs.decode("1,2,3", "text/csv").shape == (1, 3)
    np.testing.assert_array_equal(codecs.decode(b"1,,3\n4,5,6\n", "text/csv; charset=utf-8"), [[1, np.nan, 3], [4, 5, 6]])
    np.testing.assert_array_equal(codecs.decode("[[1, 2], [3, 4]]", "application/json"), [[1, 2], [3, 4]])
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(codecs.decode(buffer.getvalue(), "application/x-npy"), np.arange(6).reshape(2, 3))
    with pytest.raises(InferenceError, match="'x' as a number in CSV record 2"):
        codecs.decode("1,2\n3,x", "text/csv")
    with pytest.raises(InferenceError, match="record 2 has 3 fields"):
        codecs.decode("1,2\n3,4,5", "text/csv")
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object))
    with pytest.raises(InferenceError):  # a request body never unpickles
        codecs.decode(pickled.getvalue(), "application/x-npy")
    with pytest.raises(UnsupportedContentType):
        codecs.decode(b"x", None)


def test_encode_defaults() -> None:
    prediction = np.array([[0.25, 0.75], [1.0, 0.0]])
    assert codecs.encode(prediction, "application/json") == (b"[[0.25, 0.75], [1.0, 0.0]]", "application/json")
    assert codecs.encode(prediction, "text/csv") == (b"0.25,0.75\n1.0,0.0\n", "text/csv")
    assert codecs.encode(np.float32(0.5), "*/*", "text/csv") == (b"0.5\n", "text/csv")
    body, kind = codecs.encode(prediction, "application/x-npy")
    assert kind == "application/x-npy"
    np.testing.assert_array_equal(np.load(io.BytesIO(body)), prediction)
    with pytest.raises(UnsupportedContentType):
        codecs.encode(prediction, "application/xml")


# -- loading ------------------------------------------------------------------------------------


def write(folder: Path, name: str, code: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(code))
    return folder


@pytest.fixture(scope="module")
def kmeans_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kmeans")
    (root / "train").mkdir()
    features = np.random.default_rng(0).normal(size=(100, 2)).astype(np.float32)
    write_csv(root / "train" / "data.csv", features, np.zeros(100, dtype=np.float32))
    channels = {"train": ChannelData(root / "train", "text/csv")}
    train_builtin("kmeans", {"k": "2", "feature_dim": "2"}, channels, root / "model", root / "output", stream=io.StringIO())
    return root / "model"


def test_builtin_handler_answers_like_the_algorithm(kmeans_dir: Path) -> None:
    handler = load_handler(kmeans_dir, algorithm="kmeans")
    assert isinstance(handler, BuiltinHandler) and handler.ping()
    answer = handler.invoke(b"0.1,0.2", "text/csv", None)
    assert (answer.status, answer.content_type) == (200, "application/json")
    assert json.loads(answer.body)["predictions"][0].keys() == {"closest_cluster", "distance_to_cluster"}
    assert handler.invoke(b"0.1,0.2", "image/png", None).status == 415
    assert handler.invoke(b"0.1,zz", "text/csv", None).status == 400


def test_builtin_with_a_script_that_only_loads_the_model(kmeans_dir: Path, tmp_path: Path) -> None:
    code = write(tmp_path / "code", "load.py", """
        import numpy as np
        from forgeml.algorithms.kmeans.serve import KMeansModel

        def model_fn(model_dir):
            return KMeansModel(np.array([[100.0, 100.0], [-100.0, -100.0]], dtype=np.float32))
    """)
    environment = {"SAGEMAKER_PROGRAM": "load", "SAGEMAKER_SUBMIT_DIRECTORY": f"file://{code}"}
    handler = load_handler(kmeans_dir, algorithm="kmeans", environment=environment)
    assert isinstance(handler, BuiltinHandler)  # the algorithm still handles requests
    answer = handler.invoke(b"-90,-95", "text/csv", "application/json")
    assert json.loads(answer.body)["predictions"][0]["closest_cluster"] == 1.0


def test_submit_directory_may_be_a_tarball(tmp_path: Path) -> None:
    source = write(tmp_path / "source", "entry.py", """
        def model_fn(model_dir):
            return lambda rows: rows.sum(axis=1)
    """)
    with tarfile.open(tmp_path / "sourcedir.tar.gz", "w:gz") as archive:
        archive.add(source / "entry.py", arcname="entry.py")
    (tmp_path / "model").mkdir()
    environment = {"SAGEMAKER_PROGRAM": "entry.py", "SAGEMAKER_SUBMIT_DIRECTORY": str(tmp_path / "sourcedir.tar.gz")}
    handler = load_handler(tmp_path / "model", environment=environment)
    assert isinstance(handler, ScriptHandler)
    answer = handler.invoke(b"1,2\n3,4", "text/csv", "text/csv")  # a callable model, default predict_fn
    assert (answer.status, answer.body) == (200, b"3.0\n7.0\n")


def test_default_accept_comes_from_the_environment(tmp_path: Path) -> None:
    write(tmp_path / "model" / "code", "inference.py", """
        def model_fn(model_dir):
            return lambda rows: rows * 2
    """)
    handler = load_handler(tmp_path / "model", environment={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    answer = handler.invoke(b"1,2", "text/csv", None)
    assert (answer.content_type, answer.body) == ("text/csv", b"2.0,4.0\n")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("def input_fn(body, content_type):\n    return body\n", "defines no model_fn"),
        (
            "def model_fn(d):\n    return 1\ndef transform_fn(m, b, c, a):\n    return b\ndef input_fn(b, c):\n    return b\n",
            "Cannot use transform_fn implementation in conjunction",
        ),
        ("def model_fn(d):\n    return 1\ndef predict_fn(data):\n    return data\n", "predict_fn takes 1 arguments"),
        ("def model_fn(d):\n    raise OSError('no weights here')\n", "model_fn failed: OSError: no weights here"),
        ("import not_a_module_anywhere\n", "importing .* failed: ModuleNotFoundError"),
    ],
)
def test_script_load_errors(tmp_path: Path, code: str, message: str) -> None:
    write(tmp_path / "model" / "code", "inference.py", code)
    with pytest.raises(ModelLoadError, match=message):
        load_handler(tmp_path / "model")


def test_missing_model_dir_or_program(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_handler(tmp_path / "nowhere", algorithm="kmeans")
    (tmp_path / "model").mkdir()
    with pytest.raises(ModelLoadError, match="custom inference code is required"):
        load_handler(tmp_path / "model")
    with pytest.raises(ModelLoadError, match="serve.py is not in"):
        load_handler(tmp_path / "model", environment={"SAGEMAKER_PROGRAM": "serve.py", "SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/code.tar.gz"})


def test_a_script_named_like_a_stdlib_module_does_not_replace_it(tmp_path: Path) -> None:
    write(tmp_path / "model" / "code", "json.py", """
        def model_fn(model_dir):
            return lambda rows: rows + 1
    """)
    handler = load_handler(tmp_path / "model", environment={"SAGEMAKER_PROGRAM": "json.py"})
    assert json.dumps([1]) == "[1]"  # still the standard library's json
    assert handler.invoke(b"[1, 2]", "application/json", None).body == b"[2, 3]"


def test_plain_asyncio_and_h11_fallback_is_fast_too() -> None:
    # without TCP_NODELAY on accepted sockets, each answer waits ~40 ms for a delayed ACK
    url, stop = serve_in_thread(WorkerApp(FakeHandler()), loop="asyncio", http="h11")
    try:
        parsed = urlsplit(url)
        connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
        timings = []
        for _ in range(30):
            started = time.perf_counter()
            connection.request("POST", "/invocations", b"abc", {"Content-Type": "text/plain"})
            assert connection.getresponse().read() == b"cba"
            timings.append(time.perf_counter() - started)
        connection.close()
    finally:
        stop()
    assert sorted(timings)[len(timings) // 2] < 0.02
