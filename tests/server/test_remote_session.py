"""``forgeml.Session(endpoint_url=...)``: the whole forgeml SDK against a server, as the embedded SDK behaves.

Every test runs a real server (authentication on, the default key) over the test's FORGEML_HOME and
points the client's FORGEML_HOME somewhere else that must never be created: everything the remote
session does lands in the server's store. ``embedded`` is a Session on the server's own platform, the
in-process SDK the remote one is compared with: same answers, same printed logs, same errors.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.server.conftest import FEATURES, ROLE, WEIGHTS, RunningServer, wait_until

from forgeml import DataCaptureConfig, HyperparameterTuner, LinearLearner, Model, Session, Transformer
from forgeml.deserializers import JSONDeserializer
from forgeml.errors import (
    ForgeMLError,
    ModelError,
    ResourceNotFound,
    RuntimeValidationError,
    ValidationException,
)
from forgeml.hosting.capture import read_capture_records
from forgeml.image_uris import retrieve
from forgeml.sdk.amazon_estimators import LinearLearnerPredictor
from forgeml.sdk.analytics import HyperparameterTuningJobAnalytics, TrainingJobAnalytics
from forgeml.sdk.parameter import ContinuousParameter
from forgeml.sdk.remote import RemoteArtifactStore, RemotePlatform
from forgeml.serializers import CSVSerializer, JSONSerializer
from forgeml.service.autoscaling import ObjectNotFoundException
from forgeml.storage.artifacts import StoredObject

pytestmark = pytest.mark.timeout(240)

#: a status line logs_for_job prints ("2026-11-23 14:34:34 Completed - Training job completed")
TRANSITION = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \w+ - ")


@pytest.fixture
def client_home(server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The client's FORGEML_HOME, set once the server runs; a remote session must never create it."""
    home = tmp_path / "client-home"
    monkeypatch.setenv("FORGEML_HOME", str(home))
    yield home
    assert not home.exists(), "the remote session wrote to the client's FORGEML_HOME"


@pytest.fixture
def remote(server: RunningServer, client_home: Path) -> Session:
    return Session(endpoint_url=server.url, aws_access_key_id=server.access_key,
                   aws_secret_access_key=server.secret_key, poll_interval=0.05)


@pytest.fixture
def embedded(server: RunningServer) -> Session:
    """The embedded SDK on the very platform the server serves."""
    session = Session(server.platform.config.home, poll_interval=0.05)
    assert session.platform is server.platform
    return session


def labelled(rows: int, seed: int, *, margin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Rows labelled by the rule the conftest's model learned; ``margin`` keeps rows clear of its boundary."""
    features = np.random.default_rng(seed).normal(size=(rows * 4, FEATURES)).astype(np.float32)
    features = features[np.abs(features @ WEIGHTS) > margin][:rows]
    return features, (features @ WEIGHTS > 0).astype(np.float32)


def raised(call: Any) -> Exception:
    """The exception ``call()`` raises (the test fails when it raises none)."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the point is to compare whatever comes out
        return error
    pytest.fail("the call raised nothing")


def answer(response: dict[str, Any]) -> dict[str, Any]:
    """A client's answer without its ResponseMetadata (whose RequestId is new on every call)."""
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


def same_events(remote_events: list[dict[str, Any]], embedded_events: list[dict[str, Any]]) -> bool:
    """The same log events (ids, streams, messages); times agree to the millisecond they are sent in."""
    def without_time(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k != "timestamp"} for e in events]

    return without_time(remote_events) == without_time(embedded_events) and all(
        abs(r["timestamp"] - e["timestamp"]) <= 1 for r, e in zip(remote_events, embedded_events, strict=True))


def same_error(remote_call: Any, embedded_call: Any) -> Exception:
    """Both calls raise the same class with the same message; the remote one is returned."""
    remote_error, embedded_error = raised(remote_call), raised(embedded_call)
    assert type(remote_error) is type(embedded_error)
    assert str(remote_error) == str(embedded_error)
    return remote_error


