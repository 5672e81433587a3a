"""Batch transform jobs end to end: a Linear Learner model and a small custom-code model over generated data.

Every expected output is what the model answers when invoked directly, so these tests check the
platform's splitting, batching, filtering, joining and assembling, not the model.
"""

from __future__ import annotations

import gzip
import io
import json
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forgeml import Session
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.registry import get_algorithm
from forgeml.data.csv_format import write_csv
from forgeml.data.protobuf_record import Record
from forgeml.data.recordio import split_records
from forgeml.data.recordio_protobuf import write_numpy_to_dense_tensor
from forgeml.image_uris import retrieve
from forgeml.runtime.packaging import make_tarball

FEATURES = 3
CUSTOM_CODE = """
import os
import time


def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    text = body if isinstance(body, str) else body.decode()
    if os.environ.get("CALLS_FILE"):
        with open(os.environ["CALLS_FILE"], "a") as calls:
            calls.write(text.replace("\\n", "|") + "\\n")
    if "sleep" in text:
        open(os.environ["STARTED_FILE"], "w").close()
        time.sleep(float(os.environ.get("SLEEP_SECONDS", "30")))
    if "boom" in text:
        raise RuntimeError("the model blew up")
    return "".join(f"{len(line)}\\n" for line in text.split("\\n") if line), "text/csv"
"""


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A trained Linear Learner (binary classifier) and a custom-code model, as model.tar.gz files."""
    root = tmp_path_factory.mktemp("transform-models")
    rng = np.random.default_rng(3)
    features = rng.normal(size=(400, FEATURES)).astype(np.float32)
    labels = (features @ np.array([1.5, -1.0, 0.5]) > 0).astype(np.float32)
    (root / "train").mkdir()
    write_csv(root / "train" / "data.csv", features, labels)
    train_builtin("linear-learner", {"predictor_type": "binary_classifier", "feature_dim": str(FEATURES),
                                     "epochs": "2"},
                  {"train": ChannelData(root / "train", "text/csv")}, root / "ll", root / "ll-output",
                  stream=io.StringIO())
    code = root / "custom" / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text(textwrap.dedent(CUSTOM_CODE))
    return {"ll": make_tarball([root / "ll"], root / "ll.tar.gz"), "ll-dir": root / "ll",
            "custom": make_tarball([root / "custom"], root / "custom.tar.gz")}


@pytest.fixture
def client(session: Session, artifacts: dict[str, Path]) -> Any:
    store = session.platform.artifacts
    store.put_file(artifacts["ll"], "s3://bkt/models/ll/model.tar.gz")
    store.put_file(artifacts["custom"], "s3://bkt/models/custom/model.tar.gz")
    client = session.sagemaker_client
    client.create_model(ModelName="ll", PrimaryContainer={"Image": retrieve("linear-learner"),
                                                          "ModelDataUrl": "s3://bkt/models/ll/model.tar.gz"})
    client.create_model(ModelName="custom", PrimaryContainer={
        "Image": "my-inference:1", "ModelDataUrl": "s3://bkt/models/custom/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    return client


class Direct:
    """The Linear Learner model called in this process: what a transform job's outputs must equal."""

    def __init__(self, model_dir: Path) -> None:
        self.algorithm = get_algorithm("linear-learner")
        self.model = self.algorithm.load_model(model_dir)

    def __call__(self, body: bytes, content_type: str, accept: str) -> bytes:
        answer, _ = self.algorithm.invoke(self.model, body, content_type, accept)
        return bytes(answer)


@pytest.fixture
def direct(artifacts: dict[str, Path]) -> Direct:
    return Direct(artifacts["ll-dir"])


def job(name: str, source: str, output: str, *, model: str = "ll", content_type: str | None = "text/csv",
        accept: str | None = None, assemble: str | None = "Line", **members: Any) -> dict[str, Any]:
    transform_input: dict[str, Any] = {"DataSource": {"S3DataSource": {"S3DataType": members.pop("data_type", "S3Prefix"),
                                                                      "S3Uri": source}}}
    for key in ("SplitType", "CompressionType"):
        if key in members:
            transform_input[key] = members.pop(key)
    if content_type:
        transform_input["ContentType"] = content_type
    transform_output: dict[str, Any] = {"S3OutputPath": output}
    if accept:
        transform_output["Accept"] = accept
    if assemble:
        transform_output["AssembleWith"] = assemble
    return {"TransformJobName": name, "ModelName": model, "TransformInput": transform_input,
            "TransformOutput": transform_output,
            "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": members.pop("instances", 1)},
            **members}


