"""Fifty boto3 clients at once against one ``forgeml server``: no lost, duplicated or half-written records.

The server is the real command (``python -m forgeml.cli.server --port 0``) in its own process, so
the fifty client threads and the server do not share an interpreter. Each client creates its own
training jobs and also races every other client for one shared name (exactly one wins, the others
get ResourceInUse), then describes and lists what it created. The pool has two job slots, so most
jobs wait queued while the API keeps answering; at the end the test stops what is still queued.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.server.conftest import ServerProcess, start_server, training_request, wait_until

CLIENTS = 50
JOBS_PER_CLIENT = 2
#: the name every client tries to create: it must exist exactly once
CONTESTED = "contested-job"
STATUSES = {"InProgress", "Completed", "Failed", "Stopping", "Stopped"}
#: generous bounds: the machine may be shared with other test runs
CALL_TIMEOUT_SECONDS = 120


@pytest.fixture
def server_process(platform: Any, tmp_path: Path) -> Iterator[ServerProcess]:
    """The command on the test's home (``platform`` has cleared the AWS variables a developer may have set)."""
    running = start_server(platform.config.home, tmp_path / "server.log", FORGEML_MAX_CONCURRENT_JOBS="2")
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Outcome:
    """What one client saw."""

    created: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)


def own_names(client: int) -> list[str]:
    return [f"client-{client:02d}-job-{n}" for n in range(JOBS_PER_CLIENT)]


def run_client(sm: Any, client: int, start: threading.Barrier) -> Outcome:
    """Create, describe and list like a team member's script would; sort out every refusal."""
    outcome = Outcome()
    start.wait(timeout=CALL_TIMEOUT_SECONDS)
    for name in [*own_names(client), CONTESTED]:
        try:
            arn = sm.create_training_job(**training_request(name, code="pass"))["TrainingJobArn"]
        except ClientError as exc:
            error = exc.response["Error"]
            if error["Code"] == "ResourceInUse" and name == CONTESTED:
                outcome.refused.append(name)
            else:
                outcome.unexpected.append(f"create {name}: {error['Code']}: {error['Message']}")
            continue
        if arn != f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}":
            outcome.unexpected.append(f"create {name}: ARN {arn}")
        outcome.created.append(name)
    for name in outcome.created:
        described = sm.describe_training_job(TrainingJobName=name)
        if described["TrainingJobName"] != name or described["TrainingJobStatus"] not in STATUSES:
            outcome.unexpected.append(f"describe {name}: {described['TrainingJobName']} "
                                      f"{described['TrainingJobStatus']}")
    pages = sm.get_paginator("list_training_jobs").paginate(NameContains=f"client-{client:02d}-",
                                                             PaginationConfig={"PageSize": 1})
    outcome.listed = [s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"]]
    return outcome


def all_jobs(sm: Any) -> list[dict[str, Any]]:
    pages = sm.get_paginator("list_training_jobs").paginate(PaginationConfig={"PageSize": 37})
    return [summary for page in pages for summary in page["TrainingJobSummaries"]]


def stop_if_running(sm: Any, name: str) -> str | None:
    """StopTrainingJob; a job that finished meanwhile refuses with ValidationException, which is expected."""
    try:
        sm.stop_training_job(TrainingJobName=name)
    except ClientError as exc:
        error = exc.response["Error"]
        if error["Code"] != "ValidationException":
            return f"stop {name}: {error['Code']}: {error['Message']}"
    return None


def test_fifty_clients_create_describe_and_list_without_losing_a_record(server_process: ServerProcess,
                                                                       platform: Any) -> None:
    import boto3

    # boto3 clients are thread-safe once made; sessions are not, so one session makes all fifty
    session = boto3.session.Session()
    clients = [server_process.client("sagemaker", session) for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS)
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        outcomes = list(pool.map(run_client, clients, range(CLIENTS), [start] * CLIENTS,
                                 timeout=4 * CALL_TIMEOUT_SECONDS))

    assert [problem for outcome in outcomes for problem in outcome.unexpected] == []
    created = [name for outcome in outcomes for name in outcome.created]
    expected = {name for client in range(CLIENTS) for name in own_names(client)} | {CONTESTED}
    assert len(created) == len(set(created)) == CLIENTS * JOBS_PER_CLIENT + 1
    assert set(created) == expected
    assert Counter(name for outcome in outcomes for name in outcome.refused) == {CONTESTED: CLIENTS - 1}
    for client, outcome in enumerate(outcomes):
        assert sorted(outcome.listed) == own_names(client)  # one per page, through the paginator

    sm = clients[0]
    listed = [summary["TrainingJobName"] for summary in all_jobs(sm)]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(expected)
    # the store itself, read without the server: every row readable, one per job
    stored = platform.training_jobs.list_training_jobs(MaxResults=100, NameContains="client-")
    stored_names = [s["TrainingJobName"] for s in stored["TrainingJobSummaries"]]
    token = stored.get("NextToken")
    while token:
        stored = platform.training_jobs.list_training_jobs(MaxResults=100, NameContains="client-", NextToken=token)
        stored_names += [s["TrainingJobName"] for s in stored["TrainingJobSummaries"]]
        token = stored.get("NextToken")
    assert sorted(stored_names) == sorted(expected - {CONTESTED})

    # leave nothing queued behind: stop what has not finished; every job then ends Completed or Stopped
    running = [s["TrainingJobName"] for s in all_jobs(sm) if s["TrainingJobStatus"] == "InProgress"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        stop_problems = [p for p in pool.map(lambda name: stop_if_running(sm, name), running) if p]
    assert stop_problems == []

    def settled() -> Counter[str] | None:
        statuses = Counter(summary["TrainingJobStatus"] for summary in all_jobs(sm))
        return None if statuses.keys() & {"InProgress", "Stopping"} else statuses

    statuses = wait_until(settled, timeout=CALL_TIMEOUT_SECONDS, what="every job to finish or stop")
    assert set(statuses) <= {"Completed", "Stopped"}
    assert sum(statuses.values()) == len(expected)
    assert server_process.stop() == 0
    assert "Traceback" not in server_process.log.read_text()