# -- training, logs, tuning ---------------------------------------------------------------------------


def test_fit_with_logs_tuning_and_analytics_match_the_embedded_sdk(
        remote: Session, embedded: Session, server: RunningServer, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert isinstance(remote.platform, RemotePlatform)
    assert remote.default_bucket() == "sagemaker-us-east-1-000000000000"

    # upload_data: a file and a folder land in the server's store
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("alpha")
    (tmp_path / "notes" / "deep").mkdir()
    (tmp_path / "notes" / "deep" / "b.txt").write_text("beta")
    folder = remote.upload_data(tmp_path / "notes", key_prefix="ufo/notes")
    single = remote.upload_data(tmp_path / "notes" / "a.txt", key_prefix="ufo/single")
    assert (folder, single) == ("s3://sagemaker-us-east-1-000000000000/ufo/notes",
                                "s3://sagemaker-us-east-1-000000000000/ufo/single/a.txt")
    assert server.platform.artifacts.get_bytes(folder + "/deep/b.txt") == b"beta"
    assert remote.read_s3_file("sagemaker-us-east-1-000000000000", "ufo/single/a.txt") == "alpha"

    features, labels = labelled(400, seed=3)
    learner = LinearLearner(role=ROLE, instance_count=1, instance_type="ml.m5.large",
                            predictor_type="binary_classifier", epochs=2, sagemaker_session=remote)
    train = learner.record_set(features[:300], labels[:300])
    validation = learner.record_set(features[300:], labels[300:], channel="validation")
    capsys.readouterr()
    learner.fit([train, validation])
    printed = capsys.readouterr().out.splitlines()
    job = learner.latest_training_job.name

    # the fit printed the job's whole log, as the embedded SDK prints it for the same job
    shown = io.StringIO()
    embedded.logs_for_job(job, stream=shown)
    expected = shown.getvalue().splitlines()
    assert any("#quality_metric: host=algo-1, epoch=1, train" in line for line in printed)
    assert any(line.endswith("Completed - Training job completed") for line in printed)
    assert printed[-2:] == expected[-2:] and printed[-1].startswith("Billable seconds: ")
    assert sorted(printed) == sorted(expected)
    replayed = io.StringIO()
    remote.logs_for_job(job, stream=replayed)
    assert ([line for line in replayed.getvalue().splitlines() if not TRANSITION.match(line)]
            == [line for line in expected if not TRANSITION.match(line)])
    assert sorted(replayed.getvalue().splitlines()) == sorted(expected)

    assert answer(remote.describe_training_job(job)) == answer(embedded.describe_training_job(job))
    assert learner.model_data == f"s3://sagemaker-us-east-1-000000000000/{job}/output/model.tar.gz"
    assert server.platform.artifacts.exists(learner.model_data)
    remote_metrics = TrainingJobAnalytics(job, sagemaker_session=remote).dataframe()
    embedded_metrics = TrainingJobAnalytics(job, sagemaker_session=embedded).dataframe()
    assert len(remote_metrics) > 0 and "train:objective_loss" in set(remote_metrics["metric_name"])
    # the log's timestamps travel in milliseconds: the series agree to the millisecond
    pd.testing.assert_frame_equal(remote_metrics, embedded_metrics, check_exact=False, rtol=0, atol=2e-3)

    tuner = HyperparameterTuner(learner, "validation:objective_loss", {"learning_rate": ContinuousParameter(0.01, 0.2)},
                                objective_type="Minimize", max_jobs=2, max_parallel_jobs=2)
    tuner.fit([train, validation])
    tuning_job = tuner.latest_tuning_job
    assert tuning_job is not None
    assert tuner.describe() == embedded.platform.tuning_jobs.describe_hyper_parameter_tuning_job(tuning_job)
    assert tuner.describe()["HyperParameterTuningJobStatus"] == "Completed"
    assert remote.platform.tuning_jobs.trial_summaries(tuning_job) == embedded.platform.tuning_jobs.trial_summaries(
        tuning_job)
    remote_frame = tuner.analytics().dataframe()
    pd.testing.assert_frame_equal(remote_frame, HyperparameterTuningJobAnalytics(
        tuning_job, sagemaker_session=embedded).dataframe())
    assert len(remote_frame) == 2 and set(remote_frame["TrainingJobStatus"]) == {"Completed"}

    predictor = tuner.deploy(1, "ml.m5.large")
    try:
        assert isinstance(predictor, LinearLearnerPredictor)
        probe = np.array([[3.0, -3.0, 0.0, 0.0], [-3.0, 3.0, 0.0, 0.0]], dtype=np.float32)
        answers = predictor.predict(probe)
        assert [record.label["predicted_label"].float32_tensor.values[0] for record in answers] == [1.0, 0.0]
    finally:
        predictor.delete_endpoint()
    wait_until(lambda: not remote.platform.endpoints.exists(predictor.endpoint_name), 30, "the endpoint to go")
    predictor.delete_model()

    # the session's clients: paging and log reading through the server
    pages = list(remote.sagemaker_client.get_paginator("list_training_jobs").paginate(MaxResults=1))
    assert len(pages) == 3 and all(len(page["TrainingJobSummaries"]) == 1 for page in pages)
    streams = remote.logs_client.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                                      logStreamNamePrefix=job)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [s["logStreamName"] for s in embedded.logs_client.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=job)["logStreams"]]
    read = remote.logs_client.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                             logStreamName=streams[0]["logStreamName"])
    assert [e["message"] for e in read["events"]] == [line for line in expected if not TRANSITION.match(line)][:-2]

    # the records are the server's
    stored = {s["TrainingJobName"] for s in server.platform.training_jobs.list_training_jobs(MaxResults=100)[
        "TrainingJobSummaries"]}
    trials = {s["TrainingJobName"] for s in remote_frame.to_dict("records")}
    assert stored == {job, *trials}
    assert server.platform.models.list_models()["Models"] == []


