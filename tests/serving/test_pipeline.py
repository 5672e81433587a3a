"""Inference pipelines: a scikit-learn preprocessing script -> Linear Learner -> a label-naming script,
chained in one handler and in a real worker subprocess; plus the chaining rules on recording stages
(bodies, content types, Accept, custom attributes, errors, 204) and one module namespace per stage."""

from __future__ import annotations

import http.client
import io
import json
import logging
import pickle
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.registry import get_algorithm
from forgeml.data.csv_format import write_csv
from forgeml.serving.handlers import BuiltinHandler, ModelLoadError, Response
from forgeml.serving.model_setup import ContainerSpec, start_model_worker
from forgeml.serving.pipeline import PipelineHandler, load_pipeline, read_container_specs, stage_name
from forgeml.serving.worker import main, parse_args, start_worker

FEATURES = 3
LABEL_NAMES = ["stay", "churn"]
ROWS = np.array([[9.0, -3.5, 12.0], [1.0, -2.0, 8.0], [7.0, -3.0, 14.0], [4.0, -2.5, 6.0]])
CLIENT_CSV = "\n".join(",".join(repr(float(v)) for v in row) for row in ROWS).encode()

PREPROCESS_HELPERS = """
import numpy as np


def parse_csv(text):
    return np.array([[float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()])


def to_csv(rows):
    return "\\n".join(",".join(repr(float(v)) for v in row) for row in rows)
"""

PREPROCESS_SCRIPT = """
import os
import pickle

from helpers import parse_csv, to_csv

STAGE = "preprocess"


class NotServed(Exception):
    status_code = 415


def model_fn(model_dir):
    with open(os.path.join(model_dir, "scaler.pkl"), "rb") as handle:
        return pickle.load(handle)


def input_fn(request_body, request_content_type):
    if request_content_type != "text/csv":
        raise NotServed(f"the preprocessor reads text/csv, not {request_content_type}")
    return parse_csv(request_body)


def predict_fn(input_data, model, context):
    context.response_custom_attributes = "from-preprocess"
    return model.transform(input_data)


def output_fn(prediction, accept):
    if accept != "text/csv":
        raise NotServed(f"the preprocessor writes text/csv, not {accept}")
    return to_csv(prediction), "text/csv"
"""

LABELS_HELPERS = """
def label_names(predictions, names):
    return [names[int(p["predicted_label"])] for p in predictions]
"""

LABELS_SCRIPT = """
import json
import os

from helpers import label_names

STAGE = "labels"


def model_fn(model_dir):
    with open(os.path.join(model_dir, "labels.json")) as handle:
        return json.load(handle)


def input_fn(request_body, request_content_type):
    assert request_content_type == "application/json", request_content_type
    return json.loads(request_body)["predictions"]


def predict_fn(predictions, names, context):
    context.response_custom_attributes = f"labels;seen={context.custom_attributes}"
    return label_names(predictions, names)


def output_fn(labels, accept):
    if accept == "text/csv":
        return "\\n".join(labels) + "\\n", "text/csv"
    return json.dumps({"labels": labels}), "application/json"
"""

NAMING_SCRIPT = """
import importlib

NAME = {name!r}


def model_fn(model_dir):
    return None


def transform_fn(model, request_body, content_type, accept):
    text = request_body if isinstance(request_body, str) else request_body.decode()
    return text + importlib.import_module("inference").NAME + ";", "text/plain"
"""


@dataclass
class Pipeline:
    """The staged containers of the test pipeline and what running its steps by hand needs."""

    specs: list[ContainerSpec]
    scaler: StandardScaler
    linear_learner: Any

    def by_hand(self, body: bytes) -> list[str]:
        rows = np.array([[float(v) for v in line.split(",")] for line in body.decode().splitlines()])
        scaled = "\n".join(",".join(repr(float(v)) for v in row) for row in self.scaler.transform(rows))
        answer, _ = get_algorithm("linear-learner").invoke(
            self.linear_learner, scaled.encode(), "text/csv", "application/json"
        )
        return [LABEL_NAMES[int(p["predicted_label"])] for p in json.loads(answer)["predictions"]]

    def scaled_csv(self, rows: np.ndarray) -> bytes:
        return "\n".join(",".join(repr(float(v)) for v in row) for row in self.scaler.transform(rows)).encode()


