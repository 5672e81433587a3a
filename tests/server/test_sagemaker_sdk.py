"""The unmodified sagemaker SDK v2 and boto3 against forgeml server, configured only by the environment.

Each test sets what ``forgeml server`` prints for its users (AWS_ENDPOINT_URL, the credentials file
and profile, the region and SAGEMAKER_USER_CONFIG_OVERRIDE) and then runs the UFO course's notebook
code as written: ``sagemaker.Session()``, ``default_bucket``, ``upload_data``, ``image_uris``,
``Estimator.fit``, ``HyperparameterTuner``, ``deploy``, ``predict``, ``transformer`` and the course's
Lambda function. Two things are the test harness's own: a guard that refuses (and records) any
attempt to resolve a host other than this machine, so an SDK call that escapes to AWS fails the test
instead of hanging, and a fast-forward clock in ``sagemaker.session`` so the SDK's 5-30 s polling
pauses take a fraction of a second (the SDK still sees the time it expects pass).
"""

from __future__ import annotations

import importlib.util
import io
import ipaddress
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import shared_path
from tests.server.conftest import ROLE, RunningServer

pytestmark = pytest.mark.skipif(importlib.util.find_spec("sagemaker") is None,
                                reason="the sagemaker SDK v2 is not installed (pip install 'sagemaker==2.257.*')")

#: the notebook's instance type; forgeml runs every instance type on this machine
INSTANCE_TYPE = "ml.c4.xlarge"
FEATURES = 8
CLASSES = 3
#: the SDK sleeps at most this long per poll (its own intervals are 5-30 s)
REAL_PAUSE_SECONDS = 0.1


class FastForwardClock:
    """Stands in for the ``time`` module inside ``sagemaker.session``: sleeps are short, the clock jumps ahead.

    The SDK's loops compare ``time.time()`` against its own intervals (a job description every 30 s
    while tailing logs), so the skipped part of each sleep is added to the clock it reads.
    """

    def __init__(self) -> None:
        self.skipped = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def sleep(self, seconds: float) -> None:
        pause = min(seconds, REAL_PAUSE_SECONDS)
        time.sleep(pause)
        self.skipped += seconds - pause

    def time(self) -> float:
        return time.time() + self.skipped


