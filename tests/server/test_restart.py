"""``forgeml server`` stopped with SIGTERM and started again on the same FORGEML_HOME, with work in flight.

Jobs and endpoint hosts are processes of their own, so they outlive the server: a training job
started through the first server finishes while the second serves, an endpoint deployed through
the first answers through the second, and a job whose process died while no server ran is Failed
with a reason the first time the new server looks at it. Nothing in the store is half-written:
SQLite's integrity check passes, every row of every table reads back, and every status is one of
the values botocore's service model allows.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from tests.server.conftest import ServerProcess, start_server, training_request, wait_until

FAST = {"Delay": 0.2, "MaxAttempts": 600}
#: the longest a test job waits for its release file before giving up on its own
JOB_PATIENCE_SECONDS = 120


#: a job that runs until the file $RELEASE exists (bounded), then says so and completes
WAITING_JOB = ("import os,sys,time\n"
               "print('waiting for the release file',flush=True)\n"
               f"t=time.time()+{JOB_PATIENCE_SECONDS}\n"
               "while not os.path.exists(os.environ['RELEASE']):\n"
               " if time.time()>t:sys.exit('never released')\n"
               " time.sleep(0.05)\n"
               "print('released after the restart',flush=True)\n")


def waiting_job(name: str, release: Path) -> dict[str, Any]:
    return training_request(name, code=WAITING_JOB, Environment={"RELEASE": str(release)},
                            StoppingCondition={"MaxRuntimeInSeconds": 600})


@pytest.fixture
def servers(forgeml_home: Path, tmp_path: Path) -> Iterator[Callable[[str], ServerProcess]]:
    """start(label) -> a new ``forgeml server`` process on the test's home; all are stopped at the end."""
    started: list[ServerProcess] = []

    def start(label: str) -> ServerProcess:
        started.append(start_server(forgeml_home, tmp_path / f"server-{label}.log"))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def clients(server: ServerProcess) -> tuple[Any, Any, Any]:
    import boto3

    session = boto3.session.Session()
    return (server.client("sagemaker", session), server.client("sagemaker-runtime", session),
            server.client("logs", session))


def kill_runner(platform: Any, job_name: str) -> None:
    """SIGKILL a job's whole process group, as an OOM killer or a reboot would end it."""
    from forgeml.store import training_jobs as repo

    row = repo.get_job(platform.db, job_name)
    assert row is not None and row["runner_pid"]
    os.killpg(row["runner_pid"], signal.SIGKILL)
    wait_until(lambda: not platform.executor.is_alive(job_name), timeout=30, what=f"{job_name}'s runner to die")


def enum_of(sm: Any, shape: str) -> set[str]:
    return set(sm.meta.service_model.shape_for(shape).enum)


def assert_store_consistent(platform: Any, sm: Any) -> None:
    """Every row of every table reads back whole, and every status is a SageMaker status."""
    from forgeml.store import tables

    with platform.db.read() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        rows = {table.name: [dict(r) for r in conn.execute(select(table)).mappings()]
                for table in tables.metadata.sorted_tables}
    for table_name, table_rows in rows.items():
        for row in table_rows:
            json.dumps(row, default=str)  # every JSON column decoded into plain values
            if "request" in row:
                assert isinstance(row["request"], dict), f"{table_name} row without its request: {row}"
    allowed = {"training_jobs": enum_of(sm, "TrainingJobStatus"), "endpoints": enum_of(sm, "EndpointStatus")}
    for table_name, statuses in allowed.items():
        assert {row["status"] for row in rows[table_name]} <= statuses
    transitions = rows["training_job_status_transitions"]
    assert {t["job_name"] for t in transitions} == {row["name"] for row in rows["training_jobs"]}


