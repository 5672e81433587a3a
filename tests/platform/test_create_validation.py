"""CreateTrainingJob's bad input: a ValidationException naming the member and the rule, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from forgeml import ResourceInUse, Session, ValidationException
from forgeml.store import training_jobs as repo

ROLE = "arn:aws:iam::000000000000:role/service-role/ForgeML-ExecutionRole"


def request(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "TrainingJobName": "valid-job",
        "RoleArn": ROLE,
        "AlgorithmSpecification": {"TrainingImage": "python", "TrainingInputMode": "File",
                                   "ContainerEntrypoint": ["python", "-c", "print('hi')"]},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket-one/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"TrainingJobName": "bad_name"}, "Value 'bad_name' at 'trainingJobName' failed to satisfy constraint: Member must satisfy regular expression pattern"),
        ({"TrainingJobName": "-leading"}, "at 'trainingJobName'"),
        ({"TrainingJobName": "x" * 64}, "Member must have length less than or equal to 63"),
        ({"RoleArn": "not-a-role-arn-at-all"}, "at 'roleArn' failed to satisfy constraint"),
        ({"ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 0}},
         "Value '0' at 'resourceConfig.instanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        ({"ResourceConfig": {"InstanceType": "ml.banana.huge", "InstanceCount": 1}},
         "Value 'ml.banana.huge' at 'resourceConfig.instanceType'"),
        ({"StoppingCondition": {"MaxRuntimeInSeconds": 0}}, "at 'stoppingCondition.maxRuntimeInSeconds'"),
        ({"OutputDataConfig": {"S3OutputPath": "ftp://x/y"}}, "at 'outputDataConfig.s3OutputPath'"),
        ({"HyperParameters": {"lr": 0.1}}, "at 'hyperParameters.lr' failed to satisfy constraint: Member must be a string"),
        ({"InputDataConfig": [{"ChannelName": "bad name!", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://bucket-one/x"}}}]}, "at 'inputDataConfig.1.channelName'"),
        ({"InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "Folder", "S3Uri": "s3://bucket-one/x"}}}]},
         "at 'inputDataConfig.1.dataSource.s3DataSource.s3DataType' failed to satisfy constraint: Member must satisfy enum value set"),
        ({"AlgorithmSpecification": {"TrainingImage": "x", "TrainingInputMode": "Stream"}}, "at 'algorithmSpecification.trainingInputMode'"),
        ({"AlgorithmSpecification": {"TrainingImage": "x", "TrainingInputMode": "File",
                                     "MetricDefinitions": [{"Name": "m", "Regex": "loss=("}]}},
         "be a valid regular expression"),
        ({"AlgorithmSpecification": {"TrainingImage": "my-own-image:1", "TrainingInputMode": "File"}},
         "Member must name a built-in algorithm image"),
        ({"Environment": {"1BAD": "x"}}, "at 'environment.key'"),
        ({"Unexpected": 1}, 'Unknown parameter in input: "Unexpected"'),
    ],
)
def test_bad_requests_are_refused_with_the_member_named(session: Session, overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationException) as raised:
        session.platform.training_jobs.create_training_job(request(**overrides))
    assert expected in raised.value.message
    assert raised.value.code == "ValidationException"
    assert repo.list_jobs(session.platform.db) == []


def test_several_errors_are_reported_together(session: Session) -> None:
    bad = request(TrainingJobName="bad_name", ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 0})
    with pytest.raises(ValidationException, match=r"^2 validation errors detected: "):
        session.platform.training_jobs.create_training_job(bad)


def test_duplicate_name_is_resource_in_use_and_the_first_job_is_untouched(session: Session) -> None:
    service = session.platform.training_jobs
    service.create_training_job(request())
    first = service.describe_training_job("valid-job")
    with pytest.raises(ResourceInUse, match="already exists"):
        service.create_training_job(request(HyperParameters={"different": "1"}))
    again = service.describe_training_job("valid-job")
    assert again["HyperParameters"] == first["HyperParameters"] == {}
    assert again["CreationTime"] == first["CreationTime"]
    session.wait_for_job("valid-job")


def test_unknown_resources_are_not_found(session: Session) -> None:
    from forgeml import ResourceNotFound

    with pytest.raises(ResourceNotFound):
        session.describe_training_job("no-such-job")
    with pytest.raises(ResourceNotFound):
        session.stop_training_job("no-such-job")


def test_defaults_are_filled_in_as_sagemaker_echoes_them(session: Session) -> None:
    service = session.platform.training_jobs
    minimal = request(
        StoppingCondition=None, TrainingJobName="defaults",
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://bucket-one/in/"}}}],
    )
    del minimal["StoppingCondition"]
    arn = service.create_training_job(minimal)["TrainingJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:training-job/defaults"
    described = service.describe_training_job("defaults")
    assert described["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert described["OutputDataConfig"]["CompressionType"] == "GZIP"
    channel = described["InputDataConfig"][0]
    assert channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    assert channel["CompressionType"] == "None" and channel["RecordWrapperType"] == "None"
    session.platform.training_jobs.describe_training_job("defaults")
    final = session.platform.training_jobs
    import time

    deadline = time.time() + 30
    while final.describe_training_job("defaults")["TrainingJobStatus"] == "InProgress" and time.time() < deadline:
        time.sleep(0.05)
    assert final.describe_training_job("defaults")["FailureReason"].startswith("ClientError: No objects found")


def test_estimator_rejects_misspelled_arguments_and_accepts_aws_only_ones(session: Session) -> None:
    from forgeml import Estimator

    with pytest.raises(TypeError, match="hyperparameter"):
        Estimator(image_uri="kmeans", hyperparameter={"k": 3}, sagemaker_session=session)
    estimator = Estimator(image_uri="kmeans", subnets=["subnet-1"], use_spot_instances=True, sagemaker_session=session)
    assert estimator.image_uri == "kmeans"
