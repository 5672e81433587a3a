"""SageMaker's JSON API through the real boto3 client: every operation, paginators, waiters, errors.

botocore parses every answer against its service model, so a round trip here is also a check of
the wire shapes (timestamps come back as datetimes, ARNs and enums as SageMaker writes them).
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from tests.server.conftest import FEATURES, ROLE, WEIGHTS, RunningServer, training_request, wait_until

FAST = {"Delay": 0.2, "MaxAttempts": 300}


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def upload_training_csv(server: RunningServer, uri: str) -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, FEATURES))
    labels = (features @ WEIGHTS > 0).astype(int)
    text = io.StringIO()
    np.savetxt(text, np.column_stack([labels, features]), delimiter=",", fmt="%.5f")
    server.platform.artifacts.ensure_bucket(uri.split("/")[2])
    server.platform.artifacts.put_bytes(text.getvalue().encode(), uri)


# -- training jobs -------------------------------------------------------------------------------


def test_training_jobs_round_trip(server: RunningServer) -> None:
    sm = server.client("sagemaker")
    created = sm.create_training_job(**training_request("srv-job-1", Tags=[{"Key": "team", "Value": "ufo"}]))
    assert created["TrainingJobArn"] == "arn:aws:sagemaker:us-east-1:000000000000:training-job/srv-job-1"
    for name in ("srv-job-2", "srv-job-3"):
        sm.create_training_job(**training_request(name))
    for name in ("srv-job-1", "srv-job-2", "srv-job-3"):
        sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName=name, WaiterConfig=FAST)

    described = sm.describe_training_job(TrainingJobName="srv-job-1")
    assert described["TrainingJobStatus"] == "Completed"
    assert described["SecondaryStatus"] == "Completed"
    assert described["RoleArn"] == ROLE
    assert described["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == "s3://server-tests/output/srv-job-1/output/model.tar.gz"
    for stamp in ("CreationTime", "LastModifiedTime", "TrainingStartTime", "TrainingEndTime"):
        assert isinstance(described[stamp], datetime), stamp
    assert described["TrainingEndTime"] >= described["TrainingStartTime"] >= described["CreationTime"]
    transitions = [t["Status"] for t in described["SecondaryStatusTransitions"]]
    assert transitions[0] == "Starting" and transitions[-1] == "Completed"
    assert all(isinstance(t["StartTime"], datetime) for t in described["SecondaryStatusTransitions"])

    pages = list(sm.get_paginator("list_training_jobs").paginate(
        SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 2}))
    assert [[s["TrainingJobName"] for s in p["TrainingJobSummaries"]] for p in pages] == [
        ["srv-job-1", "srv-job-2"], ["srv-job-3"]]
    summary = pages[0]["TrainingJobSummaries"][0]
    assert summary["TrainingJobStatus"] == "Completed" and isinstance(summary["TrainingEndTime"], datetime)
    newest = sm.list_training_jobs(CreationTimeAfter=described["CreationTime"], SortOrder="Ascending")
    assert [s["TrainingJobName"] for s in newest["TrainingJobSummaries"]] == ["srv-job-2", "srv-job-3"]
    assert [s["TrainingJobName"] for s in sm.list_training_jobs(NameContains="JOB-2")["TrainingJobSummaries"]] \
        == ["srv-job-2"]
    assert sm.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"] == []

    assert sm.list_tags(ResourceArn=created["TrainingJobArn"])["Tags"] == [{"Key": "team", "Value": "ufo"}]
    assert sm.list_tags(ResourceArn=described["TrainingJobArn"].replace("srv-job-1", "srv-job-2"))["Tags"] == []

    with pytest.raises(ClientError) as duplicate:
        sm.create_training_job(**training_request("srv-job-1"))
    status, code, message = error_of(duplicate)
    assert (status, code) == (400, "ResourceInUse") and "already exists" in message
    with pytest.raises(ClientError) as finished:
        sm.stop_training_job(TrainingJobName="srv-job-1")
    assert error_of(finished) == (400, "ValidationException",
                                  "The request was rejected because the training job is in status Completed.")
    with pytest.raises(ClientError) as missing:
        sm.describe_training_job(TrainingJobName="no-such-job")
    assert error_of(missing) == (400, "ResourceNotFound",
                                 "Requested resource not found: training job 'no-such-job' does not exist")


def test_stop_training_job_and_failed_job(server: RunningServer) -> None:
    sm = server.client("sagemaker")
    sm.create_training_job(**training_request("srv-sleeper", "import time\nprint('sleeping', flush=True)\n"
                                                            "time.sleep(60)"))
    sm.create_training_job(**training_request("srv-failing", "raise SystemExit('bad input data')"))
    wait_until(lambda: sm.describe_training_job(TrainingJobName="srv-sleeper")["SecondaryStatus"] == "Training",
               what="the sleeping job to train")
    assert sm.stop_training_job(TrainingJobName="srv-sleeper")["ResponseMetadata"]["HTTPStatusCode"] == 200
    waiter = sm.get_waiter("training_job_completed_or_stopped")
    waiter.wait(TrainingJobName="srv-sleeper", WaiterConfig=FAST)
    assert sm.describe_training_job(TrainingJobName="srv-sleeper")["TrainingJobStatus"] == "Stopped"
    with pytest.raises(Exception, match="Failed"):  # the waiter's failure state: the job Failed
        waiter.wait(TrainingJobName="srv-failing", WaiterConfig=FAST)
    failed = sm.describe_training_job(TrainingJobName="srv-failing")
    assert failed["TrainingJobStatus"] == "Failed" and "bad input data" in failed["FailureReason"]


# -- tuning jobs ---------------------------------------------------------------------------------


def tuning_request(name: str, train_uri: str, jobs: int) -> dict[str, Any]:
    from forgeml.sdk.image_uris import retrieve

    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "train:objective_loss:final"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"ContinuousParameterRanges": [
                {"Name": "learning_rate", "MinValue": "0.01", "MaxValue": "0.2", "ScalingType": "Auto"}]},
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"predictor_type": "binary_classifier", "feature_dim": str(FEATURES),
                                      "epochs": "2"},
            "AlgorithmSpecification": {"TrainingImage": retrieve("linear-learner", "us-east-1"),
                                       "TrainingInputMode": "File"},
            "RoleArn": ROLE,
            "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv",
                                 "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": train_uri}}}],
            "OutputDataConfig": {"S3OutputPath": "s3://server-tests/tuning"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
        "Tags": [{"Key": "purpose", "Value": "tuning"}],
    }


def test_tuning_jobs_round_trip(server: RunningServer) -> None:
    sm = server.client("sagemaker")
    upload_training_csv(server, "s3://server-tests/tuning-data/train.csv")
    created = sm.create_hyper_parameter_tuning_job(**tuning_request("srv-tune", "s3://server-tests/tuning-data/", 2))
    arn = created["HyperParameterTuningJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:hyper-parameter-tuning-job/srv-tune"
    described = wait_until(lambda: (lambda d: d if d["HyperParameterTuningJobStatus"] != "InProgress" else None)(
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="srv-tune")), timeout=120,
        what="the tuning job to finish")
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"]["Completed"] == 2
    assert isinstance(described["CreationTime"], datetime) and isinstance(described["HyperParameterTuningEndTime"],
                                                                          datetime)
    best = described["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"] == "train:objective_loss:final"
    assert set(best["TunedHyperParameters"]) == {"learning_rate"}

    listed = sm.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    assert [(s["HyperParameterTuningJobName"], s["HyperParameterTuningJobStatus"]) for s in listed] == [
        ("srv-tune", "Completed")]
    pages = list(sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName="srv-tune", PaginationConfig={"PageSize": 1}))
    assert len(pages) == 2
    trials = [s for p in pages for s in p["TrainingJobSummaries"]]
    assert best["TrainingJobName"] in {t["TrainingJobName"] for t in trials}
    assert all(isinstance(t["CreationTime"], datetime) for t in trials)
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "purpose", "Value": "tuning"}]

    sm.create_hyper_parameter_tuning_job(**tuning_request("srv-tune-stop", "s3://server-tests/tuning-data/", 4))
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="srv-tune-stop")
    stopped = wait_until(lambda: (lambda d: d if d["HyperParameterTuningJobStatus"] == "Stopped" else None)(
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="srv-tune-stop")), timeout=60,
        what="the tuning job to stop")
    assert stopped["HyperParameterTuningJobStatus"] == "Stopped"

    with pytest.raises(ClientError) as missing:
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="no-such-tuning")
    assert error_of(missing) == (400, "ResourceNotFound", "Amazon SageMaker can't find a tuning job with name "
                                                          "no-such-tuning")
    with pytest.raises(ClientError) as too_long:
        sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="t" * 33)
    status, code, message = error_of(too_long)
    assert (status, code) == (400, "ValidationException")
    assert "at 'hyperParameterTuningJobName' failed to satisfy constraint: Member must have length less than or " \
           "equal to 32" in message


# -- models, endpoint configs, endpoints ---------------------------------------------------------


def test_models_configs_and_endpoints_round_trip(server: RunningServer, linear_learner_model: Any) -> None:
    sm = server.client("sagemaker")
    model_arn = sm.create_model(**linear_learner_model("srv-model-a"))["ModelArn"]
    assert model_arn == "arn:aws:sagemaker:us-east-1:000000000000:model/srv-model-a"
    sm.create_model(**linear_learner_model("srv-model-b"))
    model = sm.describe_model(ModelName="srv-model-a")
    assert model["PrimaryContainer"]["ModelDataUrl"] == "s3://server-models/srv-model-a/model.tar.gz"
    assert model["ExecutionRoleArn"] == ROLE and isinstance(model["CreationTime"], datetime)
    pages = list(sm.get_paginator("list_models").paginate(SortBy="Name", SortOrder="Ascending",
                                                          PaginationConfig={"PageSize": 1}))
    assert [[m["ModelName"] for m in p["Models"]] for p in pages] == [["srv-model-a"], ["srv-model-b"]]
    assert sm.list_tags(ResourceArn=model_arn)["Tags"] == [{"Key": "team", "Value": "ufo"}]

    variant = {"VariantName": "AllTraffic", "ModelName": "srv-model-a", "InitialInstanceCount": 1,
               "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}
    config_arn = sm.create_endpoint_config(EndpointConfigName="srv-config", ProductionVariants=[variant],
                                           Tags=[{"Key": "stage", "Value": "test"}])["EndpointConfigArn"]
    sm.create_endpoint_config(EndpointConfigName="srv-config-b",
                              ProductionVariants=[{**variant, "ModelName": "srv-model-b"}])
    config = sm.describe_endpoint_config(EndpointConfigName="srv-config")
    assert config["ProductionVariants"][0]["ModelName"] == "srv-model-a"
    assert config["EndpointConfigArn"] == config_arn and isinstance(config["CreationTime"], datetime)
    assert [c["EndpointConfigName"] for c in sm.list_endpoint_configs(SortBy="Name", SortOrder="Ascending")[
        "EndpointConfigs"]] == ["srv-config", "srv-config-b"]
    assert sm.list_tags(ResourceArn=config_arn)["Tags"] == [{"Key": "stage", "Value": "test"}]

    endpoint_arn = sm.create_endpoint(EndpointName="srv-endpoint", EndpointConfigName="srv-config")["EndpointArn"]
    assert endpoint_arn == "arn:aws:sagemaker:us-east-1:000000000000:endpoint/srv-endpoint"
    sm.get_waiter("endpoint_in_service").wait(EndpointName="srv-endpoint", WaiterConfig=FAST)
    endpoint = sm.describe_endpoint(EndpointName="srv-endpoint")
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == "srv-config"
    deployed = endpoint["ProductionVariants"][0]
    assert deployed["VariantName"] == "AllTraffic" and deployed["CurrentInstanceCount"] == 1
    assert isinstance(deployed["DeployedImages"][0]["ResolutionTime"], datetime)
    summaries = [page["Endpoints"] for page in sm.get_paginator("list_endpoints").paginate()]
    assert [[(e["EndpointName"], e["EndpointStatus"]) for e in s] for s in summaries] == [
        [("srv-endpoint", "InService")]]

    sm.update_endpoint_weights_and_capacities(EndpointName="srv-endpoint", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredWeight": 2.0}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="srv-endpoint", WaiterConfig=FAST)
    assert sm.describe_endpoint(EndpointName="srv-endpoint")["ProductionVariants"][0]["CurrentWeight"] == 2.0
    sm.update_endpoint(EndpointName="srv-endpoint", EndpointConfigName="srv-config-b")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="srv-endpoint", WaiterConfig=FAST)
    assert sm.describe_endpoint(EndpointName="srv-endpoint")["EndpointConfigName"] == "srv-config-b"

    with pytest.raises(ClientError) as taken:
        sm.create_endpoint(EndpointName="srv-endpoint", EndpointConfigName="srv-config")
    assert error_of(taken) == (400, "ValidationException", f'Cannot create already existing endpoint "{endpoint_arn}".')

    sm.delete_endpoint(EndpointName="srv-endpoint")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="srv-endpoint", WaiterConfig=FAST)
    for name in ("srv-config", "srv-config-b"):
        sm.delete_endpoint_config(EndpointConfigName=name)
    for name in ("srv-model-a", "srv-model-b"):
        sm.delete_model(ModelName=name)
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
    with pytest.raises(ClientError) as gone:
        sm.describe_model(ModelName="srv-model-a")
    assert error_of(gone) == (400, "ValidationException",
                              'Could not find model "arn:aws:sagemaker:us-east-1:000000000000:model/srv-model-a".')
    with pytest.raises(ClientError) as untagged:
        sm.list_tags(ResourceArn=model_arn)
    assert error_of(untagged)[:2] == (400, "ResourceNotFound")


# -- transform jobs ------------------------------------------------------------------------------


def test_transform_jobs_round_trip(server: RunningServer, linear_learner_model: Any) -> None:
    sm = server.client("sagemaker")
    sm.create_model(**linear_learner_model("srv-batch-model"))
    store = server.platform.artifacts
    store.ensure_bucket("server-batch")
    store.put_bytes(b"1,2,3,4\n0,0,0,1\n-1,2,0,0\n", "s3://server-batch/input/rows.csv")
    request = {"ModelName": "srv-batch-model", "TransformResources": {"InstanceType": "ml.m5.large",
                                                                      "InstanceCount": 1},
               "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                  "S3Uri": "s3://server-batch/input/"}},
                                  "ContentType": "text/csv", "SplitType": "Line"},
               "TransformOutput": {"S3OutputPath": "s3://server-batch/output/", "AssembleWith": "Line"}}
    arn = sm.create_transform_job(TransformJobName="srv-batch", Tags=[{"Key": "k", "Value": "v"}],
                                  **request)["TransformJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:transform-job/srv-batch"
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="srv-batch", WaiterConfig=FAST)
    described = sm.describe_transform_job(TransformJobName="srv-batch")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert isinstance(described["TransformStartTime"], datetime) and isinstance(described["TransformEndTime"],
                                                                                datetime)
    output = store.get_bytes("s3://server-batch/output/rows.csv.out").decode()
    assert len(output.strip().splitlines()) == 3 and "predicted_label" in output

    sm.create_transform_job(TransformJobName="srv-batch-2", **request)
    pages = list(sm.get_paginator("list_transform_jobs").paginate(SortBy="Name", SortOrder="Ascending",
                                                                  PaginationConfig={"PageSize": 1}))
    assert [[s["TransformJobName"] for s in p["TransformJobSummaries"]] for p in pages] == [["srv-batch"],
                                                                                            ["srv-batch-2"]]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="srv-batch-2", WaiterConfig=FAST)
    with pytest.raises(ClientError) as finished:
        sm.stop_transform_job(TransformJobName="srv-batch")
    assert error_of(finished) == (400, "ValidationException",
                                  "The request was rejected because the transform job is in status Completed.")
    with pytest.raises(ClientError) as missing:
        sm.describe_transform_job(TransformJobName="no-such-batch")
    assert error_of(missing) == (400, "ValidationException", "Could not find requested job with name no-such-batch")


# -- bad input -----------------------------------------------------------------------------------


def test_bad_requests_are_refused_in_sagemakers_shape_and_store_nothing(server: RunningServer) -> None:
    unchecked = server.client("sagemaker", parameter_validation=False)

    def refusal(operation: str, **params: Any) -> tuple[int, str, str]:
        with pytest.raises(ClientError) as refused:
            getattr(unchecked, operation)(**params)
        return error_of(refused)

    wrong_type = training_request("srv-typed")
    wrong_type["ResourceConfig"]["InstanceCount"] = "two"
    status, code, message = refusal("create_training_job", **wrong_type)
    assert (status, code) == (400, "SerializationException")
    assert "Value 'two' at 'resourceConfig.instanceCount' cannot be read as an integer (it is a string)" in message

    status, code, message = refusal("create_training_job", **{**training_request("srv-typed"),
                                                                "EnableNetworkIsolation": "yes"})
    assert (status, code) == (400, "SerializationException")
    assert "Value 'yes' at 'enableNetworkIsolation' cannot be read as a boolean" in message
    status, code, message = refusal("describe_endpoint", EndpointName=7)
    assert (status, code) == (400, "SerializationException") and "at 'endpointName' cannot be read as a string" in message

    no_role = training_request("srv-no-role")
    del no_role["RoleArn"]
    status, code, message = refusal("create_training_job", **no_role)
    assert (status, code) == (400, "ValidationException") and "'roleArn'" in message and "not be null" in message

    status, code, message = refusal("create_training_job", **training_request("../../etc/passwd"))
    assert (status, code) == (400, "ValidationException") and "at 'trainingJobName'" in message
    for operation, member in (("describe_model", "ModelName"), ("delete_endpoint", "EndpointName"),
                              ("describe_endpoint_config", "EndpointConfigName"),
                              ("stop_transform_job", "TransformJobName")):
        status, code, message = refusal(operation, **{member: "../../x"})
        assert (status, code) == (400, "ValidationException"), operation
        assert "Member must satisfy regular expression pattern" in message, operation
    status, code, message = refusal("describe_training_job")
    assert (status, code, message) == (400, "ValidationException", "1 validation error detected: Value 'null' at "
                                       "'trainingJobName' failed to satisfy constraint: Member must not be null")
    status, code, message = refusal("list_training_jobs", MaxResults=1000)
    assert (status, code) == (400, "ValidationException") and "'maxResults'" in message

    status, code, message = refusal("add_tags", ResourceArn="arn:aws:sagemaker:us-east-1:000000000000:model/m",
                                    Tags=[{"Key": "a", "Value": "b"}])
    assert (status, code) == (400, "UnknownOperationException")
    assert message.startswith("forgeml does not serve SageMaker.AddTags") and "ListTags" in message

    # nothing was stored, and the server still serves
    sm = server.client("sagemaker")
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []
    assert not (server.platform.config.home / "etc").exists()
    assert sm.list_models()["Models"] == []


def test_time_filters_and_tokens_travel_as_json_numbers(server: RunningServer) -> None:
    sm = server.client("sagemaker")
    sm.create_training_job(**training_request("srv-time"))
    created = sm.describe_training_job(TrainingJobName="srv-time")["CreationTime"]
    assert [s["TrainingJobName"] for s in sm.list_training_jobs(
        CreationTimeBefore=created + timedelta(seconds=1))["TrainingJobSummaries"]] == ["srv-time"]
    assert sm.list_training_jobs(CreationTimeAfter=created + timedelta(seconds=1))["TrainingJobSummaries"] == []
    with pytest.raises(ClientError) as bad_token:
        sm.list_training_jobs(NextToken="not-a-token")
    assert error_of(bad_token)[:2] == (400, "ValidationException")
    sm.get_waiter("training_job_completed_or_stopped").wait(TrainingJobName="srv-time", WaiterConfig=FAST)