# -- hosting and batch transform ------------------------------------------------------------------------


def test_deploy_predict_capture_update_transform_delete_as_embedded(
        remote: Session, embedded: Session, server: RunningServer, linear_learner_tarball: Path,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_data = remote.upload_data(linear_learner_tarball, key_prefix="remote/model")
    model = Model(retrieve("linear-learner", remote.boto_region_name), model_data, ROLE, name="remote-ll",
                  sagemaker_session=remote)
    destination = f"s3://{remote.default_bucket()}/captures"
    capture = DataCaptureConfig(enable_capture=True, sampling_percentage=100, destination_s3_uri=destination,
                                sagemaker_session=remote)
    predictor = model.deploy(1, "ml.m5.large", endpoint_name="remote-ll", data_capture_config=capture,
                             serializer=CSVSerializer(), deserializer=JSONDeserializer())
    assert re.fullmatch(r"-*!\n", capsys.readouterr().out)
    try:
        probe, expected = labelled(6, seed=11, margin=2.0)
        by_csv = predictor.predict(probe)
        assert [p["predicted_label"] for p in by_csv["predictions"]] == expected.tolist()
        rows, _ = labelled(20, seed=12)
        served = [p["predicted_label"] for p in predictor.predict(rows)["predictions"]]
        predictor.serializer = JSONSerializer()
        by_json = predictor.predict({"instances": [{"features": row} for row in probe.tolist()]})
        assert by_json == by_csv

        # the runtime's answers and errors are the embedded ones
        request = {"EndpointName": "remote-ll", "ContentType": "text/csv", "Accept": "application/json",
                   "Body": "1.5,-2,0.25,3"}
        remote_answer = remote.sagemaker_runtime_client.invoke_endpoint(**request)
        embedded_answer = embedded.sagemaker_runtime_client.invoke_endpoint(**request)
        assert remote_answer["Body"].read() == embedded_answer["Body"].read()
        assert {k: remote_answer[k] for k in ("ContentType", "InvokedProductionVariant")} == {
            k: embedded_answer[k] for k in ("ContentType", "InvokedProductionVariant")} == {
            "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic"}
        assert set(remote_answer["ResponseMetadata"]) == {"RequestId", "HTTPStatusCode", "RetryAttempts"}
        bad = {**request, "Body": "1,2"}
        error = same_error(lambda: remote.sagemaker_runtime_client.invoke_endpoint(**bad),
                           lambda: embedded.sagemaker_runtime_client.invoke_endpoint(**bad))
        twin = raised(lambda: embedded.sagemaker_runtime_client.invoke_endpoint(**bad))
        assert isinstance(error, ModelError) and isinstance(twin, ModelError)
        assert error.original_status_code == twin.original_status_code == 400
        assert (error.original_message, error.log_stream_arn) == (twin.original_message, twin.log_stream_arn)
        assert error.log_stream_arn.startswith("arn:aws:logs:us-east-1:000000000000:log-group:")
        same_error(lambda: predictor.send_feedback(1.0, variant_name="AllTraffic"),
                   lambda: embedded.platform.runtime.send_feedback("remote-ll", 1.0, variant_name="AllTraffic"))

        # captures, read back through the remote artifact store
        captured = wait_until(lambda: len(records := read_capture_records(remote.platform.artifacts, destination,
                                                                         "remote-ll")) >= 5 and records,
                              30, "the captures")
        assert captured == read_capture_records(server.platform.artifacts, destination, "remote-ll")
        assert captured[0]["captureData"]["endpointInput"]["observedContentType"] == "text/csv"

        # autoscaling through the session's client, as embedded
        target = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/remote-ll/variant/AllTraffic",
                  "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
        remote.autoscaling_client.register_scalable_target(**target, MinCapacity=1, MaxCapacity=2)
        targets = remote.autoscaling_client.describe_scalable_targets(ServiceNamespace="sagemaker")
        assert targets["ScalableTargets"] == embedded.autoscaling_client.describe_scalable_targets(
            ServiceNamespace="sagemaker")["ScalableTargets"]
        assert [t["MaxCapacity"] for t in targets["ScalableTargets"]] == [2]
        remote.autoscaling_client.deregister_scalable_target(**target)

        # update: a new config with another capture destination
        elsewhere = f"s3://{remote.default_bucket()}/captures-2"
        predictor.update_data_capture_config(DataCaptureConfig(enable_capture=True, sampling_percentage=100,
                                                               destination_s3_uri=elsewhere))
        described = answer(remote.describe_endpoint("remote-ll"))
        assert described == answer(embedded.describe_endpoint("remote-ll"))
        assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] != "remote-ll"
        assert described["DataCaptureConfig"]["DestinationS3Uri"] == elsewhere
        predictor.serializer = CSVSerializer()
        assert predictor.predict(probe) == by_csv
        wait_until(lambda: read_capture_records(remote.platform.artifacts, elsewhere, "remote-ll"), 30,
                   "the captures after the update")
    finally:
        predictor.delete_endpoint()
    wait_until(lambda: not remote.platform.endpoints.exists("remote-ll"), 30, "the endpoint to go")
    assert server.platform.endpoints.list_endpoints()["Endpoints"] == []

    # batch transform on the same model, its log printed as it runs: the endpoint's answers, row by row
    (tmp_path / "batch").mkdir()
    (tmp_path / "batch" / "rows.csv").write_text("\n".join(",".join(f"{v:g}" for v in row) for row in rows) + "\n")
    batch = remote.upload_data(tmp_path / "batch", key_prefix="remote/batch")
    transformer = Transformer("remote-ll", 1, "ml.m5.large", accept="application/jsonlines", assemble_with="Line",
                              sagemaker_session=remote)
    capsys.readouterr()
    transformer.transform(batch, content_type="text/csv", split_type="Line")
    job = transformer.latest_transform_job
    assert job is not None and job.describe()["TransformJobStatus"] == "Completed"
    assert job.describe() == embedded.platform.transform_jobs.describe_transform_job(job.name)
    events = embedded.platform.transform_jobs.log_events(job.name)
    messages = [e["message"] for e in events]
    assert messages and same_events(remote.platform.transform_jobs.log_events(job.name), events)
    assert same_events(remote.platform.transform_jobs.log_events(job.name, events[0]["id"], 2), events[1:3])
    printed = capsys.readouterr().out
    assert all(message in printed for message in messages)
    outputs = [o for o in remote.platform.artifacts.list_objects(transformer.output_path) if o.uri.endswith(".out")]
    assert [o.relative_name for o in outputs] == ["rows.csv.out"]
    lines = remote.platform.artifacts.get_bytes(outputs[0].uri).decode().splitlines()
    assert [json.loads(line)["predicted_label"] for line in lines] == served

    remote.delete_model("remote-ll")
    assert not server.platform.models.exists("remote-ll")


