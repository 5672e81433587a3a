"""ListTrainingJobs: filters, sorting and NextToken pagination."""

from __future__ import annotations

import time

import pytest

from forgeml import Session, ValidationException


def create(session: Session, name: str, code: str = "print('done')") -> None:
    session.sagemaker_client.create_training_job(
        TrainingJobName=name,
        RoleArn="arn:aws:iam::000000000000:role/r",
        AlgorithmSpecification={"TrainingImage": "python", "TrainingInputMode": "File",
                                "ContainerEntrypoint": ["python", "-c", code]},
        OutputDataConfig={"S3OutputPath": "s3://bucket-one/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


def test_filters_sorting_and_pagination(session: Session) -> None:
    names = [f"list-job-{i}" for i in range(7)]
    for name in names:
        create(session, name, "raise SystemExit(1)" if name.endswith("3") else "print('ok')")
    for name in names:
        session.wait_for_job(name) if not name.endswith("3") else _wait_any(session, name)
    client = session.sagemaker_client

    pages = list(client.get_paginator("list_training_jobs").paginate(MaxResults=3, SortBy="Name", SortOrder="Ascending"))
    listed = [s["TrainingJobName"] for p in pages for s in p["TrainingJobSummaries"]]
    assert listed == names
    assert [len(p["TrainingJobSummaries"]) for p in pages] == [3, 3, 1]

    newest_first = client.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in newest_first] == list(reversed(names))

    failed = client.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in failed] == ["list-job-3"]
    assert client.list_training_jobs(NameContains="JOB-5")["TrainingJobSummaries"][0]["TrainingJobName"] == "list-job-5"

    middle = session.describe_training_job("list-job-3")["CreationTime"]
    after = client.list_training_jobs(CreationTimeAfter=middle, SortOrder="Ascending")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in after] == names[4:]


def _wait_any(session: Session, name: str) -> None:
    deadline = time.time() + 30
    while session.describe_training_job(name)["TrainingJobStatus"] == "InProgress" and time.time() < deadline:
        time.sleep(0.05)


def test_bad_list_parameters(session: Session) -> None:
    with pytest.raises(ValidationException, match="maxResults"):
        session.sagemaker_client.list_training_jobs(MaxResults=0)
    with pytest.raises(ValidationException, match="sortBy"):
        session.sagemaker_client.list_training_jobs(SortBy="Size")
    with pytest.raises(ValidationException, match="nextToken"):
        session.sagemaker_client.list_training_jobs(NextToken="garbage!")