def write_code(folder: Path, script: str, helpers: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "inference.py").write_text(textwrap.dedent(script))
    if helpers is not None:
        (folder / "helpers.py").write_text(textwrap.dedent(helpers))
    return folder


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    root = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(7)
    raw = rng.normal(loc=[5.0, -3.0, 10.0], scale=[2.0, 0.5, 4.0], size=(240, FEATURES))
    scaler = StandardScaler().fit(raw)
    scaled = scaler.transform(raw).astype(np.float32)
    labels = (scaled @ np.array([1.5, -1.0, 0.5]) > 0).astype(np.float32)

    preprocess = root / "preprocess" / "model"
    write_code(preprocess / "code", PREPROCESS_SCRIPT, PREPROCESS_HELPERS)
    (preprocess / "scaler.pkl").write_bytes(pickle.dumps(scaler))

    (root / "train").mkdir()
    write_csv(root / "train" / "data.csv", scaled, labels)
    hyperparameters = {"predictor_type": "binary_classifier", "feature_dim": str(FEATURES), "epochs": "3"}
    channels = {"train": ChannelData(root / "train", "text/csv")}
    learner = root / "linear-learner" / "model"
    train_builtin("linear-learner", hyperparameters, channels, learner, root / "ll-output", stream=io.StringIO())

    names = root / "labels" / "model"
    names.mkdir(parents=True)
    (names / "labels.json").write_text(json.dumps(LABEL_NAMES))
    names_code = write_code(root / "labels" / "src", LABELS_SCRIPT, LABELS_HELPERS)

    specs = [
        ContainerSpec(preprocess, None, {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}, "preprocess"),
        ContainerSpec(
            learner, "linear-learner", {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"}, "linear-learner"
        ),
        ContainerSpec(
            names, None, {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": str(names_code)}
        ),
    ]
    return Pipeline(specs, scaler, get_algorithm("linear-learner").load_model(learner))


@pytest.fixture(autouse=True)
def _own_imports() -> Iterator[None]:
    """Scripts loaded in this process go away after each test (they are top-level modules)."""
    modules = dict(sys.modules)
    path = list(sys.path)
    yield
    for name in ("inference", "helpers", "labels"):
        if name in modules:
            sys.modules[name] = modules[name]
        else:
            sys.modules.pop(name, None)
    sys.path[:] = path


# -- the chaining rules, on recording stages ------------------------------------------------------


class Recording:
    """A stage that records what it is given and answers ``<body>|<name>`` unless told otherwise."""

    def __init__(self, name: str, answer: Response | None = None, healthy: bool = True) -> None:
        self.name = name
        self.answer = answer
        self.healthy = healthy
        self.calls: list[tuple[bytes, str | None, str | None, str | None, str | None]] = []

    def ping(self) -> bool:
        if self.name == "broken":
            raise RuntimeError("the stage's ping crashed")
        return self.healthy

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None = None,
        *,
        inference_id: str | None = None,
    ) -> Response:
        self.calls.append((body, content_type, accept, custom_attributes, inference_id))
        if self.name == "raising":
            raise RuntimeError("the stage crashed")
        if self.answer is not None:
            return self.answer
        return Response(body + f"|{self.name}".encode(), f"application/x-{self.name}", 200, f"attrs-{self.name}")


def test_each_stage_gets_the_previous_answer_and_the_last_gets_the_clients_accept() -> None:
    first, second, third = Recording("a"), Recording("b"), Recording("c")
    handler = PipelineHandler(
        [
            ("container 1 (a)", first, "text/csv"),
            ("container 2 (b)", second, None),
            ("container 3 (c)", third, "application/never"),
        ]
    )

    response = handler.invoke(b"x", "text/plain", "application/json", "k=v", inference_id="id-1")

    assert first.calls == [(b"x", "text/plain", "text/csv", "k=v", "id-1")]
    assert second.calls == [(b"x|a", "application/x-a", "application/json", "k=v", "id-1")]
    assert third.calls == [(b"x|a|b", "application/x-b", "application/json", "k=v", "id-1")]
    assert response == Response(b"x|a|b|c", "application/x-c", 200, "attrs-c")


def test_a_missing_client_accept_reaches_stages_without_a_default_as_none() -> None:
    first, second = Recording("a"), Recording("b")
    handler = PipelineHandler([("container 1 (a)", first, None), ("container 2 (b)", second, "text/csv")])

    handler.invoke(b"x", None, None)

    assert first.calls == [(b"x", None, None, None, None)]
    assert second.calls == [(b"x|a", "application/x-a", None, None, None)]


def test_an_error_stops_the_chain_and_comes_back_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    refusal = Response(b"bad row 3", "text/plain; charset=utf-8", 400, "attrs-b")
    first, second, third = Recording("a"), Recording("b", refusal), Recording("c")
    handler = PipelineHandler(
        [("container 1 (a)", first, None), ("container 2 (b)", second, None), ("container 3 (c)", third, None)]
    )

    with caplog.at_level(logging.WARNING, logger="forgeml.serving"):
        response = handler.invoke(b"x", "text/csv", "text/csv")

    assert response is refusal
    assert third.calls == []
    assert [record.getMessage() for record in caplog.records] == [
        "inference pipeline stopped at container 2 (b) (stage 2 of 3), which answered 400: bad row 3"
    ]


def test_a_stage_that_raises_answers_500_and_stops_the_chain() -> None:
    last = Recording("c")
    handler = PipelineHandler([("container 1 (a)", Recording("raising"), None), ("container 2 (c)", last, None)])

    response = handler.invoke(b"x", "text/csv", None)

    assert (response.status, response.body) == (500, b"RuntimeError: the stage crashed")
    assert last.calls == []


def test_204_from_an_earlier_stage_ends_the_request_with_204() -> None:
    empty = Response(b"", None, 204, "ignored")
    last = Recording("c")
    handler = PipelineHandler([("container 1 (a)", Recording("a", empty), None), ("container 2 (c)", last, None)])

    assert handler.invoke(b"", "text/csv", None) == Response(b"", None, 204)
    assert last.calls == []
    final = PipelineHandler(
        [("container 1 (a)", Recording("a"), None), ("container 2 (b)", Recording("b", empty), None)]
    )
    assert final.invoke(b"x", "text/csv", None) is empty


def test_ping_needs_every_stage_healthy() -> None:
    assert PipelineHandler([("one", Recording("a"), None), ("two", Recording("b"), None)]).ping() is True
    assert (
        PipelineHandler([("one", Recording("a"), None), ("two", Recording("b", healthy=False), None)]).ping() is False
    )
    assert PipelineHandler([("one", Recording("broken"), None), ("two", Recording("b"), None)]).ping() is False
    with pytest.raises(ValueError, match="at least one stage"):
        PipelineHandler([])


def test_stage_names_use_the_hostname_or_the_position() -> None:
    assert stage_name(2, "linear-learner") == "container 2 (linear-learner)"
    assert stage_name(3, None) == "container 3 (container-3)"


# -- the real three-container pipeline, in process ------------------------------------------------


def test_the_pipeline_answers_what_the_three_steps_give_by_hand(pipeline: Pipeline) -> None:
    handler = load_pipeline(pipeline.specs)
    expected = pipeline.by_hand(CLIENT_CSV)
    assert set(expected) == set(LABEL_NAMES)  # the rows reach both labels: the answer says something

    as_csv = handler.invoke(CLIENT_CSV, "text/csv", "text/csv", "client=1", inference_id="r-1")
    as_json = handler.invoke(CLIENT_CSV, "text/csv", "application/json")

    assert as_csv == Response(("\n".join(expected) + "\n").encode(), "text/csv", 200, "labels;seen=client=1")
    assert as_json.status == 200 and as_json.content_type == "application/json"
    assert json.loads(as_json.body) == {"labels": expected}
    assert handler.ping() is True


def test_an_error_from_the_middle_stage_comes_back_with_its_status_and_message(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    learner = pipeline.specs[1]
    specs = [pipeline.specs[0], replace(learner, environment={}), pipeline.specs[2]]
    handler = load_pipeline(specs)
    direct = BuiltinHandler(get_algorithm("linear-learner"), pipeline.linear_learner).invoke(
        pipeline.scaled_csv(ROWS), "text/csv", "application/xml"
    )

    with caplog.at_level(logging.WARNING, logger="forgeml.serving"):
        response = handler.invoke(CLIENT_CSV, "text/csv", "application/xml")

    assert direct.status == 415 and b"Accept type 'application/xml' is not supported" in direct.body
    assert (response.status, response.body, response.content_type) == (direct.status, direct.body, direct.content_type)
    assert any(
        "stopped at container 2 (linear-learner) (stage 2 of 3), which answered 415" in record.getMessage()
        for record in caplog.records
    )


def test_a_stage_that_cannot_load_is_named(pipeline: Pipeline, tmp_path: Path) -> None:
    missing = replace(pipeline.specs[1], model_dir=tmp_path / "nowhere")
    with pytest.raises(ModelLoadError) as raised:
        load_pipeline([pipeline.specs[0], missing, pipeline.specs[2]])
    assert (
        str(raised.value) == f"container 2 (linear-learner): the model directory {tmp_path / 'nowhere'} does not exist"
    )

    no_code = ContainerSpec(tmp_path, None, {})
    with pytest.raises(
        ModelLoadError, match=r"^container 2 \(container-2\): the inference program inference.py is not in"
    ):
        load_pipeline([pipeline.specs[1], no_code])
    with pytest.raises(ModelLoadError, match="at least one container"):
        load_pipeline([])


def test_same_named_scripts_keep_their_own_modules(tmp_path: Path) -> None:
    specs = []
    for name in ("first", "second"):
        model = tmp_path / name
        write_code(model / "code", NAMING_SCRIPT.format(name=name))
        specs.append(ContainerSpec(model, None, {}, name))
    handler = load_pipeline(specs)

    answer = handler.invoke(b"", "text/plain", "text/plain")

    assert (answer.status, answer.body) == (200, b"first;second;")


def test_the_environment_lies_under_each_containers_own(pipeline: Pipeline, tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "labels.py").write_text(
        "def model_fn(model_dir):\n    return None\n\n\ndef transform_fn(model, body, content_type, accept):\n"
        "    return f'{content_type} for {accept}: {body}', 'text/plain'\n"
    )
    last = ContainerSpec(tmp_path, None, {"SAGEMAKER_PROGRAM": "labels.py"})
    handler = load_pipeline(
        [pipeline.specs[1], last], environment={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/plain"}
    )

    # the learner's own default (JSON) wins over the shared one; the script, with none, gets the shared one
    answer = handler.invoke(pipeline.scaled_csv(ROWS[:1]), "text/csv", None)
    scores, _ = get_algorithm("linear-learner").invoke(
        pipeline.linear_learner, pipeline.scaled_csv(ROWS[:1]), "text/csv", "application/json"
    )
    assert (answer.status, answer.body) == (200, b"application/json for text/plain: " + scores)


def test_container_spec_files_are_read_and_checked(pipeline: Pipeline, tmp_path: Path) -> None:
    good = tmp_path / "specs.json"
    good.write_text(json.dumps([spec.to_json() for spec in pipeline.specs]))
    assert read_container_specs(good) == pipeline.specs

    for content, message in [
        ("{}", "must be a non-empty JSON list"),
        ("[]", "must be a non-empty JSON list"),
        ('[{"Algorithm": "xgboost"}]', "item 1 of the container specs .* has no ModelDir"),
        ("[not json", "cannot read the container specs"),
    ]:
        good.write_text(content)
        with pytest.raises(ModelLoadError, match=message):
            read_container_specs(good)
    with pytest.raises(ModelLoadError, match="cannot read the container specs"):
        read_container_specs(tmp_path / "absent.json")


# -- the worker: command line and subprocess ------------------------------------------------------


def call(
    url: str, body: bytes, headers: dict[str, str], path: str = "/invocations"
) -> tuple[int, dict[str, str], bytes]:
    parsed = urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    try:
        connection.request("POST" if path == "/invocations" else "GET", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_the_command_line_takes_a_model_dir_or_containers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args(["--containers", "specs.json"]).containers == Path("specs.json")
    assert parse_args(["--model-dir", "model"]).model_dir == Path("model")
    for argv in ([], ["--model-dir", "m", "--containers", "c"], ["--containers", "c", "--algorithm", "xgboost"]):
        with pytest.raises(SystemExit) as exited:
            parse_args(argv)
        assert exited.value.code == 2
    errors = capsys.readouterr().err
    assert "one of the arguments --model-dir --containers is required" in errors
    assert "argument --containers: not allowed with argument --model-dir" in errors
    assert "--model-data and --algorithm go with --model-dir" in errors


def test_a_pipeline_worker_that_cannot_load_exits_1_naming_the_stage(
    pipeline: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = tmp_path / "specs.json"
    specs.write_text(
        json.dumps([pipeline.specs[1].to_json(), {"ModelDir": str(tmp_path / "gone"), "Hostname": "post"}])
    )

    assert main(["--containers", str(specs), "--port", "0"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"forgeml-worker: container 2 (post): the model directory {tmp_path / 'gone'} does not exist"
    )


def test_start_worker_serves_exactly_one_model(tmp_path: Path) -> None:
    for kwargs in (
        {},
        {"model_dir": tmp_path, "containers": tmp_path / "c.json"},
        {"containers": tmp_path / "c.json", "algorithm": "xgboost"},
    ):
        with pytest.raises(ValueError, match="start_worker serves exactly one|algorithm goes with model_dir"):
            start_worker(**kwargs)


def test_a_worker_subprocess_serves_the_pipeline_over_http(pipeline: Pipeline, tmp_path: Path) -> None:
    specs = tmp_path / "specs.json"
    specs.write_text(json.dumps([spec.to_json() for spec in pipeline.specs]))
    worker = start_worker(containers=specs)
    try:
        status, headers, body = call(
            worker.url,
            CLIENT_CSV,
            {"Content-Type": "text/csv", "Accept": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "c=2"},
        )
        ping, _, _ = call(worker.url, b"", {}, path="/ping")
        refused, _, message = call(worker.url, CLIENT_CSV, {"Content-Type": "application/json", "Accept": "text/csv"})
    finally:
        assert worker.stop() == 0
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(body) == {"labels": pipeline.by_hand(CLIENT_CSV)}
    assert headers["x-amzn-sagemaker-custom-attributes"] == "labels;seen=c=2"
    assert ping == 200
    assert (refused, message) == (415, b"the preprocessor reads text/csv, not application/json")


def test_start_model_worker_serves_two_or_more_containers(pipeline: Pipeline, tmp_path: Path) -> None:
    spec_path = tmp_path / "worker" / "containers.json"
    worker = start_model_worker(
        pipeline.specs[1:], environment={"SAGEMAKER_MAX_PAYLOAD_IN_MB": "0.01"}, spec_path=spec_path
    )
    try:
        scaled = pipeline.scaled_csv(ROWS)
        status, _, body = call(worker.url, scaled, {"Content-Type": "text/csv", "Accept": "text/csv"})
        too_large, _, _ = call(worker.url, b"0" * 20_000, {"Content-Type": "text/csv"})
    finally:
        assert worker.stop() == 0
    assert read_container_specs(spec_path) == pipeline.specs[1:]
    assert (status, body) == (200, ("\n".join(pipeline.by_hand(CLIENT_CSV)) + "\n").encode())
    assert too_large == 413
