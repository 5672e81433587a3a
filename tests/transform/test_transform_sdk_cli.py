"""``forgeml.transformer.Transformer`` (sagemaker's API) and ``forgeml transform`` over a tiny custom-code model."""

from __future__ import annotations

import argparse
import re
import tarfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from forgeml import Session, UnexpectedStatusException
from forgeml.cli.transform import add_transform_parser
from forgeml.transformer import Transformer

# answers each CSV line with its length; "boom" fails, "sleep" waits
CODE = """
import time


def model_fn(model_dir):
    return None


def transform_fn(model, body, content_type, accept):
    if "boom" in body:
        raise RuntimeError("the model blew up")
    if "sleep" in body:
        time.sleep(30)
    return "".join(f"{len(line)}\\n" for line in body.split("\\n") if line), "text/csv"
"""


@pytest.fixture
def model(session: Session, tmp_path: Path) -> str:
    code = tmp_path / "model" / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text(textwrap.dedent(CODE))
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(code, arcname="code")
    session.platform.artifacts.put_file(archive, "s3://bkt/model/model.tar.gz")
    session.sagemaker_client.create_model(ModelName="counter", PrimaryContainer={
        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/line-counter:1",
        "ModelDataUrl": "s3://bkt/model/model.tar.gz", "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    store = session.platform.artifacts
    store.put_bytes(b"a\nbb\nccc\n", "s3://bkt/in/x.csv")
    store.put_bytes(b"fine\nboom\n", "s3://bkt/broken/y.csv")
    store.put_bytes(b"sleep\n", "s3://bkt/slow/z.csv")
    return "counter"


def test_transform_waits_with_dots_and_writes_to_the_default_path(session: Session, model: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    transformer = Transformer(model, 1, "ml.m5.large", assemble_with="Line", accept="text/csv",
                              sagemaker_session=session)
    transformer.transform("s3://bkt/in/", content_type="text/csv", split_type="Line", logs=False)
    assert re.fullmatch(r"\.+!\n", capsys.readouterr().out)
    job = transformer.latest_transform_job
    assert job is not None
    assert re.fullmatch(r"line-counter-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-\d{3}", job.name)
    assert transformer.output_path == f"s3://{session.default_bucket()}/{job.name}"
    assert session.platform.artifacts.get_bytes(f"{transformer.output_path}/x.csv.out") == b"1\n2\n3\n"
    assert job.describe()["TransformJobStatus"] == "Completed"
    # each job gets its own default output path; one the user sets stays
    bucket = session.default_bucket()
    assert transformer.transform_request("s3://bkt/in/", job_name="next")["TransformOutput"]["S3OutputPath"] == \
        f"s3://{bucket}/next"
    transformer.output_path = "s3://bkt/mine"
    assert transformer.transform_request("s3://bkt/in/", job_name="other")["TransformOutput"]["S3OutputPath"] == \
        "s3://bkt/mine"
    transformer.output_path = f"s3://{bucket}/{job.name}"

    attached = Transformer.attach(job.name, sagemaker_session=session)
    assert (attached.model_name, attached.instance_count, attached.instance_type, attached.output_path,
            attached.accept, attached.assemble_with, attached.strategy, attached.max_payload) == (
        model, 1, "ml.m5.large", transformer.output_path, "text/csv", "Line", "MultiRecord", 6)
    assert attached.latest_transform_job is not None and attached.latest_transform_job.name == job.name
    assert attached.wait(logs=False)["TransformJobStatus"] == "Completed"
    assert capsys.readouterr().out == "!\n"


def test_transform_request_and_logs(session: Session, model: str, capsys: pytest.CaptureFixture[str]) -> None:
    transformer = Transformer(model, 2, "ml.c5.xlarge", strategy="SingleRecord", output_path="s3://bkt/out",
                              max_concurrent_transforms=2, max_payload=3, env={"MODE": "test"},
                              base_transform_job_name="counting", tags=[{"Key": "k", "Value": "v"}],
                              sagemaker_session=session)
    request = transformer.transform_request("s3://bkt/in/", content_type="text/csv", split_type="Line",
                                            job_name="counting-1", input_filter="$[0]", join_source="Input",
                                            model_client_config={"InvocationsMaxRetries": 0})
    assert request == {
        "TransformJobName": "counting-1", "ModelName": model,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bkt/in/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": "s3://bkt/out"},
        "TransformResources": {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2},
        "BatchStrategy": "SingleRecord", "MaxConcurrentTransforms": 2, "MaxPayloadInMB": 3,
        "Environment": {"MODE": "test"}, "Tags": [{"Key": "k", "Value": "v"}],
        "ModelClientConfig": {"InvocationsMaxRetries": 0},
        "DataProcessing": {"InputFilter": "$[0]", "JoinSource": "Input"},
    }
    transformer.transform("s3://bkt/in/", content_type="text/csv", split_type="Line", job_name="counting-2")
    out = capsys.readouterr().out
    assert "Model server listening on http://127.0.0.1:" in out
    assert "Processed 1/1 objects, 3 records\n" in out
    assert out.endswith("!\n")
    assert session.platform.artifacts.get_bytes("s3://bkt/out/x.csv.out") == b"1\n2\n3\n"


def test_a_failed_job_raises_with_its_reason_and_a_stop_waits(session: Session, model: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    transformer = Transformer(model, 1, "ml.m5.large", output_path="s3://bkt/failed", sagemaker_session=session)
    with pytest.raises(UnexpectedStatusException) as caught:
        transformer.transform("s3://bkt/broken/", content_type="text/csv", split_type="Line", job_name="broken",
                              logs=False)
    assert caught.value.message == (
        "Error for Transform job broken: Failed. Reason: ClientError: Model error for s3://bkt/broken/y.csv, record "
        "2: received server error (500) from the model with message \"RuntimeError: the model blew up\". Check the "
        "job's log (log group /aws/sagemaker/TransformJobs, or Transformer.wait(logs=True)) for details.")
    assert capsys.readouterr().out.endswith("*\n")
    with pytest.raises(ValueError, match="No transform job available"):
        Transformer(model, 1, "ml.m5.large", sagemaker_session=session).wait()

    slow = Transformer(model, 1, "ml.m5.large", output_path="s3://bkt/slow-out", sagemaker_session=session)
    slow.transform("s3://bkt/slow/", content_type="text/csv", job_name="slow", wait=False)
    deadline = time.monotonic() + 60
    while not any("listening" in e["message"] for e in session.platform.transform_jobs.log_events("slow")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    slow.stop_transform_job()
    assert session.sagemaker_client.describe_transform_job(TransformJobName="slow")["TransformJobStatus"] == "Stopped"
    assert session.platform.artifacts.list_objects("s3://bkt/slow-out/") == []


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="forgeml")
    add_transform_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_runs_a_job_and_lists_its_outputs(session: Session, model: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--model", model, "--content-type", "text/csv", "--split-type", "Line", "--accept", "text/csv"]
    assert cli(["transform", *common, "--input", "s3://bkt/in/", "--output", "s3://bkt/cli",
                "--assemble-with", "Line", "--job-name", "cli-job"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Transform job cli-job\n.")
    assert "!\ncli-job: Completed, 1 output object(s):\n  s3://bkt/cli/x.csv.out  6 bytes\n" in out

    assert cli(["transform", *common, "--input", "s3://bkt/broken/", "--output", "s3://bkt/cli-broken",
                "--job-name", "cli-broken"]) == 1
    out = capsys.readouterr().out
    assert "cli-broken: Failed\n  ClientError: Model error for s3://bkt/broken/y.csv, record 2: received server " \
           "error (500)" in out

    assert cli(["transform", *common, "--input", "s3://bkt/in/", "--output", "s3://bkt/cli-later",
                "--job-name", "cli-later", "--no-wait", "--instance-type", "ml.c5.large", "--max-payload", "2",
                "--max-concurrent", "2", "--strategy", "SingleRecord"]) == 0
    assert capsys.readouterr().out == "Transform job cli-later\n"
    described: dict[str, Any] = session.sagemaker_client.describe_transform_job(TransformJobName="cli-later")
    assert (described["TransformResources"]["InstanceType"], described["MaxPayloadInMB"],
            described["MaxConcurrentTransforms"], described["BatchStrategy"]) == ("ml.c5.large", 2, 2, "SingleRecord")
    with pytest.raises(SystemExit):
        cli(["transform", "--model", model])  # --input and --output are required
    deadline = time.monotonic() + 60
    while described["TransformJobStatus"] == "InProgress":  # let it end before the test's home goes away
        assert time.monotonic() < deadline
        time.sleep(0.05)
        described = session.sagemaker_client.describe_transform_job(TransformJobName="cli-later")
    assert described["TransformJobStatus"] == "Completed"
