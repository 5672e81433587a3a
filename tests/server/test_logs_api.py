"""Job logs through boto3's CloudWatch Logs client: streams, events, tailing, filtering, paging, errors."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.server.conftest import RunningServer, training_request, wait_until

GROUP = "/aws/sagemaker/TrainingJobs"
BASE = 1_700_000_000.0  # the events written below are at BASE + n seconds


def write_events(server: RunningServer, stream: str, events: list[tuple[float, str]]) -> None:
    """Log lines as a job's runner stores them: (seconds after BASE, message)."""
    from forgeml.store import training_jobs

    training_jobs.append_output(server.platform.db, stream.split("/")[0],
                                [(stream, BASE + offset, message) for offset, message in events], [])


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


@pytest.fixture
def logs(server: RunningServer) -> Any:
    write_events(server, "job-a/algo-1-100", [(0, "a0 start"), (1, "a1 loss=0.5"), (2, "a2 loss=0.25"), (3, "a3 done")])
    write_events(server, "job-a/algo-2-100", [(1.5, "b0 LOSS=9"), (4, "b1 loss=0.1")])
    write_events(server, "job-b/algo-1-200", [(5, "c0 other job")])
    return server.client("logs")


def test_describe_log_streams_by_prefix_order_and_pages(logs: Any, server: RunningServer) -> None:
    streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="job-a/")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["job-a/algo-1-100", "job-a/algo-2-100"]
    first = streams[0]
    assert first["firstEventTimestamp"] == int(BASE * 1000) and first["lastEventTimestamp"] == int((BASE + 3) * 1000)
    assert first["creationTime"] == first["firstEventTimestamp"]
    assert first["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{GROUP}:log-stream:job-a/algo-1-100"
    assert first["storedBytes"] == sum(len(m) for m in ("a0 start", "a1 loss=0.5", "a2 loss=0.25", "a3 done"))

    # the sagemaker SDK's call: orderBy LogStreamName with a limit, and no nextToken when all fit
    sdk_call = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="job-a/", orderBy="LogStreamName",
                                         limit=2)
    assert "nextToken" not in sdk_call and len(sdk_call["logStreams"]) == 2

    by_time = logs.describe_log_streams(logGroupName=GROUP, orderBy="LastEventTime", descending=True)["logStreams"]
    assert [s["logStreamName"] for s in by_time] == ["job-b/algo-1-200", "job-a/algo-2-100", "job-a/algo-1-100"]
    pages = list(logs.get_paginator("describe_log_streams").paginate(logGroupName=GROUP,
                                                                     PaginationConfig={"PageSize": 2}))
    assert [[s["logStreamName"] for s in p["logStreams"]] for p in pages] == [
        ["job-a/algo-1-100", "job-a/algo-2-100"], ["job-b/algo-1-200"]]
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{GROUP}"
    assert len(logs.describe_log_streams(logGroupIdentifier=arn)["logStreams"]) == 3

    assert logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="nothing/")["logStreams"] == []
    assert logs.describe_log_streams(logGroupName="/aws/sagemaker/TransformJobs")["logStreams"] == []
    with pytest.raises(ClientError) as no_group:
        logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/none")
    assert error_of(no_group) == (400, "ResourceNotFoundException", "The specified log group does not exist.")
    with pytest.raises(ClientError) as conflicting:
        logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="job-a/", orderBy="LastEventTime")
    assert error_of(conflicting) == (400, "InvalidParameterException",
                                     "Cannot order by LastEventTime with a logStreamNamePrefix.")
    with pytest.raises(ClientError) as bad_token:
        logs.describe_log_streams(logGroupName=GROUP, nextToken="forged")
    assert error_of(bad_token) == (400, "InvalidParameterException", "The specified nextToken is invalid.")


