"""Custom inference code, sagemaker-inference-toolkit style, served by a real worker subprocess:
a pickled scikit-learn model loaded by ``model_fn``, with the toolkit's default input/predict/output
functions and with the script's own, plus ``transform_fn``, context, errors and custom attributes."""

from __future__ import annotations

import http.client
import io
import json
import pickle
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from forgeml.serving.worker import WorkerProcess, start_worker

ROWS = np.array([[5.1, 3.5, 1.4], [6.7, 3.0, 5.2], [5.9, 3.0, 4.2]])

MODEL_FN_ONLY = """
import os
import pickle

def model_fn(model_dir):
    print("loading the model")  # user output must not come before the listening line
    with open(os.path.join(model_dir, "model.pkl"), "rb") as handle:
        return pickle.load(handle)
"""

ALL_HOOKS = """
import json
import os
import pickle

import numpy as np


class Rejected(Exception):
    status_code = 400


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.pkl"), "rb") as handle:
        return pickle.load(handle)


def input_fn(request_body, request_content_type):
    assert isinstance(request_body, str), "JSON reaches input_fn as text"
    payload = json.loads(request_body)
    if "rows" not in payload:
        raise Rejected("the request needs 'rows'")
    return np.asarray(payload["rows"], dtype=float)


def predict_fn(input_data, model, context):
    if (input_data < 0).any():
        raise RuntimeError("negative measurements crash this model")
    context.response_custom_attributes = f"seen={context.custom_attributes};id={context.inference_id}"
    return model.predict_proba(input_data)


def output_fn(prediction, accept):
    return json.dumps({"probabilities": prediction.round(6).tolist()}), "application/vnd.probs+json"
"""

TRANSFORM_FN = """
import os
import pickle


def model_fn(model_dir):
    with open(os.path.join(model_dir, "model.pkl"), "rb") as handle:
        return pickle.load(handle)


def transform_fn(model, request_body, content_type, accept):
    rows = [[float(v) for v in line.split(",")] for line in request_body.splitlines()]
    labels = model.predict(rows)
    return "|".join(str(int(label)) for label in labels).encode(), "text/x-labels"
"""


@pytest.fixture(scope="module")
def classifier() -> LogisticRegression:
    rng = np.random.default_rng(0)
    features = rng.normal(loc=5.0, size=(120, 3))
    labels = (features[:, 2] > 5.0).astype(int) + (features[:, 0] > 5.5).astype(int)
    return LogisticRegression(max_iter=500).fit(features, labels)


def model_dir_with(root: Path, classifier: LogisticRegression, name: str, script: str | None) -> Path:
    model_dir = root / name
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(pickle.dumps(classifier))
    if script is not None:
        (model_dir / "code").mkdir()
        (model_dir / "code" / "inference.py").write_text(textwrap.dedent(script))
    return model_dir


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, classifier: LogisticRegression) -> Iterator[dict[str, WorkerProcess]]:
    root = tmp_path_factory.mktemp("scripts")
    submit = root / "submitted"
    submit.mkdir()
    (submit / "serve_me.py").write_text(textwrap.dedent(ALL_HOOKS))
    started: dict[str, WorkerProcess] = {}
    try:
        started["defaults"] = start_worker(model_dir_with(root, classifier, "defaults", MODEL_FN_ONLY))
        started["hooks"] = start_worker(
            model_dir_with(root, classifier, "hooks", None),
            environment={"SAGEMAKER_PROGRAM": "serve_me.py", "SAGEMAKER_SUBMIT_DIRECTORY": str(submit)},
        )
        started["transform"] = start_worker(model_dir_with(root, classifier, "transform", TRANSFORM_FN))
        yield started
    finally:
        for worker in started.values():
            worker.stop()


