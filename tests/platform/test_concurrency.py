"""Several processes creating jobs at once against one store: no lost or duplicated records."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from forgeml import ResourceInUse, Session


def _create_jobs(home: str, worker: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    os.environ["FORGEML_HOME"] = home
    session = Session(home)
    created, refused = [], []
    for index in range(6):
        # every worker also tries the same shared names, so uniqueness is contended
        for name in (f"w{worker}-job-{index}", f"shared-job-{index}"):
            try:
                session.platform.training_jobs.create_training_job({
                    "TrainingJobName": name,
                    "RoleArn": "arn:aws:iam::000000000000:role/r",
                    "AlgorithmSpecification": {"TrainingImage": "python", "TrainingInputMode": "File",
                                               "ContainerEntrypoint": ["python", "-c", "print(1)"]},
                    "OutputDataConfig": {"S3OutputPath": "s3://bucket-one/out"},
                    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
                })
                created.append(name)
            except ResourceInUse:
                refused.append(name)
    results.put((worker, created, refused))


def test_concurrent_creation_from_several_processes(forgeml_home: Path) -> None:
    Session(forgeml_home)  # create the store first, as a running platform would have
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
    workers = [context.Process(target=_create_jobs, args=(str(forgeml_home), w, results)) for w in range(4)]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    created = [name for _, names, _ in outcomes for name in names]
    refused = [name for _, _, names in outcomes for name in names]
    assert len(created) == len(set(created)) == 4 * 6 + 6
    assert sorted(n for n in created if n.startswith("shared")) == [f"shared-job-{i}" for i in range(6)]
    assert len(refused) == 3 * 6

    session = Session(forgeml_home)
    pages = session.sagemaker_client.get_paginator("list_training_jobs").paginate(MaxResults=100)
    stored = [s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"]]
    assert sorted(stored) == sorted(created)
    for name in created:
        assert session.wait_for_job(name)["TrainingJobStatus"] == "Completed"