def test_get_log_events_forward_backward_and_time_window(logs: Any) -> None:
    stream = {"logGroupName": GROUP, "logStreamName": "job-a/algo-1-100"}
    head = logs.get_log_events(**stream, startFromHead=True, limit=3)
    assert [e["message"] for e in head["events"]] == ["a0 start", "a1 loss=0.5", "a2 loss=0.25"]
    assert head["events"][0]["timestamp"] == int(BASE * 1000) == head["events"][0]["ingestionTime"]
    rest = logs.get_log_events(**stream, nextToken=head["nextForwardToken"])
    assert [e["message"] for e in rest["events"]] == ["a3 done"]
    end = logs.get_log_events(**stream, nextToken=rest["nextForwardToken"])
    assert end["events"] == [] and end["nextForwardToken"] == rest["nextForwardToken"]

    latest = logs.get_log_events(**stream, limit=2)  # startFromHead defaults to false: the newest events
    assert [e["message"] for e in latest["events"]] == ["a2 loss=0.25", "a3 done"]
    earlier = logs.get_log_events(**stream, limit=2, nextToken=latest["nextBackwardToken"])
    assert [e["message"] for e in earlier["events"]] == ["a0 start", "a1 loss=0.5"]
    before_start = logs.get_log_events(**stream, nextToken=earlier["nextBackwardToken"])
    assert before_start["events"] == []

    window = logs.get_log_events(**stream, startFromHead=True, startTime=int((BASE + 1) * 1000),
                                 endTime=int((BASE + 3) * 1000))
    assert [e["message"] for e in window["events"]] == ["a1 loss=0.5", "a2 loss=0.25"]

    with pytest.raises(ClientError) as no_stream:
        logs.get_log_events(logGroupName=GROUP, logStreamName="job-a/algo-9-100")
    assert error_of(no_stream) == (400, "ResourceNotFoundException", "The specified log stream does not exist.")
    with pytest.raises(ClientError) as bad_token:
        logs.get_log_events(**stream, nextToken="x/12")
    assert error_of(bad_token) == (400, "InvalidParameterException", "The specified nextToken is invalid.")


def test_filter_log_events_by_stream_text_time_and_pages(logs: Any) -> None:
    matched = logs.filter_log_events(logGroupName=GROUP, filterPattern="loss=")["events"]
    assert [(e["logStreamName"], e["message"]) for e in matched] == [
        ("job-a/algo-1-100", "a1 loss=0.5"), ("job-a/algo-1-100", "a2 loss=0.25"), ("job-a/algo-2-100", "b1 loss=0.1")]
    assert all(e["eventId"] and e["timestamp"] == e["ingestionTime"] for e in matched)
    assert [e["message"] for e in logs.filter_log_events(logGroupName=GROUP, filterPattern='"LOSS"')["events"]] == [
        "b0 LOSS=9"]
    named = logs.filter_log_events(logGroupName=GROUP, logStreamNames=["job-b/algo-1-200"])["events"]
    assert [e["message"] for e in named] == ["c0 other job"]
    prefixed = logs.filter_log_events(logGroupName=GROUP, logStreamNamePrefix="job-a/algo-2")["events"]
    assert [e["message"] for e in prefixed] == ["b0 LOSS=9", "b1 loss=0.1"]
    window = logs.filter_log_events(logGroupName=GROUP, startTime=int((BASE + 2) * 1000),
                                    endTime=int((BASE + 5) * 1000))["events"]
    assert [e["message"] for e in window] == ["a2 loss=0.25", "a3 done", "b1 loss=0.1"]

    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName=GROUP,
                                                                  PaginationConfig={"PageSize": 3}))
    assert [len(p["events"]) for p in pages] == [3, 3, 1]
    assert "nextToken" not in pages[-1]
    assert len({e["eventId"] for p in pages for e in p["events"]}) == 7

    with pytest.raises(ClientError) as both:
        logs.filter_log_events(logGroupName=GROUP, logStreamNames=["job-b/algo-1-200"], logStreamNamePrefix="job")
    assert error_of(both)[:2] == (400, "InvalidParameterException")