@dataclass
class SdkWorld:
    """What a test needs: the server, the escaped host names, the sagemaker module."""

    server: RunningServer
    escapes: list[str]
    sagemaker: Any

    def s3_bytes(self, uri: str) -> bytes:
        """An object read back through the server with a plain boto3 S3 client."""
        import boto3

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        return bytes(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def is_this_machine(host: Any) -> bool:
    if host is None:
        return True
    name = host.decode() if isinstance(host, bytes) else str(host)
    if name in ("", "localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


@pytest.fixture
def network_guard(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host name this process tries to resolve that is not this machine (the call then fails at once)."""
    escapes: list[str] = []
    resolve = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_this_machine(host):
            escapes.append(host.decode() if isinstance(host, bytes) else str(host))
            raise socket.gaierror(socket.EAI_NONAME, f"forgeml's tests reach no network (asked for {host})")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return escapes


@pytest.fixture
def sdk(server: RunningServer, network_guard: list[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[SdkWorld]:
    """The environment ``forgeml server`` tells its users to set, then the sagemaker SDK imported under it."""
    from forgeml.cli.server import write_sagemaker_config

    config = server.platform.config
    monkeypatch.delenv("AWS_REGION", raising=False)
    for name, value in {
        "AWS_ENDPOINT_URL": server.url,
        "AWS_SHARED_CREDENTIALS_FILE": str(config.home / "credentials"),
        "AWS_PROFILE": "forgeml",
        "AWS_DEFAULT_REGION": config.region,
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(write_sagemaker_config(config)),
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }.items():
        monkeypatch.setenv(name, value)
    import boto3
    import sagemaker
    import sagemaker.session

    # boto3's default session caches the credentials it first found: each test's server has its own key
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setattr(sagemaker.session, "time", FastForwardClock())
    world = SdkWorld(server, network_guard, sagemaker)
    yield world
    assert network_guard == [], f"the SDK tried to reach hosts other than forgeml: {sorted(set(network_guard))}"


#: one direction per class: the class of a row is the direction it goes furthest along
CLASS_DIRECTIONS = np.array([[2.0, 0.0, -1.0, 0.0, 0.0, 0.5, 0.0, 0.0],
                             [-1.0, 2.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
                             [0.0, -1.0, 2.0, 1.0, 0.0, 0.0, 0.0, 0.0]])


def classes_of(features: np.ndarray) -> np.ndarray:
    """Linearly separable classes: what a multiclass Linear Learner learns in a few epochs."""
    return np.argmax(features @ CLASS_DIRECTIONS.T, axis=1).astype(np.float32)


def recordio_file(path: Path, features: np.ndarray, labels: np.ndarray) -> Path:
    """RecordIO-protobuf written the way the UFO notebook writes it (the SDK's own writer)."""
    from sagemaker.amazon.common import write_numpy_to_dense_tensor

    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, features, labels)
    path.write_bytes(buffer.getvalue())
    return path


def make_ufo_like_data(folder: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(1300, FEATURES)).astype(np.float32)
    labels = classes_of(features)
    folder.mkdir(parents=True, exist_ok=True)
    train = recordio_file(folder / "ufo_train.data", features[:900], labels[:900])
    validation = recordio_file(folder / "ufo_validation.data", features[900:1200], labels[900:1200])
    return train, validation, features[1200:], labels[1200:]


def linear_learner(sdk: SdkWorld, session: Any, output_path: str, **hyperparameters: Any) -> Any:
    """The notebook's Estimator, as written there (image from image_uris, Pipe mode)."""
    sagemaker = sdk.sagemaker
    container = sagemaker.image_uris.retrieve("linear-learner", session.boto_region_name, "1")
    estimator = sagemaker.estimator.Estimator(container, ROLE, instance_count=1, instance_type=INSTANCE_TYPE,
                                              output_path=output_path, sagemaker_session=session, input_mode="Pipe")
    estimator.set_hyperparameters(**hyperparameters)
    return estimator


def json_documents(text: str) -> list[Any]:
    """The JSON answers a MultiRecord transform wrote one after another (one per mini-batch)."""
    decoder = json.JSONDecoder()
    documents, position = [], 0
    while position < len(text.rstrip()):
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
        while position < len(text) and text[position].isspace():
            position += 1
    return documents


def ufo_lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The course's Lambda function: the payload goes to the endpoint as CSV; nothing but the environment differs."""
    import boto3

    runtime = boto3.client("sagemaker-runtime")
    response = runtime.invoke_endpoint(EndpointName=os.environ["ENDPOINT_NAME"], ContentType="text/csv",
                                       Body=event["data"])
    answer: dict[str, Any] = json.loads(response["Body"].read().decode())
    return answer


# -- the notebook flow ---------------------------------------------------------------------------


def test_notebook_flow_fit_deploy_predict_transform_delete(sdk: SdkWorld, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import CSVSerializer

    sagemaker = sdk.sagemaker
    session = sagemaker.Session()
    bucket = session.default_bucket()
    assert bucket == "sagemaker-us-east-1-000000000000"
    assert "sagemaker-us-east-1-000000000000" in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]

    train_file, validation_file, test_x, test_y = make_ufo_like_data(tmp_path / "data")
    train = session.upload_data(str(train_file), bucket=bucket, key_prefix="algorithms_lab/linearlearner_train")
    validation = session.upload_data(str(validation_file), bucket=bucket,
                                     key_prefix="algorithms_lab/linearlearner_validation")
    assert train == f"s3://{bucket}/algorithms_lab/linearlearner_train/ufo_train.data"
    assert sdk.s3_bytes(train) == train_file.read_bytes()
    assert sdk.server.platform.artifacts.get_bytes(validation) == validation_file.read_bytes()

    estimator = linear_learner(sdk, session, f"s3://{bucket}/optimization_evaluation_lab/output",
                               feature_dim=FEATURES, predictor_type="multiclass_classifier", num_classes=CLASSES,
                               mini_batch_size=100, epochs=5, use_bias="true")
    job_name = f"ufo-linear-learner-{int(time.time())}"
    estimator.fit({"train": train, "validation": validation}, job_name=job_name, logs=True)
    printed = capsys.readouterr().out
    assert "Completed - Training job completed" in printed
    assert "validation multiclass_accuracy" in printed  # the job's own log, tailed through the Logs API
    description = session.describe_training_job(job_name)
    assert description["TrainingJobStatus"] == "Completed"
    assert description["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    assert estimator.model_data == f"s3://{bucket}/optimization_evaluation_lab/output/{job_name}/output/model.tar.gz"
    assert sdk.s3_bytes(estimator.model_data)[:2] == b"\x1f\x8b"  # the gzip'd model.tar.gz, read through S3
    metrics = {m["MetricName"]: m["Value"] for m in description["FinalMetricDataList"]}
    assert metrics["validation:multiclass_accuracy"] >= 0.9

    predictor = estimator.deploy(initial_instance_count=1, instance_type=INSTANCE_TYPE)
    endpoint = predictor.endpoint_name
    assert session.sagemaker_client.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    predictor.serializer = CSVSerializer()
    predictor.deserializer = JSONDeserializer()
    result = predictor.predict(test_x)
    predicted = np.array([p["predicted_label"] for p in result["predictions"]])
    assert len(predicted) == len(test_y)
    assert float(np.mean(predicted == test_y)) >= 0.9
    assert all(len(p["score"]) == CLASSES for p in result["predictions"])

    # the course's Lambda, the endpoint URL coming from the environment only
    monkeypatch.setenv("ENDPOINT_NAME", endpoint)
    row = ",".join(f"{v:.6f}" for v in test_x[0])
    assert ufo_lambda_handler({"data": row}, None)["predictions"][0]["predicted_label"] == predicted[0]

    batch_file = tmp_path / "data" / "batch.csv"
    np.savetxt(batch_file, test_x, delimiter=",", fmt="%.6f")
    batch_input = session.upload_data(str(batch_file), bucket=bucket, key_prefix="batch/input")
    transformer = estimator.transformer(instance_count=1, instance_type="ml.m5.large",
                                        output_path=f"s3://{bucket}/batch/output")
    transformer.transform(batch_input, content_type="text/csv", split_type="Line")
    transformer.wait()
    transform = session.sagemaker_client.describe_transform_job(TransformJobName=transformer.latest_transform_job.name)
    assert transform["TransformJobStatus"] == "Completed"
    output = sdk.s3_bytes(f"s3://{bucket}/batch/output/batch.csv.out").decode()
    batch_labels = [p["predicted_label"] for answer in json_documents(output) for p in answer["predictions"]]
    assert batch_labels == predicted.tolist()

    predictor.delete_endpoint()
    session.sagemaker_client.get_waiter("endpoint_deleted").wait(EndpointName=endpoint,
                                                                  WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
    assert session.sagemaker_client.list_endpoints(NameContains=endpoint)["Endpoints"] == []


def test_hyperparameter_tuner_fit_wait_and_analytics(sdk: SdkWorld, tmp_path: Path) -> None:
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.serializers import CSVSerializer
    from sagemaker.tuner import ContinuousParameter, HyperparameterTuner, IntegerParameter

    sagemaker = sdk.sagemaker
    session = sagemaker.Session()
    bucket = session.default_bucket()
    train_file, validation_file, _, _ = make_ufo_like_data(tmp_path / "data")
    channels = {"train": session.upload_data(str(train_file), bucket=bucket, key_prefix="tuning/train"),
                "validation": session.upload_data(str(validation_file), bucket=bucket, key_prefix="tuning/validation")}
    estimator = linear_learner(sdk, session, f"s3://{bucket}/tuning/output", feature_dim=FEATURES,
                               predictor_type="multiclass_classifier", num_classes=CLASSES, epochs=3)
    ranges: dict[Any, Any] = {"learning_rate": ContinuousParameter(0.01, 0.2),
                              "mini_batch_size": IntegerParameter(50, 200)}
    tuner: Any = HyperparameterTuner(estimator, "validation:objective_loss", ranges, objective_type="Minimize",
                                     max_jobs=2, max_parallel_jobs=2)
    # the SDK sends the definition's HyperParameterTuningResourceConfig instead of a ResourceConfig
    tuner.fit(channels, include_cls_metadata=False)
    tuner.wait()

    name = tuner.latest_tuning_job.name
    described = session.sagemaker_client.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"]["Completed"] == 2
    frame = tuner.analytics().dataframe()
    assert len(frame) == 2
    assert set(frame["TrainingJobStatus"]) == {"Completed"}
    assert frame["FinalObjectiveValue"].notna().all()
    assert 0.01 <= frame["learning_rate"].min() <= frame["learning_rate"].max() <= 0.2
    best = tuner.best_training_job()
    assert best == frame.sort_values("FinalObjectiveValue").iloc[0]["TrainingJobName"]
    assert described["BestTrainingJob"]["TrainingJobName"] == best
    # Estimator.attach reads DescribeTrainingJob's OutputDataConfig["KmsKeyId"] (SageMaker returns "" when unset)
    best_estimator = tuner.best_estimator()
    assert best_estimator.latest_training_job.name == best
    assert best_estimator.model_data.endswith(f"/{best}/output/model.tar.gz")

    predictor = tuner.deploy(initial_instance_count=1, instance_type=INSTANCE_TYPE, serializer=CSVSerializer(),
                             deserializer=JSONDeserializer())
    test_x = np.random.default_rng(11).normal(size=(40, FEATURES)).astype(np.float32)
    endpoint = predictor.endpoint_name
    model_name = session.sagemaker_client.describe_endpoint_config(EndpointConfigName=endpoint)[
        "ProductionVariants"][0]["ModelName"]
    model = session.sagemaker_client.describe_model(ModelName=model_name)
    assert model["PrimaryContainer"]["ModelDataUrl"] == best_estimator.model_data
    body = CSVSerializer().serialize(test_x)
    in_process = sdk.server.platform.runtime.invoke_endpoint(EndpointName=endpoint, Body=body, ContentType="text/csv")
    assert predictor.predict(test_x) == json.loads(in_process["Body"].read())
    predictor.delete_endpoint()


# -- the UFO data and the course's Lambda payload ------------------------------------------------


def test_sample_request_against_a_linear_learner_trained_on_the_ufo_data(sdk: SdkWorld,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    ufo = shared_path("data", "ufo")
    sagemaker = sdk.sagemaker
    session = sagemaker.Session()
    bucket = session.default_bucket()
    train = session.upload_data(str(ufo / "ufo_sightings_train_recordIO_protobuf.data"), bucket=bucket,
                                key_prefix="algorithms_lab/linearlearner_train")
    validation = session.upload_data(str(ufo / "ufo_sightings_validation_recordIO_protobuf.data"), bucket=bucket,
                                     key_prefix="algorithms_lab/linearlearner_validation")
    # the notebook's optimized hyperparameters, fewer epochs
    estimator = linear_learner(sdk, session, f"s3://{bucket}/optimization_evaluation_lab/output", feature_dim=22,
                               predictor_type="multiclass_classifier", num_classes=3, l1=0.0005953224641699573,
                               learning_rate=0.04380096472026997, mini_batch_size=2977, use_bias="true",
                               wd=0.0019134739491125144, epochs=3)
    estimator.fit({"train": train, "validation": validation}, logs=False)
    metrics = {m["MetricName"]: m["Value"] for m in estimator.latest_training_job.describe()["FinalMetricDataList"]}
    assert metrics["validation:multiclass_accuracy"] > 0.9  # SageMaker reported 0.947 after 15 epochs

    predictor = estimator.deploy(initial_instance_count=1, instance_type=INSTANCE_TYPE)
    monkeypatch.setenv("ENDPOINT_NAME", predictor.endpoint_name)
    event = json.loads((ufo / "sample_request.json").read_text())
    answer = ufo_lambda_handler(event, None)
    (prediction,) = answer["predictions"]
    assert prediction["predicted_label"] in (0, 1, 2)
    assert len(prediction["score"]) == 3
    assert sum(prediction["score"]) == pytest.approx(1.0, abs=1e-4)
    assert prediction["predicted_label"] == int(np.argmax(prediction["score"]))
    predictor.delete_endpoint()


# -- the amazon estimator classes ----------------------------------------------------------------


def test_linear_learner_class_record_set_and_protobuf_predictor(sdk: SdkWorld) -> None:
    """sagemaker.LinearLearner: record_set writes RecordIO shards and a manifest; its predictor speaks protobuf."""
    sagemaker = sdk.sagemaker
    session = sagemaker.Session()
    rng = np.random.default_rng(3)
    features = rng.normal(size=(700, FEATURES)).astype(np.float32)
    labels = classes_of(features)
    estimator = sagemaker.LinearLearner(ROLE, 1, INSTANCE_TYPE, predictor_type="multiclass_classifier",
                                        num_classes=CLASSES, epochs=5, sagemaker_session=session)
    train = estimator.record_set(features[:600], labels[:600], channel="train")
    assert train.s3_data_type == "ManifestFile"
    assert train.s3_data.startswith(f"s3://{session.default_bucket()}/sagemaker-record-sets/")
    estimator.fit(train, mini_batch_size=50, logs=False)
    job = estimator.latest_training_job.describe()
    assert job["TrainingJobStatus"] == "Completed"
    assert job["HyperParameters"]["feature_dim"] == str(FEATURES)
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"

    predictor = estimator.deploy(1, INSTANCE_TYPE)  # RecordSerializer / RecordDeserializer: protobuf both ways
    records = predictor.predict(features[600:])
    predicted = [record.label["predicted_label"].float32_tensor.values[0] for record in records]
    assert len(predicted) == 100
    assert float(np.mean(np.array(predicted) == labels[600:])) >= 0.9
    predictor.delete_endpoint()