# -- errors ----------------------------------------------------------------------------------------------


def bad_training_request() -> dict[str, Any]:
    return {"TrainingJobName": "bad-job", "RoleArn": ROLE,
            "AlgorithmSpecification": {"TrainingImage": retrieve("linear-learner"), "TrainingInputMode": "File"},
            "OutputDataConfig": {"S3OutputPath": "s3://anywhere/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 0, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60}}


def test_errors_are_the_embedded_platforms(remote: Session, embedded: Session, server: RunningServer) -> None:
    error = same_error(lambda: remote.platform.training_jobs.create_training_job(bad_training_request()),
                       lambda: embedded.platform.training_jobs.create_training_job(bad_training_request()))
    assert isinstance(error, ValidationException)
    assert "Value '0' at 'resourceConfig.instanceCount' failed to satisfy constraint" in str(error)
    # a member botocore's model does not know still reaches the server, which refuses it as embedded does
    unknown = {**bad_training_request(), "Colour": "blue"}
    error = same_error(lambda: remote.sagemaker_client.create_training_job(**unknown),
                       lambda: embedded.sagemaker_client.create_training_job(**unknown))
    assert 'Unknown parameter in input: "Colour"' in str(error)
    learner = LinearLearner(role=ROLE, instance_count=1, instance_type="ml.m5.huge", feature_dim=4,
                            predictor_type="binary_classifier", sagemaker_session=remote)
    with pytest.raises(ValidationException, match="ml.m5.huge"):
        learner.fit(learner.record_set(*labelled(10, seed=1)), logs=False)

    assert isinstance(same_error(lambda: remote.describe_training_job("no-such-job"),
                                 lambda: embedded.describe_training_job("no-such-job")), ResourceNotFound)
    assert isinstance(same_error(lambda: remote.describe_model("no-such-model"),
                                 lambda: embedded.describe_model("no-such-model")), ValidationException)
    assert not remote.platform.models.exists("no-such-model")
    assert not remote.platform.endpoints.exists("no-such-endpoint")
    assert remote.platform.endpoints.variant_names("no-such-endpoint") is None
    missing = {"EndpointName": "no-such-endpoint", "ContentType": "text/csv", "Body": b"1,2,3,4"}
    error = same_error(lambda: remote.sagemaker_runtime_client.invoke_endpoint(**missing),
                       lambda: embedded.sagemaker_runtime_client.invoke_endpoint(**missing))
    assert isinstance(error, RuntimeValidationError)
    assert str(error) == "Endpoint no-such-endpoint of account 000000000000 not found."
    same_error(lambda: remote.platform.runtime.send_feedback("no-such-endpoint", 1.0, variant_name="A"),
               lambda: embedded.platform.runtime.send_feedback("no-such-endpoint", 1.0, variant_name="A"))
    policy = {"PolicyName": "p", "ServiceNamespace": "sagemaker", "ResourceId": "endpoint/e/variant/v",
              "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
    assert isinstance(same_error(lambda: remote.autoscaling_client.delete_scaling_policy(**policy),
                                 lambda: embedded.autoscaling_client.delete_scaling_policy(**policy)),
                      ObjectNotFoundException)

    # nothing was stored by the refusals
    assert server.platform.training_jobs.list_training_jobs()["TrainingJobSummaries"] == []
    assert remote.sagemaker_client.list_training_jobs()["TrainingJobSummaries"] == []


ALARM: dict[str, Any] = {
    "AlarmName": "remote-5xx", "Namespace": "AWS/SageMaker", "MetricName": "Invocation5XXErrors",
    "Dimensions": [{"Name": "EndpointName", "Value": "remote-ll"}, {"Name": "VariantName", "Value": "AllTraffic"}],
    "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 1, "Threshold": 0.0,
    "ComparisonOperator": "GreaterThanThreshold",
}


def test_alarms_through_the_servers_cloudwatch(remote: Session, embedded: Session) -> None:
    remote.cloudwatch_client.put_metric_alarm(**ALARM)
    described = answer(remote.cloudwatch_client.describe_alarms(AlarmNames=["remote-5xx"]))
    assert described == answer(embedded.cloudwatch_client.describe_alarms(AlarmNames=["remote-5xx"]))
    assert [a["AlarmName"] for a in described["MetricAlarms"]] == ["remote-5xx"]
    remote.cloudwatch_client.set_alarm_state(AlarmName="remote-5xx", StateValue="ALARM", StateReason="a drill")
    alarm = remote.platform.alarms.get_alarm("remote-5xx")
    assert alarm == embedded.platform.alarms.get_alarm("remote-5xx")
    assert alarm is not None and (alarm["StateValue"], alarm["StateReason"]) == ("ALARM", "a drill")
    remote.cloudwatch_client.delete_alarms(AlarmNames=["remote-5xx"])
    assert remote.platform.alarms.get_alarm("remote-5xx") is None
    assert embedded.platform.alarms.get_alarm("remote-5xx") is None

    bad_alarm = {**ALARM, "ComparisonOperator": "Bigger"}
    assert isinstance(same_error(lambda: remote.cloudwatch_client.put_metric_alarm(**bad_alarm),
                                 lambda: embedded.cloudwatch_client.put_metric_alarm(**bad_alarm)),
                      ValidationException)
    assert isinstance(same_error(lambda: remote.platform.alarms.set_alarm_state("no-such-alarm", "OK", "why"),
                                 lambda: embedded.platform.alarms.set_alarm_state("no-such-alarm", "OK", "why")),
                      ResourceNotFound)


def test_credentials_region_and_account(server: RunningServer, client_home: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(server.platform.config.home / "credentials"))
    by_profile = Session(endpoint_url=server.url, profile_name="forgeml")
    assert by_profile.config.account_id == "000000000000"
    assert by_profile.sagemaker_client.list_models()["Models"] == []
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert Session(endpoint_url=server.url, profile_name="forgeml").boto_region_name == "eu-west-1"
    assert Session(endpoint_url=server.url, profile_name="forgeml", region_name="ap-south-1").boto_region_name == \
        "ap-south-1"
    monkeypatch.delenv("AWS_REGION")

    wrong = Session(endpoint_url=server.url, aws_access_key_id=server.access_key, aws_secret_access_key="not-it")
    error = raised(lambda: wrong.sagemaker_client.list_models())
    assert isinstance(error, ForgeMLError) and (error.code, error.http_status) == ("InvalidSignatureException", 403)
    with pytest.raises(ValueError, match="give one of them"):
        Session(server.platform.config.home, endpoint_url=server.url)
    with pytest.raises(ValueError, match="give endpoint_url with them"):
        Session(profile_name="forgeml")
    with pytest.raises(ValueError, match="endpoint_url must be an http"):
        Session(endpoint_url="build-box:8080")


# -- artifacts -------------------------------------------------------------------------------------------


def test_remote_artifact_store_behaves_as_the_local_one(remote: Session, server: RunningServer,
                                                        tmp_path: Path) -> None:
    store = remote.platform.artifacts
    local = server.platform.artifacts
    assert isinstance(store, RemoteArtifactStore)
    store.ensure_bucket("artifacts")
    store.ensure_bucket("artifacts")  # twice is fine
    for key, body in (("data/train/part-1.csv", b"1,2"), ("data/train/part-2.csv", b"3,4"),
                      ("data/train.csv", b"5,6"), ("data/validation/v.csv", b"7,8"), ("other.txt", b"x")):
        store.put_bytes(body, f"s3://artifacts/{key}")
    for prefix in ("s3://artifacts/data/", "s3://artifacts/data/train", "s3://artifacts/data/train/",
                   "s3://artifacts/data/train.csv", "s3://artifacts/nothing/", "s3://artifacts/"):
        assert store.list_objects(prefix) == local.list_objects(prefix), prefix
    assert store.list_objects("s3://artifacts/data/train") == [
        StoredObject("s3://artifacts/data/train.csv", ".csv", 3),
        StoredObject("s3://artifacts/data/train/part-1.csv", "part-1.csv", 3),
        StoredObject("s3://artifacts/data/train/part-2.csv", "part-2.csv", 3)]
    for uri in ("s3://artifacts/data/train.csv", "s3://artifacts/data/train", "s3://artifacts/data/tra",
                "s3://artifacts/missing", "s3://artifacts"):
        assert store.exists(uri) == local.exists(uri), uri

    with store.open("s3://artifacts/data/train.csv") as handle:
        assert handle.read() == b"5,6"
    with store.open("s3://artifacts/notes/readme.txt", "w") as text:
        text.write("hello")
    assert local.get_bytes("s3://artifacts/notes/readme.txt") == b"hello"
    source = tmp_path / "model.bin"
    source.write_bytes(bytes(range(256)) * 64)
    store.put_file(source, "s3://artifacts/models/model.bin")
    store.get_file("s3://artifacts/models/model.bin", tmp_path / "back" / "model.bin")
    assert (tmp_path / "back" / "model.bin").read_bytes() == source.read_bytes()
    downloaded = store.download_prefix("s3://artifacts/data/train/", tmp_path / "down")
    assert sorted(p.relative_to(tmp_path / "down").as_posix() for p in downloaded) == ["part-1.csv", "part-2.csv"]
    assert (tmp_path / "down" / "part-2.csv").read_bytes() == b"3,4"

    with pytest.raises(FileNotFoundError):
        store.get_bytes("s3://artifacts/missing.csv")
    with pytest.raises(FileNotFoundError):
        local.get_bytes("s3://artifacts/missing.csv")
    for bad in ("s3://artifacts/../escape", "s3://Bad_Bucket/key", "/tmp/local/file"):
        remote_error = raised(lambda bad=bad: store.get_bytes(bad))
        assert isinstance(remote_error, ValidationException)
        if bad.startswith("s3://"):  # a local path is a file to the local store, and refused remotely
            assert str(remote_error) == str(raised(lambda bad=bad: local.get_bytes(bad)))

    store.delete("s3://artifacts/data/train")
    assert local.list_objects("s3://artifacts/data/") == [
        StoredObject("s3://artifacts/data/train.csv", "train.csv", 3),
        StoredObject("s3://artifacts/data/validation/v.csv", "validation/v.csv", 3)]


def test_model_archive_and_script_code_go_to_the_servers_store(remote: Session, server: RunningServer,
                                                              tmp_path: Path) -> None:
    """Custom inference code is packed here and uploaded there: the model's SAGEMAKER_SUBMIT_DIRECTORY is the server's."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    model = Model(entry_point="inference.py", source_dir=str(tmp_path / "code"), role=ROLE, name="coded",
                  sagemaker_session=remote)
    model.create()
    environment = server.platform.models.describe_model("coded")["PrimaryContainer"]["Environment"]
    archive = environment["SAGEMAKER_SUBMIT_DIRECTORY"]
    assert archive == "s3://sagemaker-us-east-1-000000000000/coded/sourcedir.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(server.platform.artifacts.get_bytes(archive))) as tar:
        assert tar.getnames() == ["inference.py"]
    model.delete_model()
    assert server.platform.models.list_models()["Models"] == []