def run_all(client: Any, requests: Iterable[dict[str, Any]], timeout: float = 120) -> dict[str, dict[str, Any]]:
    """Create the jobs together (they run side by side) and wait until every one has ended."""
    names = [client.create_transform_job(**r)["TransformJobArn"].rsplit("/", 1)[1] for r in requests]
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(names):
        assert time.monotonic() < deadline, f"jobs still running after {timeout} s: {set(names) - set(done)}"
        for name in names:
            if name not in done:
                described = client.describe_transform_job(TransformJobName=name)
                if described["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
                    done[name] = described
        time.sleep(0.05)
    return done


def completed(results: dict[str, dict[str, Any]]) -> None:
    failures = {n: d.get("FailureReason") for n, d in results.items() if d["TransformJobStatus"] != "Completed"}
    assert not failures


def csv_rows(rows: np.ndarray, ids: bool = False) -> bytes:
    lines = [",".join(([f"id-{i}"] if ids else []) + [f"{v:.4f}" for v in row]) for i, row in enumerate(rows)]
    return ("\n".join(lines) + "\n").encode()


def decoded(body: bytes) -> list[dict[str, list[float]]]:
    records = []
    for payload in split_records(body):
        record = Record()
        record.ParseFromString(payload)
        records.append({key: list(value.float32_tensor.values) for key, value in record.label.items()})
    return records


def outputs(session: Session, prefix: str) -> dict[str, bytes]:
    store = session.platform.artifacts
    return {o.uri[len(prefix):]: store.get_bytes(o.uri) for o in store.list_objects(prefix)}


def log_lines(session: Session, name: str) -> list[tuple[str, str]]:
    return [(e["logStreamName"], e["message"]) for e in session.platform.transform_jobs.log_events(name)]


def test_every_split_type_and_batch_strategy(session: Session, client: Any, direct: Direct) -> None:
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(30, FEATURES)).astype(np.float32)
    store = session.platform.artifacts
    store.put_bytes(csv_rows(rows), "s3://bkt/csv/rows.csv")
    frames = io.BytesIO()
    write_numpy_to_dense_tensor(frames, rows)
    store.put_bytes(frames.getvalue(), "s3://bkt/rio/rows.rec")
    big = rng.normal(size=(60000, FEATURES)).astype(np.float32)
    store.put_bytes(csv_rows(big), "s3://bkt/big/rows.csv")
    requests = []
    for split in ("None", "Line"):
        for strategy in ("SingleRecord", "MultiRecord"):
            requests.append(job(f"csv-{split}-{strategy}".lower(), "s3://bkt/csv/", f"s3://bkt/out/csv-{split}-{strategy}",
                                accept="text/csv", SplitType=split, BatchStrategy=strategy))
    for strategy in ("SingleRecord", "MultiRecord"):
        requests.append(job(f"rio-{strategy}".lower(), "s3://bkt/rio/", f"s3://bkt/out/rio-{strategy}",
                            content_type="application/x-recordio-protobuf", accept="application/jsonlines",
                            SplitType="RecordIO", BatchStrategy=strategy))
    requests.append(job("rio-to-rio", "s3://bkt/rio/", "s3://bkt/out/rio-to-rio", assemble=None,
                        content_type="application/x-recordio-protobuf", accept="application/x-recordio-protobuf",
                        SplitType="RecordIO"))
    requests.append(job("big-multi", "s3://bkt/big/", "s3://bkt/out/big", accept="text/csv", SplitType="Line",
                        BatchStrategy="MultiRecord", MaxPayloadInMB=1, MaxConcurrentTransforms=2))
    results = run_all(client, requests)
    completed(results)
    written = outputs(session, "s3://bkt/out/")
    expected_csv = direct(csv_rows(rows), "text/csv", "text/csv")
    for split in ("None", "Line"):
        for strategy in ("SingleRecord", "MultiRecord"):
            assert written[f"csv-{split}-{strategy}/rows.csv.out"] == expected_csv
    expected_lines = direct(frames.getvalue(), "application/x-recordio-protobuf", "application/jsonlines")
    assert len(expected_lines.splitlines()) == 30
    assert written["rio-SingleRecord/rows.rec.out"] == expected_lines
    assert written["rio-MultiRecord/rows.rec.out"] == expected_lines
    # protobuf maps have no fixed order on the wire: compare the decoded records
    assert decoded(written["rio-to-rio/rows.rec.out"]) == decoded(
        direct(frames.getvalue(), "application/x-recordio-protobuf", "application/x-recordio-protobuf"))
    assert len(decoded(written["rio-to-rio/rows.rec.out"])) == 30
    # two requests instead of one: float32 sums may round differently in the last digit
    got = np.loadtxt(io.BytesIO(written["big/rows.csv.out"]), delimiter=",")
    want = np.loadtxt(io.BytesIO(direct(csv_rows(big), "text/csv", "text/csv")), delimiter=",")
    assert got.shape == want.shape == (60000, 2)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    messages = [message for _, message in log_lines(session, "big-multi")]
    assert "Processed 1/1 objects, 60,000 records" in messages
    assert ("Transforming 1 input object(s) on 1 instance(s): SplitType Line, BatchStrategy MultiRecord, "
            "MaxPayloadInMB 1, MaxConcurrentTransforms 2, AssembleWith Line") in messages
    assert results["csv-line-multirecord"]["BatchStrategy"] == "MultiRecord"


