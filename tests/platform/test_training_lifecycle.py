"""Training jobs end to end through the SDK: status transitions, outputs, logs, metrics, failures."""

from __future__ import annotations

import io
import json
import os
import signal
import tarfile
import time
from pathlib import Path

import pytest

from forgeml import Estimator, Session, UnexpectedStatusException
from forgeml.store import training_jobs as repo

HAPPY_PATH = [
    ("Starting", "Starting the training job"),
    ("Starting", "Preparing the instances for training"),
    ("Downloading", "Downloading input data"),
    ("Training", "Training image download completed. Training in progress."),
    ("Uploading", "Uploading generated training model"),
    ("Completed", "Training job completed"),
]


def script_estimator(session: Session, source: Path, entry: str = "train.py", **kwargs) -> Estimator:  # type: ignore[no-untyped-def]
    return Estimator(entry_point=entry, source_dir=str(source), sagemaker_session=session, **kwargs)


def wait_until(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def model_files(session: Session, uri: str) -> dict[str, bytes]:
    data = session.platform.artifacts.get_bytes(uri)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_completed_job_walks_every_status_and_uploads_artifacts(session: Session, write_script, tmp_path: Path) -> None:
    source = write_script("train.py", """
        import argparse, json, os
        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--name", type=str)
        args = parser.parse_args()
        assert args.epochs == 3 and args.name == "ufo", args
        assert json.loads(os.environ["SM_HPS"]) == {"epochs": 3, "name": "ufo"}
        assert os.environ["SM_HP_EPOCHS"] == "3"
        assert json.loads(os.environ["SM_CHANNELS"]) == ["train"]
        print("rows:", open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "a.csv")).read().strip())
        open(os.path.join(os.environ["SM_MODEL_DIR"], "weights.txt"), "w").write("42")
        open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "report.txt"), "w").write("ok")
        for epoch in range(3):
            print(f"epoch={epoch} loss={1.0 / (epoch + 1)};")
    """)
    data = tmp_path / "a.csv"
    data.write_text("1,2,3\n")
    uri = session.upload_data(str(data), key_prefix="lifecycle")
    estimator = script_estimator(session, source, hyperparameters={"epochs": 3, "name": "ufo"},
                                 metric_definitions=[{"Name": "train:loss", "Regex": r"loss=([0-9.]+);"}])
    out = io.StringIO()
    estimator.fit({"train": uri}, wait=False)
    job = estimator.latest_training_job
    assert job is not None
    session.logs_for_job(job.name, wait=True, stream=out)
    description = job.describe()

    assert description["TrainingJobStatus"] == "Completed"
    assert description["SecondaryStatus"] == "Completed"
    transitions = [(t["Status"], t["StatusMessage"]) for t in description["SecondaryStatusTransitions"]]
    assert transitions == HAPPY_PATH
    for earlier, later in zip(description["SecondaryStatusTransitions"], description["SecondaryStatusTransitions"][1:], strict=False):
        assert earlier["EndTime"] == later["StartTime"]
    assert description["TrainingStartTime"] <= description["TrainingEndTime"]
    assert description["BillableTimeInSeconds"] >= 1
    assert description["FinalMetricDataList"][0]["MetricName"] == "train:loss"
    assert description["FinalMetricDataList"][0]["Value"] == pytest.approx(1 / 3)
    series = session.platform.training_jobs.metric_series(job.name, "train:loss")
    assert [p["Value"] for p in series] == pytest.approx([1.0, 0.5, 1 / 3])

    assert estimator.model_data.endswith(f"/{job.name}/output/model.tar.gz")
    assert model_files(session, estimator.model_data) == {"weights.txt": b"42"}
    output_uri = estimator.model_data.replace("model.tar.gz", "output.tar.gz")
    assert model_files(session, output_uri)["report.txt"] == b"ok"

    printed = out.getvalue()
    assert "Starting - Starting the training job" in printed
    assert "rows: 1,2,3" in printed
    assert "Completed - Training job completed" in printed
    assert "Billable seconds:" in printed
    assert printed.index("Invoking user script") < printed.index("Uploading - Uploading generated training model")


def test_config_files_follow_the_opt_ml_contract(session: Session, write_script, tmp_path: Path) -> None:
    source = write_script("train.py", """
        import json, os
        config = os.environ["SM_INPUT_CONFIG_DIR"]
        for name in ("hyperparameters.json", "inputdataconfig.json", "resourceconfig.json"):
            print(name, open(os.path.join(config, name)).read())
    """)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.csv").write_text("1\n")
    uri = session.upload_data(str(tmp_path / "d"), key_prefix="contract")
    estimator = script_estimator(session, source, hyperparameters={"lr": 0.1})
    from forgeml.inputs import TrainingInput

    estimator.fit({"train": TrainingInput(uri, content_type="text/csv")}, logs=False)
    job = estimator.latest_training_job
    assert job is not None
    lines = {e["message"].split(" ", 1)[0]: e["message"].split(" ", 1)[1]
             for e in session.platform.logs.job_events(job.name) if e["message"].endswith("}")
             and e["message"].split(" ", 1)[0].endswith(".json")}
    hps = json.loads(lines["hyperparameters.json"])
    assert hps["lr"] == "0.1" and json.loads(hps["sagemaker_program"]) == "train.py"
    assert json.loads(lines["inputdataconfig.json"]) == {"train": {
        "ContentType": "text/csv", "TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
        "RecordWrapperType": "None"}}
    resources = json.loads(lines["resourceconfig.json"])
    assert resources["current_host"] == "algo-1" and resources["hosts"] == ["algo-1"]


def test_crashing_script_fails_with_the_error_in_failure_reason(session: Session, write_script) -> None:
    source = write_script("train.py", """
        import sys
        print("about to fail")
        raise ValueError("learning rate must be positive")
    """)
    estimator = script_estimator(session, source)
    with pytest.raises(UnexpectedStatusException) as raised:
        estimator.fit(logs=False)
    assert raised.value.actual_status == "Failed"
    description = estimator.latest_training_job.describe()  # type: ignore[union-attr]
    assert description["TrainingJobStatus"] == "Failed"
    assert description["SecondaryStatus"] == "Failed"
    reason = description["FailureReason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError")
    assert "ExitCode 1" in reason
    assert "learning rate must be positive" in reason
    assert "learning rate must be positive" in str(raised.value)


def test_failure_file_becomes_the_failure_reason(session: Session, write_script) -> None:
    source = write_script("train.py", """
        import os, sys
        path = os.path.join(os.environ["SM_OUTPUT_DIR"], "failure")
        open(path, "w").write("ClientError: feature_dim=22 but the train channel has 21 features")
        sys.exit(3)
    """)
    estimator = script_estimator(session, source)
    with pytest.raises(UnexpectedStatusException):
        estimator.fit(logs=False)
    reason = estimator.latest_training_job.describe()["FailureReason"]  # type: ignore[union-attr]
    assert reason == "ClientError: feature_dim=22 but the train channel has 21 features"


def test_stop_sends_sigterm_and_keeps_the_model(session: Session, write_script) -> None:
    source = write_script("train.py", """
        import os, signal, sys, time
        def on_term(signum, frame):
            open(os.path.join(os.environ["SM_MODEL_DIR"], "saved-on-sigterm"), "w").write("yes")
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        print("ready", flush=True)
        time.sleep(60)
    """)
    estimator = script_estimator(session, source)
    estimator.fit(wait=False)
    job = estimator.latest_training_job
    assert job is not None
    wait_until(lambda: any(e["message"] == "ready" for e in session.platform.logs.job_events(job.name)))
    session.stop_training_job(job.name)
    assert job.describe()["TrainingJobStatus"] in ("Stopping", "Stopped")
    wait_until(lambda: job.describe()["TrainingJobStatus"] == "Stopped")
    description = job.describe()
    assert description["SecondaryStatus"] == "Stopped"
    statuses = [t["Status"] for t in description["SecondaryStatusTransitions"]]
    assert "Stopping" in statuses and statuses[-1] == "Stopped"
    assert model_files(session, description["ModelArtifacts"]["S3ModelArtifacts"]) == {"saved-on-sigterm": b"yes"}
    with pytest.raises(Exception, match="status Stopped"):
        session.stop_training_job(job.name)


def test_stop_kills_a_script_that_ignores_sigterm(session: Session, write_script) -> None:
    source = write_script("train.py", """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stubborn", flush=True)
        time.sleep(120)
    """)
    estimator = script_estimator(session, source)
    estimator.fit(wait=False)
    job = estimator.latest_training_job
    assert job is not None
    wait_until(lambda: any(e["message"] == "stubborn" for e in session.platform.logs.job_events(job.name)))
    started = time.time()
    session.stop_training_job(job.name)
    wait_until(lambda: job.describe()["TrainingJobStatus"] == "Stopped", timeout=30)
    assert time.time() - started < 20  # grace period is 2 s in tests, then SIGKILL


def test_max_runtime_stops_the_job(session: Session, write_script) -> None:
    source = write_script("train.py", """
        import time
        time.sleep(60)
    """)
    estimator = script_estimator(session, source, max_run=1)
    estimator.fit(logs=False)
    description = estimator.latest_training_job.describe()  # type: ignore[union-attr]
    assert description["TrainingJobStatus"] == "Stopped"
    assert description["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_killed_user_process_fails_the_job(session: Session, write_script) -> None:
    source = write_script("train.py", """
        import os, time
        print("pid", os.getpid(), flush=True)
        time.sleep(60)
    """)
    estimator = script_estimator(session, source)
    estimator.fit(wait=False)
    job = estimator.latest_training_job
    assert job is not None
    pids: list[int] = []

    def found_pid() -> bool:
        for event in session.platform.logs.job_events(job.name):
            if event["message"].startswith("pid "):
                pids.append(int(event["message"].split()[1]))
                return True
        return False

    wait_until(found_pid)
    os.kill(pids[0], signal.SIGKILL)
    wait_until(lambda: job.describe()["TrainingJobStatus"] == "Failed")
    reason = job.describe()["FailureReason"]
    assert "ExitCode -9" in reason and "SIGKILL" in reason


def test_killed_worker_ends_failed_and_the_caller_survives(session: Session, write_script) -> None:
    source = write_script("train.py", """
        import time
        print("running", flush=True)
        time.sleep(60)
    """)
    estimator = script_estimator(session, source)
    estimator.fit(wait=False)
    job = estimator.latest_training_job
    assert job is not None
    wait_until(lambda: any(e["message"] == "running" for e in session.platform.logs.job_events(job.name)))
    row = repo.get_job(session.platform.db, job.name)
    assert row is not None and row["runner_pid"]
    os.kill(row["runner_pid"], signal.SIGKILL)
    wait_until(lambda: job.describe()["TrainingJobStatus"] == "Failed")
    description = job.describe()
    assert description["FailureReason"].startswith("InternalServerError: the job's worker process ended unexpectedly")
    # the record stays whole: its request and transitions are still there
    assert description["SecondaryStatusTransitions"][0]["Status"] == "Starting"


def test_empty_and_missing_channels_fail_with_client_error(session: Session, write_script) -> None:
    source = write_script("train.py", "print('never runs')\n")
    estimator = script_estimator(session, source)
    bucket = session.default_bucket()
    with pytest.raises(UnexpectedStatusException) as raised:
        estimator.fit({"train": f"s3://{bucket}/no/such/prefix/"}, logs=False)
    assert "ClientError: No objects found under S3 URL" in str(raised.value)
    assert "'train'" in str(raised.value)


def test_environment_and_tags_are_echoed_and_applied(session: Session, write_script) -> None:
    source = write_script("train.py", """
        import os
        print("MODE=" + os.environ["MODE"])
        print("JOB=" + os.environ["TRAINING_JOB_NAME"])
    """)
    estimator = script_estimator(session, source, environment={"MODE": "fast"}, tags=[{"Key": "team", "Value": "ufo"}])
    estimator.fit(logs=False, job_name="env-job")
    messages = [e["message"] for e in session.platform.logs.job_events("env-job")]
    assert "MODE=fast" in messages and "JOB=env-job" in messages
    assert session.describe_training_job("env-job")["Environment"] == {"MODE": "fast"}


def test_logs_client_reads_a_job_stream_like_cloudwatch(session: Session, write_script) -> None:
    source = write_script("train.py", "for i in range(3):\n    print('line', i)\n")
    estimator = script_estimator(session, source)
    estimator.fit(logs=False, job_name="cw-logs")
    streams = session.logs_client.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                                       logStreamNamePrefix="cw-logs/")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith("cw-logs/algo-1-")
    first = session.logs_client.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                               logStreamName=streams[0]["logStreamName"], limit=10000)
    messages = [e["message"] for e in first["events"]]
    assert messages[-3:] == ["line 0", "line 1", "line 2"]
    again = session.logs_client.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                               logStreamName=streams[0]["logStreamName"],
                                               nextToken=first["nextForwardToken"])
    assert again["events"] == []
