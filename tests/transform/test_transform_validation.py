"""CreateTransformJob's rules with AWS's messages, Describe/List/Stop shapes and errors.

Jobs here read an empty input prefix, so their runners fail at once without starting a model server.
"""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from forgeml import ResourceInUse, Session, ValidationException
from forgeml.image_uris import retrieve

ACCOUNT_PREFIX = "arn:aws:sagemaker:us-east-1:000000000000"


def request(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "TransformJobName": "job-1",
        "ModelName": "ll-model",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bkt/empty/"}},
                           "ContentType": "text/csv", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": "s3://bkt/out"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    base.update(changes)
    return base


@pytest.fixture
def client(session: Session) -> Any:
    client = session.sagemaker_client
    client.create_model(ModelName="ll-model", PrimaryContainer={"Image": retrieve("linear-learner"),
                                                                "ModelDataUrl": "s3://bkt/model/model.tar.gz"})
    return client


def wait_for(client: Any, name: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described: dict[str, Any] = client.describe_transform_job(TransformJobName=name)
        if described["TransformJobStatus"] in ("Completed", "Failed", "Stopped"):
            return described
        time.sleep(0.05)
    raise AssertionError(f"{name} did not end within {timeout} s")


def expect_error(client: Any, body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationException) as caught:
        client.create_transform_job(**body)
    assert caught.value.message == message


def nested(path: str, value: Any) -> dict[str, Any]:
    """The base request with one nested member changed (``None`` removes it)."""
    body = request()
    *parents, last = path.split(".")
    target = body
    for part in parents:
        target = target[part]
    if value is None:
        target.pop(last)
    else:
        target[last] = value
    return body


CASES = [
        (request(TransformJobName="bad_name"),
         "1 validation error detected: Value 'bad_name' at 'transformJobName' failed to satisfy constraint: Member must "
         "satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"),
        (request(TransformJobName="j" * 64),
         f"2 validation errors detected: Value '{'j' * 64}' at 'transformJobName' failed to satisfy constraint: Member "
         f"must have length less than or equal to 63; Value '{'j' * 64}' at 'transformJobName' failed to satisfy "
         "constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"),
        (request(ModelName="-model"),
         "1 validation error detected: Value '-model' at 'modelName' failed to satisfy constraint: Member must satisfy "
         "regular expression pattern: [a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"),
        (request(MaxPayloadInMB=101),
         "1 validation error detected: Value '101' at 'maxPayloadInMB' failed to satisfy constraint: Member must have "
         "value less than or equal to 100"),
        (request(MaxPayloadInMB=-1),
         "1 validation error detected: Value '-1' at 'maxPayloadInMB' failed to satisfy constraint: Member must have "
         "value greater than or equal to 0"),
        (request(MaxPayloadInMB=0),
         "1 validation error detected: Value '0' at 'maxPayloadInMB' failed to satisfy constraint: Member must be "
         "greater than 0 here: 0 asks for HTTP chunked requests of unlimited size, which forgeml does not send "
         "(give a size of at least 1 MB)"),
        (request(MaxConcurrentTransforms=-1),
         "1 validation error detected: Value '-1' at 'maxConcurrentTransforms' failed to satisfy constraint: Member "
         "must have value greater than or equal to 0"),
        (request(MaxConcurrentTransforms=11, MaxPayloadInMB=10),
         "1 validation error detected: Value '11' at 'maxConcurrentTransforms' failed to satisfy constraint: Member "
         "must keep MaxConcurrentTransforms * MaxPayloadInMB (11 * 10) less than or equal to 100"),
        (request(MaxConcurrentTransforms=17),
         "1 validation error detected: Value '17' at 'maxConcurrentTransforms' failed to satisfy constraint: Member "
         "must keep MaxConcurrentTransforms * MaxPayloadInMB (17 * 6) less than or equal to 100"),
        (request(BatchStrategy="Batch"),
         "1 validation error detected: Value 'Batch' at 'batchStrategy' failed to satisfy constraint: Member must "
         "satisfy enum value set: [MultiRecord, SingleRecord]"),
        (request(ModelClientConfig={"InvocationsTimeoutInSeconds": 0, "InvocationsMaxRetries": 4}),
         "2 validation errors detected: Value '0' at 'modelClientConfig.invocationsTimeoutInSeconds' failed to "
         "satisfy constraint: Member must have value greater than or equal to 1; Value '4' at "
         "'modelClientConfig.invocationsMaxRetries' failed to satisfy constraint: Member must have value less than "
         "or equal to 3"),
        (request(ModelClientConfig={"InvocationsTimeoutInSeconds": 3601}),
         "1 validation error detected: Value '3601' at 'modelClientConfig.invocationsTimeoutInSeconds' failed to "
         "satisfy constraint: Member must have value less than or equal to 3600"),
        (request(Environment={f"V{i}": "x" for i in range(17)}),
         "1 validation error detected: Value '17 entries' at 'environment' failed to satisfy constraint: Member must "
         "have length less than or equal to 16"),
        (request(Environment={"1BAD": "x"}),
         "1 validation error detected: Value '1BAD' at 'environment.key' failed to satisfy constraint: Member must "
         "satisfy regular expression pattern: [a-zA-Z_][a-zA-Z0-9_]{0,1023}"),
        (request(Environment={"LONG": "x" * 10241}),
         f"1 validation error detected: Value '{'x' * 10241}' at 'environment.lONG' failed to satisfy constraint: "
         "Member must have length less than or equal to 10240"),
        (nested("TransformInput.DataSource.S3DataSource.S3DataType", "AugmentedManifestFile"),
         "1 validation error detected: Value 'AugmentedManifestFile' at 'transformInput.dataSource.s3DataSource."
         "s3DataType' failed to satisfy constraint: Member must be S3Prefix or ManifestFile: batch transform does not "
         "read AugmentedManifestFile input"),
        (nested("TransformInput.DataSource.S3DataSource.S3DataType", "Folder"),
         "1 validation error detected: Value 'Folder' at 'transformInput.dataSource.s3DataSource.s3DataType' failed "
         "to satisfy constraint: Member must satisfy enum value set: [ManifestFile, S3Prefix, AugmentedManifestFile]"),
        (nested("TransformInput.DataSource.S3DataSource.S3Uri", "ftp://x/y"),
         "1 validation error detected: Value 'ftp://x/y' at 'transformInput.dataSource.s3DataSource.s3Uri' failed to "
         "satisfy constraint: Member must satisfy regular expression pattern: ^(https|s3|file)://([^/]+)?/?(.*)$"),
        (nested("TransformInput.SplitType", "Paragraph"),
         "1 validation error detected: Value 'Paragraph' at 'transformInput.splitType' failed to satisfy constraint: "
         "Member must satisfy enum value set: [None, Line, RecordIO, TFRecord]"),
        (nested("TransformInput.CompressionType", "Zip"),
         "1 validation error detected: Value 'Zip' at 'transformInput.compressionType' failed to satisfy constraint: "
         "Member must satisfy enum value set: [None, Gzip]"),
        (nested("TransformInput.DataSource", None),
         "1 validation error detected: Value 'null' at 'transformInput.dataSource' failed to satisfy constraint: "
         "Member must not be null"),
        (nested("TransformOutput.AssembleWith", "Comma"),
         "1 validation error detected: Value 'Comma' at 'transformOutput.assembleWith' failed to satisfy constraint: "
         "Member must satisfy enum value set: [None, Line]"),
        (request(TransformOutput={}, TransformResources={"InstanceType": "ml.m5.large"}),
         "2 validation errors detected: Value 'null' at 'transformOutput.s3OutputPath' failed to satisfy constraint: "
         "Member must not be null; Value 'null' at 'transformResources.instanceCount' failed to satisfy constraint: "
         "Member must not be null"),
        (nested("TransformOutput.S3OutputPath", None),
         "1 validation error detected: Value 'null' at 'transformOutput.s3OutputPath' failed to satisfy constraint: "
         "Member must not be null"),
        (nested("TransformResources.InstanceType", "ml.z9.huge"),
         "1 validation error detected: Value 'ml.z9.huge' at 'transformResources.instanceType' failed to satisfy "
         "constraint: Member must be a known instance type (for example ml.m5.large, ml.c5.xlarge, ml.g4dn.xlarge)"),
        (nested("TransformResources.InstanceCount", 0),
         "1 validation error detected: Value '0' at 'transformResources.instanceCount' failed to satisfy constraint: "
         "Member must have value greater than or equal to 1"),
        (request(DataProcessing={"JoinSource": "Output"}),
         "1 validation error detected: Value 'Output' at 'dataProcessing.joinSource' failed to satisfy constraint: "
         "Member must satisfy enum value set: [Input, None]"),
        (request(DataProcessing={"InputFilter": "$..x"}),
         "1 validation error detected: Value '$..x' at 'dataProcessing.inputFilter' failed to satisfy constraint: "
         "Member must be a supported JSONPath expression (recursive descent '..' is not supported at character 2 of "
         "'$..x')"),
        (request(DataProcessing={"OutputFilter": "$[0"}),
         "1 validation error detected: Value '$[0' at 'dataProcessing.outputFilter' failed to satisfy constraint: "
         "Member must be a supported JSONPath expression (expected ']' at character 3 of '$[0')"),
        (request(DataProcessing={"InputFilter": "$[" + "1," * 40 + "2]"}),
         f"1 validation error detected: Value '$[{'1,' * 40}2]' at 'dataProcessing.inputFilter' failed to satisfy "
         "constraint: Member must have length less than or equal to 63"),
        (nested("TransformInput.ContentType", "application/x-recordio-protobuf") | {
            "DataProcessing": {"JoinSource": "Input"}},
         "1 validation error detected: Value 'application/x-recordio-protobuf' at 'transformInput.contentType' failed "
         "to satisfy constraint: Member must be text/csv, application/json or application/jsonlines when "
         "DataProcessing has an InputFilter or JoinSource Input (filters and joins read CSV and JSON records only)"),
        (request(DataCaptureConfig={"GenerateInferenceId": "yes"}),
         "2 validation errors detected: Value 'null' at 'dataCaptureConfig.destinationS3Uri' failed to satisfy "
         "constraint: Member must not be null; Value 'yes' at 'dataCaptureConfig.generateInferenceId' failed to "
         "satisfy constraint: Member must be a boolean"),
        (request(Tags=[{"Value": "x"}]),
         "1 validation error detected: Value 'null' at 'tags.1.key' failed to satisfy constraint: Member must not be "
         "null"),
        (request(TransformInput=None, TransformResources=None, TransformOutput={"S3OutputPath": "s3://b/o",
                                                                               "Acept": "text/csv"}),
         "3 validation errors detected: Value 'null' at 'transformInput' failed to satisfy constraint: Member must "
         "not be null; Unknown parameter in TransformOutput: \"Acept\", must be one of: Accept, AssembleWith, "
         "KmsKeyId, S3OutputPath; Value 'null' at 'transformResources' failed to satisfy constraint: Member must not "
         "be null"),
        (request(MaxPayload=6),
         "1 validation error detected: Unknown parameter in input: \"MaxPayload\", must be one of: BatchStrategy, "
         "DataCaptureConfig, DataProcessing, Environment, ExperimentConfig, MaxConcurrentTransforms, MaxPayloadInMB, "
         "ModelClientConfig, ModelName, Tags, TransformInput, TransformJobName, TransformOutput, TransformResources"),
]


def case_id(message: str) -> str:
    return message.split(" at '")[1].split("'")[0] if " at '" in message else message.split(": ")[1][:30]


@pytest.mark.parametrize(("body", "message"), CASES, ids=[case_id(message) for _, message in CASES])
def test_bad_requests_get_aws_messages(client: Any, body: dict[str, Any], message: str) -> None:
    expect_error(client, body, message)
    assert client.list_transform_jobs()["TransformJobSummaries"] == []


def test_a_missing_model_is_named_by_its_arn(client: Any) -> None:
    expect_error(client, request(ModelName="no-such-model"),
                 f'Could not find model "{ACCOUNT_PREFIX}:model/no-such-model".')


def test_describe_list_and_stop_shapes(client: Any) -> None:
    started = datetime.now(UTC)
    arn = client.create_transform_job(**request(TransformJobName="job-b"))["TransformJobArn"]
    assert arn == f"{ACCOUNT_PREFIX}:transform-job/job-b"
    with pytest.raises(ResourceInUse) as caught:
        client.create_transform_job(**request(TransformJobName="job-b"))
    assert caught.value.message == ("Job name must be unique within an AWS account and region, and a transform job "
                                    f"with this name already exists ({arn})")
    described = wait_for(client, "job-b")
    assert described["TransformJobStatus"] == "Failed"
    assert described["FailureReason"] == ("ClientError: No input objects were found under s3://bkt/empty/ "
                                          "(TransformInput S3Uri, S3DataType S3Prefix)")
    assert described["CreationTime"] >= started.replace(microsecond=0)
    assert described["TransformStartTime"] >= described["CreationTime"]
    assert described["TransformEndTime"] >= described["TransformStartTime"]
    described.pop("ResponseMetadata")
    for key in ("CreationTime", "TransformStartTime", "TransformEndTime", "FailureReason"):
        described.pop(key)
    assert described == {
        "TransformJobName": "job-b", "TransformJobArn": arn, "TransformJobStatus": "Failed", "ModelName": "ll-model",
        "MaxConcurrentTransforms": 1, "ModelClientConfig": {"InvocationsTimeoutInSeconds": 600,
                                                             "InvocationsMaxRetries": 3},
        "MaxPayloadInMB": 6, "BatchStrategy": "MultiRecord", "Environment": {},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bkt/empty/"}},
                           "ContentType": "text/csv", "SplitType": "Line", "CompressionType": "None"},
        "TransformOutput": {"S3OutputPath": "s3://bkt/out", "AssembleWith": "None"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "DataProcessing": {"InputFilter": "$", "OutputFilter": "$", "JoinSource": "None"},
    }
    with pytest.raises(ValidationException) as stop_error:
        client.stop_transform_job(TransformJobName="job-b")
    assert stop_error.value.message == "The request was rejected because the transform job is in status Failed."

    client.create_transform_job(**request(TransformJobName="job-a", BatchStrategy="SingleRecord", MaxPayloadInMB=2,
                                          Environment={"K": "v"}, DataProcessing={"InputFilter": "$[1:]"},
                                          Tags=[{"Key": "team", "Value": "ufo"}]))
    other = wait_for(client, "job-a")
    assert (other["BatchStrategy"], other["MaxPayloadInMB"], other["Environment"]) == ("SingleRecord", 2, {"K": "v"})
    assert other["DataProcessing"] == {"InputFilter": "$[1:]", "OutputFilter": "$", "JoinSource": "None"}
    assert "Tags" not in other

    summaries = client.list_transform_jobs()["TransformJobSummaries"]
    assert [s["TransformJobName"] for s in summaries] == ["job-a", "job-b"]  # newest first by default
    assert set(summaries[0]) == {"TransformJobName", "TransformJobArn", "CreationTime", "LastModifiedTime",
                                 "TransformEndTime", "TransformJobStatus", "FailureReason"}
    by_name = client.list_transform_jobs(SortBy="Name", SortOrder="Ascending", MaxResults=1)
    assert [s["TransformJobName"] for s in by_name["TransformJobSummaries"]] == ["job-a"]
    rest = client.list_transform_jobs(SortBy="Name", SortOrder="Ascending", MaxResults=1, NextToken=by_name["NextToken"])
    assert [s["TransformJobName"] for s in rest["TransformJobSummaries"]] == ["job-b"]
    assert "NextToken" not in rest
    assert [s["TransformJobName"] for s in client.list_transform_jobs(NameContains="-B")["TransformJobSummaries"]] == [
        "job-b"]
    assert client.list_transform_jobs(StatusEquals="Completed")["TransformJobSummaries"] == []
    newest = summaries[0]["CreationTime"]
    assert [s["TransformJobName"] for s in client.list_transform_jobs(CreationTimeBefore=newest)[
        "TransformJobSummaries"]] == ["job-b"]
    assert [s["TransformJobName"] for s in client.list_transform_jobs(LastModifiedTimeAfter=summaries[1][
        "LastModifiedTime"])["TransformJobSummaries"]] == ["job-a"]
    pages = list(client.get_paginator("list_transform_jobs").paginate(MaxResults=1))
    assert len(pages) == 2


def test_list_and_describe_errors(client: Any) -> None:
    with pytest.raises(ValidationException) as caught:
        client.describe_transform_job(TransformJobName="nope")
    assert caught.value.message == "Could not find requested job with name nope"
    with pytest.raises(ValidationException, match="Could not find requested job with name nope"):
        client.stop_transform_job(TransformJobName="nope")
    with pytest.raises(ValidationException) as listing:
        client.list_transform_jobs(MaxResults=101, SortBy="Size", StatusEquals="Done")
    assert listing.value.message == (
        "3 validation errors detected: Value '101' at 'maxResults' failed to satisfy constraint: Member must have value "
        "less than or equal to 100; Value 'Size' at 'sortBy' failed to satisfy constraint: Member must satisfy enum "
        "value set: [Name, CreationTime, Status]; Value 'Done' at 'statusEquals' failed to satisfy constraint: Member "
        "must satisfy enum value set: [InProgress, Completed, Failed, Stopping, Stopped]")


def test_request_is_not_modified_and_every_member_is_echoed(client: Any) -> None:
    body = request(TransformJobName="job-c", MaxConcurrentTransforms=2, MaxPayloadInMB=4,
                   ModelClientConfig={"InvocationsMaxRetries": 0},
                   DataCaptureConfig={"DestinationS3Uri": "s3://bkt/capture"},
                   ExperimentConfig={"ExperimentName": "e1"})
    sent = copy.deepcopy(body)
    client.create_transform_job(**body)
    assert body == sent
    described = wait_for(client, "job-c")
    assert described["MaxConcurrentTransforms"] == 2 and described["MaxPayloadInMB"] == 4
    assert described["ModelClientConfig"] == {"InvocationsTimeoutInSeconds": 600, "InvocationsMaxRetries": 0}
    assert described["DataCaptureConfig"] == {"DestinationS3Uri": "s3://bkt/capture"}
    assert described["ExperimentConfig"] == {"ExperimentName": "e1"}