def test_filters_joins_and_assembly(session: Session, client: Any, direct: Direct) -> None:
    rng = np.random.default_rng(9)
    rows = rng.normal(size=(12, FEATURES)).astype(np.float32)
    store = session.platform.artifacts
    store.put_bytes(csv_rows(rows, ids=True), "s3://bkt/ids/rows.csv")
    records = [{"id": i, "features": [round(float(v), 4) for v in row]} for i, row in enumerate(rows)]
    store.put_bytes("".join(json.dumps(r) + "\n" for r in records).encode(), "s3://bkt/jsonl/rows.jsonl")
    store.put_bytes(csv_rows(rows[:3]), "s3://bkt/three/rows.csv")
    requests = [
        job("csv-join", "s3://bkt/ids/", "s3://bkt/out/csv-join", accept="text/csv", SplitType="Line",
            DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}),
        job("csv-join-all", "s3://bkt/ids/", "s3://bkt/out/csv-join-all", accept="text/csv", SplitType="Line",
            BatchStrategy="SingleRecord", DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input"}),
        job("jsonl-join", "s3://bkt/jsonl/", "s3://bkt/out/jsonl-join", content_type="application/jsonlines",
            accept="application/json", SplitType="Line", BatchStrategy="MultiRecord",
            DataProcessing={"InputFilter": "$.features", "JoinSource": "Input",
                            "OutputFilter": "$['id','SageMakerOutput']"}),
        job("json-none", "s3://bkt/three/", "s3://bkt/out/json-none", accept="application/json", assemble="None",
            SplitType="Line", BatchStrategy="SingleRecord"),
        job("json-line-single", "s3://bkt/three/", "s3://bkt/out/json-line-single", accept="application/json",
            SplitType="Line", BatchStrategy="SingleRecord"),
        job("json-line-multi", "s3://bkt/three/", "s3://bkt/out/json-line-multi", accept="application/json",
            SplitType="Line", BatchStrategy="MultiRecord"),
    ]
    completed(run_all(client, requests))
    written = outputs(session, "s3://bkt/out/")
    one_by_one = [direct(csv_rows(rows[i : i + 1]), "text/csv", "text/csv").decode().strip() for i in range(12)]
    assert written["csv-join/rows.csv.out"].decode() == "".join(
        f"id-{i},{answer.split(',')[-1]}\n" for i, answer in enumerate(one_by_one))
    assert written["csv-join-all/rows.csv.out"].decode() == "".join(
        f"{line},{answer}\n" for line, answer in zip(csv_rows(rows, ids=True).decode().splitlines(), one_by_one,
                                                     strict=True))
    joined = [json.loads(line) for line in written["jsonl-join/rows.jsonl.out"].decode().splitlines()]
    assert joined == [{"id": r["id"], "SageMakerOutput": json.loads(
        direct(json.dumps(r["features"]).encode(), "application/jsonlines", "application/json"))} for r in records]
    answers = [direct(csv_rows(rows[i : i + 1]), "text/csv", "application/json") for i in range(3)]
    assert answers[0].startswith(b'{"predictions": [{"score": ')
    assert written["json-none/rows.csv.out"] == b"".join(answers)
    assert written["json-line-single/rows.csv.out"] == b"".join(a + b"\n" for a in answers)
    assert written["json-line-multi/rows.csv.out"] == written["json-line-single/rows.csv.out"]