def test_jobs_and_endpoints_survive_a_restart_and_records_stay_consistent(
        servers: Callable[[str], ServerProcess], platform: Any, linear_learner_model: Any, tmp_path: Path) -> None:
    release = tmp_path / "release-the-job"
    first = servers("first")
    sm, runtime, _ = clients(first)
    sm.create_training_job(**waiting_job("survives-restart", release))
    sm.create_training_job(**waiting_job("killed-while-down", tmp_path / "never"))
    sm.create_model(**linear_learner_model("restart-model"))
    sm.create_endpoint_config(EndpointConfigName="restart-config", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "restart-model", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="restart-endpoint", EndpointConfigName="restart-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="restart-endpoint", WaiterConfig=FAST)
    body = b"1.0,-2.0,0.5,0.0\n-1.0,2.0,0.0,0.0\n"
    before = json.loads(runtime.invoke_endpoint(EndpointName="restart-endpoint", ContentType="text/csv",
                                                Body=body)["Body"].read())
    assert [p["predicted_label"] for p in before["predictions"]] == [1.0, 0.0]
    wait_until(lambda: sm.describe_training_job(TrainingJobName="survives-restart")["SecondaryStatus"] == "Training",
               timeout=60, what="the job to start training")

    assert first.stop() == 0  # SIGTERM: a clean exit
    assert "Traceback" not in first.log.read_text()
    # with no server running, the job's and the endpoint's own processes go on
    assert platform.executor.is_alive("survives-restart")
    assert platform.training_jobs.describe_training_job("survives-restart")["TrainingJobStatus"] == "InProgress"
    kill_runner(platform, "killed-while-down")

    second = servers("second")
    sm, runtime, logs = clients(second)
    after = json.loads(runtime.invoke_endpoint(EndpointName="restart-endpoint", ContentType="text/csv",
                                               Body=body)["Body"].read())
    assert after == before
    assert sm.describe_endpoint(EndpointName="restart-endpoint")["EndpointStatus"] == "InService"

    killed = sm.describe_training_job(TrainingJobName="killed-while-down")
    assert killed["TrainingJobStatus"] == "Failed"
    assert killed["FailureReason"].startswith("InternalServerError: the job's worker process ended unexpectedly")

    assert sm.describe_training_job(TrainingJobName="survives-restart")["TrainingJobStatus"] == "InProgress"
    release.touch()
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="survives-restart", WaiterConfig=FAST)
    survivor = sm.describe_training_job(TrainingJobName="survives-restart")
    assert survivor["TrainingJobStatus"] == "Completed"
    assert [t["Status"] for t in survivor["SecondaryStatusTransitions"]][-1] == "Completed"
    (stream,) = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                          logStreamNamePrefix="survives-restart/")["logStreams"]
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"],
                                 startFromHead=True)["events"]
    messages = [event["message"] for event in events]
    assert "waiting for the release file" in messages
    assert "released after the restart" in messages  # written while the first server was gone

    listed = {s["TrainingJobName"]: s["TrainingJobStatus"] for s in sm.list_training_jobs()["TrainingJobSummaries"]}
    assert listed == {"survives-restart": "Completed", "killed-while-down": "Failed"}
    assert_store_consistent(platform, sm)
    sm.delete_endpoint(EndpointName="restart-endpoint")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="restart-endpoint", WaiterConfig=FAST)
    assert second.stop() == 0
    assert "Traceback" not in second.log.read_text()


def test_a_stop_during_requests_leaves_every_record_whole(servers: Callable[[str], ServerProcess],
                                                          platform: Any) -> None:
    """SIGTERM while clients are creating jobs: each create either happened whole or not at all."""
    import threading

    from botocore.exceptions import BotoCoreError, ClientError

    first = servers("busy")
    sm, _, _ = clients(first)
    answered: list[str] = []
    failed: list[str] = []
    stop_now = threading.Event()

    def create_until_stopped(worker: int) -> None:
        for index in range(500):  # far more than fit before the stop: every worker is cut off by it
            name = f"during-stop-{worker}-{index}"
            try:
                sm.create_training_job(**training_request(name, code="pass"))
                answered.append(name)
            except (BotoCoreError, ClientError):
                failed.append(name)
                return
            if index == 2:
                stop_now.set()

    workers = [threading.Thread(target=create_until_stopped, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    assert stop_now.wait(timeout=120)
    assert first.stop() == 0
    for worker in workers:
        worker.join(timeout=120)
        assert not worker.is_alive()
    assert len(answered) >= 3  # creates acknowledged before the stop
    assert len(failed) == len(workers)  # then each worker's next call found the server gone

    second = servers("after")
    sm, _, _ = clients(second)
    stored = {s["TrainingJobName"] for page in sm.get_paginator("list_training_jobs").paginate()
              for s in page["TrainingJobSummaries"]}
    # every acknowledged create is stored; a create cut off by the stop is stored whole or not at all
    assert set(answered) <= stored
    assert stored <= set(answered) | set(failed)
    for name in stored:
        described = sm.describe_training_job(TrainingJobName=name)
        assert described["TrainingJobStatus"] in enum_of(sm, "TrainingJobStatus")
        assert described["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python", "-c", "pass"]
    assert_store_consistent(platform, sm)
    wait_until(lambda: all(s["TrainingJobStatus"] != "InProgress" for page in
                           sm.get_paginator("list_training_jobs").paginate() for s in page["TrainingJobSummaries"]),
               timeout=120, what="every job to finish")
    assert second.stop() == 0