def test_tailing_a_running_job_until_it_ends(server: RunningServer) -> None:
    """What the sagemaker SDK's logs_for_job does: find the stream, follow nextForwardToken, stop after the end."""
    sm = server.client("sagemaker")
    logs = server.client("logs")
    code = "import time\nfor i in range(6):\n    print(f'step {i}', flush=True)\n    time.sleep(0.2)\n"
    sm.create_training_job(**training_request("tail-job", code))
    streams = wait_until(lambda: logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="tail-job/",
                                                           orderBy="LogStreamName", limit=1)["logStreams"],
                         what="the job's log stream")
    stream = streams[0]["logStreamName"]
    assert stream.startswith("tail-job/algo-1-")
    seen: list[str] = []
    token: str | None = None
    finished = False
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, f"still tailing after 60 s; seen {seen}"
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startTime=0, startFromHead=True,
                                   **({"nextToken": token} if token else {}))
        assert page["nextForwardToken"].startswith("f/")
        seen += [e["message"] for e in page["events"]]
        token = page["nextForwardToken"]
        if finished and not page["events"]:
            break
        if not page["events"]:
            status = sm.describe_training_job(TrainingJobName="tail-job")["TrainingJobStatus"]
            finished = status in ("Completed", "Failed", "Stopped")
            time.sleep(0.1)
    assert [line for line in seen if line.startswith("step ")] == [f"step {i}" for i in range(6)]
    assert sm.describe_training_job(TrainingJobName="tail-job")["TrainingJobStatus"] == "Completed"


def test_transform_job_logs_are_in_their_own_group(server: RunningServer, linear_learner_model: Any) -> None:
    sm = server.client("sagemaker")
    sm.create_model(**linear_learner_model("logs-batch-model"))
    server.platform.artifacts.ensure_bucket("logs-batch")
    server.platform.artifacts.put_bytes(b"1,2,3,4\n", "s3://logs-batch/in/rows.csv")
    sm.create_transform_job(TransformJobName="logs-batch", ModelName="logs-batch-model",
                            TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                            "S3Uri": "s3://logs-batch/in/"}},
                                            "ContentType": "text/csv"},
                            TransformOutput={"S3OutputPath": "s3://logs-batch/out/"},
                            TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="logs-batch",
                                                             WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    logs = server.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TransformJobs",
                                        logStreamNamePrefix="logs-batch/")["logStreams"]
    assert streams and all(s["logStreamName"].startswith("logs-batch/") for s in streams)
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TransformJobs",
                                 logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"]
    assert events
    assert logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix="logs-batch/")["logStreams"] == []


def test_an_endpoints_worker_output_is_in_its_log_group(server: RunningServer, tmp_path: Any) -> None:
    """``/aws/sagemaker/Endpoints/<name>``: the group a ModelError's message points to."""
    import tarfile
    import textwrap

    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text(textwrap.dedent("""
        def model_fn(model_dir):
            return None

        def transform_fn(model, body, content_type, accept):
            raise ValueError("cannot read " + (body if isinstance(body, str) else body.decode()))
    """))
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(code, arcname="code")
    server.platform.artifacts.ensure_bucket("logged")
    server.platform.artifacts.put_file(archive, "s3://logged/model.tar.gz")
    sm, runtime, logs = server.client("sagemaker"), server.client("sagemaker-runtime"), server.client("logs")
    sm.create_model(ModelName="failing", ExecutionRoleArn="arn:aws:iam::000000000000:role/forgeml", PrimaryContainer={
        "Image": "forgeml/script-mode:latest", "ModelDataUrl": "s3://logged/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    sm.create_endpoint_config(EndpointConfigName="failing", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "failing", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="failing", EndpointConfigName="failing")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="failing", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with pytest.raises(ClientError) as refused:
        runtime.invoke_endpoint(EndpointName="failing", Body=b"payload-42", ContentType="text/plain")
    assert refused.value.response["Error"]["Code"] == "ModelError"
    group = "/aws/sagemaker/Endpoints/failing"
    assert group in refused.value.response["Error"]["Message"]

    def traceback_logged() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = logs.filter_log_events(logGroupName=group, filterPattern="payload-42")["events"]
        return events

    events = wait_until(traceback_logged, timeout=10, what="the model's error in the endpoint's log group")
    assert all(e["logStreamName"].startswith("AllTraffic/i-") for e in events)
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [events[0]["logStreamName"]]