def test_objects_under_a_prefix_gzip_manifest_and_two_instances(session: Session, client: Any,
                                                               direct: Direct) -> None:
    rng = np.random.default_rng(11)
    store = session.platform.artifacts
    keys = ["a.csv.gz", "b/c.csv.gz", "b/d/e.csv.gz", "z.csv.gz"]
    expected = {}
    for index, key in enumerate(keys):
        rows = rng.normal(size=(5 + index, FEATURES)).astype(np.float32)
        store.put_bytes(gzip.compress(csv_rows(rows)), f"s3://bkt/many/{key}")
        expected[key] = direct(csv_rows(rows), "text/csv", "text/csv")
    store.put_bytes(json.dumps([{"prefix": "s3://bkt/many/"}, "b/c.csv.gz", "z.csv.gz"]).encode(),
                    "s3://bkt/lists/some.manifest")
    results = run_all(client, [
        job("many", "s3://bkt/many", "s3://bkt/out/many/", accept="text/csv", SplitType="Line",
            CompressionType="Gzip", instances=2),
        job("listed", "s3://bkt/lists/some.manifest", "s3://bkt/out/listed", accept="text/csv", SplitType="Line",
            CompressionType="Gzip", data_type="ManifestFile"),
    ])
    completed(results)
    written = outputs(session, "s3://bkt/out/")
    assert written == {**{f"many/{k}.out": v for k, v in expected.items()},
                       "listed/b/c.csv.gz.out": expected["b/c.csv.gz"], "listed/z.csv.gz.out": expected["z.csv.gz"]}
    streams = {stream for stream, _ in log_lines(session, "many")}
    assert len(streams) == 2 and all(s.startswith("many/i-") for s in streams)
    progress = sorted(message for _, message in log_lines(session, "many") if message.startswith("Processed"))
    assert progress[-2:] == ["Processed 2/2 objects, 12 records", "Processed 2/2 objects, 14 records"]


def test_a_bad_record_fails_its_object_and_names_it(session: Session, client: Any) -> None:
    store = session.platform.artifacts
    good = b"".join(f"{i}.0,1.0,2.0\n".encode() for i in range(10))
    store.put_bytes(good, "s3://bkt/bad/a-good.csv")
    lines = good.decode().splitlines()
    lines[6] = "1.0,abc,2.0"
    store.put_bytes(("\n".join(lines) + "\n").encode(), "s3://bkt/bad/b-bad.csv")
    store.put_bytes(good, "s3://bkt/bad/c-later.csv")
    store.put_bytes(b'{"features": [1, 2, 3]}\n{"features": [1, 2\n', "s3://bkt/badjson/x.jsonl")
    results = run_all(client, [
        job("bad-multi", "s3://bkt/bad/", "s3://bkt/out/bad-multi", accept="text/csv", SplitType="Line"),
        job("bad-single", "s3://bkt/bad/", "s3://bkt/out/bad-single", accept="text/csv", SplitType="Line",
            BatchStrategy="SingleRecord"),
        job("bad-json", "s3://bkt/badjson/", "s3://bkt/out/bad-json", content_type="application/jsonlines",
            SplitType="Line", DataProcessing={"InputFilter": "$.features"}),
    ])
    reason = ("ClientError: Model error for s3://bkt/bad/b-bad.csv, record 7: received client error (400) from the "
              "model with message \"could not parse value 'abc' as a number in CSV record 1\"")
    for name in ("bad-multi", "bad-single"):
        assert results[name]["TransformJobStatus"] == "Failed"
        assert results[name]["FailureReason"] == reason
        assert set(outputs(session, f"s3://bkt/out/{name}/")) == {"a-good.csv.out"}
        assert (f"{name}/", reason) in [(s[: len(name) + 1], m) for s, m in log_lines(session, name)]
    assert results["bad-json"]["FailureReason"].startswith(
        "ClientError: Cannot parse s3://bkt/badjson/x.jsonl, record 2: the input is not valid JSON: ")
    assert outputs(session, "s3://bkt/out/bad-json/") == {}