def call(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    try:
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def logged(worker: WorkerProcess, text: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for line in list(worker.output)):
            return True
        time.sleep(0.02)
    return False


def csv(rows: np.ndarray) -> bytes:
    return "\n".join(",".join(str(v) for v in row) for row in rows).encode()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_model_fn_only_uses_the_toolkit_defaults(workers: dict[str, WorkerProcess], classifier: LogisticRegression) -> None:
    url = workers["defaults"].url
    expected = classifier.predict(ROWS).tolist()
    for body, content_type in ((csv(ROWS), "text/csv"), (json.dumps(ROWS.tolist()).encode(), "application/json")):
        status, headers, answer = call(url, body, {"Content-Type": content_type})
        assert (status, headers["content-type"]) == (200, "application/json")
        assert json.loads(answer) == expected
    # one CSV line is one record
    status, _, answer = call(url, csv(ROWS[:1]), {"Content-Type": "text/csv", "Accept": "*/*"})
    assert (status, json.loads(answer)) == (200, expected[:1])


def test_default_codecs_negotiate_accept(workers: dict[str, WorkerProcess], classifier: LogisticRegression) -> None:
    url = workers["defaults"].url
    expected = classifier.predict(ROWS)
    status, headers, answer = call(url, npy(ROWS), {"Content-Type": "application/x-npy", "Accept": "application/x-npy"})
    assert (status, headers["content-type"]) == (200, "application/x-npy")
    np.testing.assert_array_equal(np.load(io.BytesIO(answer)), expected)
    status, headers, answer = call(url, csv(ROWS), {"Content-Type": "text/csv", "Accept": "image/png, text/csv"})
    assert (status, headers["content-type"]) == (200, "text/csv")
    assert answer.decode().split() == [str(v) for v in expected]


def test_default_codecs_reject_what_they_cannot_read(workers: dict[str, WorkerProcess]) -> None:
    url = workers["defaults"].url
    status, _, answer = call(url, b"<rows/>", {"Content-Type": "application/xml"})
    assert status == 415 and b"Define input_fn" in answer
    status, _, answer = call(url, csv(ROWS), {"Content-Type": "text/csv", "Accept": "application/xml"})
    assert status == 415 and b"application/xml" in answer
    status, _, answer = call(url, b"[[1, 2,", {"Content-Type": "application/json"})
    assert status == 400 and b"could not parse the application/json request body" in answer
    status, _, answer = call(url, b"5.1,oops,1.4", {"Content-Type": "text/csv"})
    assert status == 400 and b"'oops'" in answer


def test_script_hooks_with_context_and_custom_attributes(
    workers: dict[str, WorkerProcess], classifier: LogisticRegression
) -> None:
    body = json.dumps({"rows": ROWS.tolist()}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Amzn-SageMaker-Custom-Attributes": "tenant=42",
        "X-Amzn-SageMaker-Inference-Id": "inference-7",
    }
    status, answer_headers, answer = call(workers["hooks"].url, body, headers)
    assert status == 200
    assert answer_headers["content-type"] == "application/vnd.probs+json"
    assert answer_headers["x-amzn-sagemaker-custom-attributes"] == "seen=tenant=42;id=inference-7"
    assert answer_headers["x-amzn-sagemaker-inference-id"] == "inference-7"
    np.testing.assert_allclose(json.loads(answer)["probabilities"], classifier.predict_proba(ROWS), atol=1e-6)


def test_crashing_predict_fn_is_500_with_the_message(workers: dict[str, WorkerProcess]) -> None:
    body = json.dumps({"rows": [[-1.0, 2.0, 3.0]]}).encode()
    status, headers, answer = call(workers["hooks"].url, body, {"Content-Type": "application/json"})
    assert status == 500
    assert headers["content-type"].startswith("text/plain")
    assert answer == b"RuntimeError: negative measurements crash this model"
    assert "x-amzn-sagemaker-custom-attributes" not in headers
    assert logged(workers["hooks"], "Traceback")  # the worker's log has the traceback


def test_script_exception_with_a_status_code_keeps_it(workers: dict[str, WorkerProcess]) -> None:
    status, _, answer = call(workers["hooks"].url, b'{"columns": []}', {"Content-Type": "application/json"})
    assert (status, answer) == (400, b"the request needs 'rows'")


def test_transform_fn(workers: dict[str, WorkerProcess], classifier: LogisticRegression) -> None:
    status, headers, answer = call(workers["transform"].url, csv(ROWS), {"Content-Type": "text/csv"})
    assert (status, headers["content-type"]) == (200, "text/x-labels")
    assert answer.decode() == "|".join(str(v) for v in classifier.predict(ROWS))


def test_script_output_goes_to_the_log_not_before_the_listening_line(workers: dict[str, WorkerProcess]) -> None:
    assert logged(workers["defaults"], "loading the model")