def test_model_errors_are_retried_then_fail_the_job(session: Session, client: Any, tmp_path: Path) -> None:
    store = session.platform.artifacts
    store.put_bytes(b"fine\nboom\nfine too\n", "s3://bkt/boom/x.csv")
    store.put_bytes(b"one\ntwo\nthree\n", "s3://bkt/fine/y.csv")
    calls = tmp_path / "calls.txt"
    results = run_all(client, [
        job("boom", "s3://bkt/boom/", "s3://bkt/out/boom", model="custom", SplitType="Line",
            BatchStrategy="SingleRecord", ModelClientConfig={"InvocationsMaxRetries": 1},
            Environment={"CALLS_FILE": str(calls)}),
        job("custom-multi", "s3://bkt/fine/", "s3://bkt/out/custom", model="custom", SplitType="Line",
            MaxConcurrentTransforms=3),
    ])
    assert results["boom"]["FailureReason"] == (
        "ClientError: Model error for s3://bkt/boom/x.csv, record 2: received server error (500) from the model "
        "with message \"RuntimeError: the model blew up\"")
    calls_made = calls.read_text().splitlines()
    assert calls_made[:3] == ["fine", "boom", "boom"]  # the 500 was retried once, then the job failed
    assert calls_made.count("boom") == 2
    assert outputs(session, "s3://bkt/out/boom/") == {}
    assert results["custom-multi"]["TransformJobStatus"] == "Completed"
    assert results["custom-multi"]["MaxConcurrentTransforms"] == 3
    assert outputs(session, "s3://bkt/out/custom/") == {"y.csv.out": b"3\n3\n5\n"}


def test_stop_ends_the_job_stopped_without_partial_outputs(session: Session, client: Any, tmp_path: Path) -> None:
    store = session.platform.artifacts
    store.put_bytes(b"a\nb\n", "s3://bkt/slow/1-fast.csv")
    store.put_bytes(b"c\nsleep\nd\n", "s3://bkt/slow/2-slow.csv")
    started = tmp_path / "started"
    client.create_transform_job(**job("slow", "s3://bkt/slow/", "s3://bkt/out/slow", model="custom",
                                      SplitType="Line", Environment={"STARTED_FILE": str(started)}))
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "the slow request never reached the model"
        assert client.describe_transform_job(TransformJobName="slow")["TransformJobStatus"] == "InProgress"
        time.sleep(0.05)
    client.stop_transform_job(TransformJobName="slow")
    assert client.describe_transform_job(TransformJobName="slow")["TransformJobStatus"] in ("Stopping", "Stopped")
    client.stop_transform_job(TransformJobName="slow")  # stopping twice is fine
    while client.describe_transform_job(TransformJobName="slow")["TransformJobStatus"] == "Stopping":
        assert time.monotonic() < deadline + 30
        time.sleep(0.05)
    final = client.describe_transform_job(TransformJobName="slow")
    assert final["TransformJobStatus"] == "Stopped"
    assert "FailureReason" not in final
    assert outputs(session, "s3://bkt/out/slow/") == {"1-fast.csv.out": b"1\n1\n"}


def test_a_model_that_cannot_be_staged_or_started_fails_the_job(session: Session, client: Any) -> None:
    session.platform.artifacts.put_bytes(b"1.0,2.0,3.0\n", "s3://bkt/one/x.csv")
    client.create_model(ModelName="no-data", PrimaryContainer={"Image": retrieve("linear-learner"),
                                                               "ModelDataUrl": "s3://bkt/missing/model.tar.gz"})
    client.create_model(ModelName="no-program", PrimaryContainer={
        "Image": "my-inference:1", "ModelDataUrl": "s3://bkt/models/custom/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "missing.py"}})
    results = run_all(client, [job("no-data", "s3://bkt/one/", "s3://bkt/out/a", model="no-data"),
                               job("no-program", "s3://bkt/one/", "s3://bkt/out/b", model="no-program")])
    assert results["no-data"]["FailureReason"] == (
        "ClientError: Cannot stage model no-data: the model data s3://bkt/missing/model.tar.gz does not exist")
    reason = results["no-program"]["FailureReason"]
    assert reason.startswith("ClientError: The model server for model no-program did not start: the model server "
                             "worker exited with status 1: ... forgeml-worker: the inference program missing.py is "
                             "not in ")
    assert outputs(session, "s3://bkt/out/") == {}
