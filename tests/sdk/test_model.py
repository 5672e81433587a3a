"""Model and Estimator.deploy end to end: the UFO course's notebook flow as written, a first-party
estimator's RecordIO predictor, custom inference code from an entry point, a script-mode estimator
serving its training code, and the requests and errors around them."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import forgeml as sagemaker
from forgeml import Session, ValidationException
from forgeml.data.recordio_protobuf import write_numpy_to_dense_tensor
from forgeml.deserializers import JSONDeserializer
from forgeml.image_uris import retrieve
from forgeml.sdk.amazon_estimators import LinearLearner, LinearLearnerModel, LinearLearnerPredictor
from forgeml.sdk.model import SCRIPT_MODE_IMAGE, Model
from forgeml.sdk.predictor import Predictor
from forgeml.sdk.transformer import Transformer
from forgeml.serializers import CSVSerializer, JSONSerializer

ROLE = "arn:aws:iam::000000000000:role/service-role/ForgeML-ExecutionRole"
STAMP = r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}"


def wait_until_gone(session: Session, endpoint_name: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while session.platform.endpoints.exists(endpoint_name):
        if time.monotonic() > deadline:
            pytest.fail(f"endpoint {endpoint_name} was not deleted within {timeout:g} s")
        time.sleep(0.05)


def three_classes(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated clusters: a trained model labels every row correctly."""
    rng = np.random.default_rng(seed)
    centers = np.array([[4, 0, 0], [0, 4, 0], [0, 0, 4]], dtype=np.float32)
    labels = rng.integers(0, 3, size=rows)
    return (centers[labels] + rng.normal(scale=0.4, size=(rows, 3))).astype(np.float32), labels


def test_ufo_notebook_flow_fit_deploy_predict_delete(session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    train_X, train_y = three_classes(300)
    test_X, test_y = three_classes(12, seed=1)
    bucket = session.default_bucket()
    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, train_X, train_y.astype(np.float32))
    training_location = f"s3://{bucket}/algorithms_lab/linearlearner_train/ufo_sightings_train_recordIO_protobuf.data"
    session.platform.artifacts.put_bytes(buffer.getvalue(), training_location)
    container = retrieve("linear-learner", session.boto_region_name, "1")
    job_name = "ufo-linear-learner-job-optimized-{}".format(datetime.now().strftime("%Y%m%d%H%M%S"))

    linear = sagemaker.estimator.Estimator(container, ROLE, instance_count=1, instance_type="ml.c4.xlarge",
                                           output_path=f"s3://{bucket}/optimization_evaluation_lab/output",
                                           sagemaker_session=session, input_mode="Pipe")
    linear.set_hyperparameters(feature_dim=3, predictor_type="multiclass_classifier", num_classes=3,
                               mini_batch_size=100, epochs=3, use_bias="true")
    linear.fit({"train": training_location}, job_name=job_name, logs=False)
    capsys.readouterr()

    linear_predictor = linear.deploy(initial_instance_count=1, instance_type="ml.c4.xlarge")
    try:
        assert re.fullmatch(r"-+!\n", capsys.readouterr().out)
        assert type(linear_predictor) is Predictor
        endpoint_name = linear_predictor.endpoint_name
        assert re.fullmatch(f"linear-learner-{STAMP}", endpoint_name)
        described = session.describe_endpoint(endpoint_name)
        assert described["EndpointStatus"] == "InService"
        assert described["EndpointConfigName"] == endpoint_name
        variant = session.describe_endpoint_config(endpoint_name)["ProductionVariants"][0]
        assert (variant["VariantName"], variant["ModelName"], variant["InstanceType"],
                variant["InitialInstanceCount"]) == ("AllTraffic", endpoint_name, "ml.c4.xlarge", 1)
        model = session.describe_model(endpoint_name)
        assert model["PrimaryContainer"]["Image"] == container
        assert model["PrimaryContainer"]["ModelDataUrl"] == linear.model_data
        assert model["ExecutionRoleArn"] == ROLE

        linear_predictor.serializer = CSVSerializer()
        linear_predictor.deserializer = JSONDeserializer()
        result = linear_predictor.predict(test_X)
        assert [p["predicted_label"] for p in result["predictions"]] == test_y.tolist()
        assert all(len(p["score"]) == 3 and abs(sum(p["score"]) - 1.0) < 1e-4 for p in result["predictions"])
    finally:
        linear_predictor.delete_endpoint()
    with pytest.raises(ValidationException, match="Could not find endpoint configuration"):
        session.describe_endpoint_config(endpoint_name)
    wait_until_gone(session, endpoint_name)
    assert session.sagemaker_client.list_models()["Models"][0]["ModelName"] == endpoint_name
    linear_predictor.delete_model()
    assert session.sagemaker_client.list_models()["Models"] == []


def test_linear_learner_estimator_deploys_a_recordio_predictor(session: Session,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2)
    features = rng.normal(size=(400, 4)).astype(np.float32)
    labels = (features @ np.array([2.0, -2.0, 1.0, 0.0]) > 0).astype(np.float32)
    learner = LinearLearner(role=ROLE, instance_count=1, instance_type="ml.m5.large",
                            predictor_type="binary_classifier", epochs=3, sagemaker_session=session)
    learner.fit(learner.record_set(features, labels), logs=False)

    model = learner.create_model()
    assert isinstance(model, LinearLearnerModel) and model.predictor_cls is LinearLearnerPredictor
    assert model.image_uri == retrieve("linear-learner") and model.model_data == learner.model_data

    predictor = learner.deploy(1, "ml.m5.large")
    try:
        assert isinstance(predictor, LinearLearnerPredictor)
        assert predictor.content_type == "application/x-recordio-protobuf"
        assert predictor.accept == ("application/x-recordio-protobuf",)
        probe = np.array([[3.0, -3.0, 0.0, 0.0], [-3.0, 3.0, 0.0, 0.0], [1.0, -1.0, 1.0, 5.0]], dtype=np.float32)
        records = predictor.predict(probe)
        assert [r.label["predicted_label"].float32_tensor.values[0] for r in records] == [1.0, 0.0, 1.0]
        scores = [r.label["score"].float32_tensor.values[0] for r in records]
        assert scores[0] > 0.9 and scores[1] < 0.1
        single = predictor.predict(probe[1])  # a 1-D array is one record
        assert len(single) == 1 and single[0].label["predicted_label"].float32_tensor.values[0] == 0.0
    finally:
        predictor.delete_endpoint()
        predictor.delete_model()

    capsys.readouterr()
    transformer = learner.transformer(1, "ml.m5.large", output_path="s3://batch/out", accept="text/csv")
    assert isinstance(transformer, Transformer)
    assert re.fullmatch(f"linear-learner-{STAMP}", transformer.model_name)
    assert transformer.base_transform_job_name == "linear-learner"
    assert (transformer.output_path, transformer.accept) == ("s3://batch/out", "text/csv")
    described = session.describe_model(transformer.model_name)
    assert described["PrimaryContainer"]["ModelDataUrl"] == learner.model_data


INFERENCE_SCRIPT = """
import json
import os

from helpers import scale


def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as handle:
        return json.load(handle)


def predict_fn(input_data, model):
    return scale(input_data, model["factor"]).tolist()
"""

HELPERS = """
def scale(rows, factor):
    return rows * factor
"""


def model_tarball(session: Session, tmp_path: Path, files: dict[str, str], key: str) -> str:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in files.items():
            path = tmp_path / name
            path.write_text(text)
            tar.add(path, arcname=name)
    uri = f"s3://{session.default_bucket()}/{key}/model.tar.gz"
    session.platform.artifacts.put_file(archive, uri)
    return uri


def test_custom_code_model_serves_its_model_fn_and_predict_fn(session: Session, write_script: Any,
                                                              tmp_path: Path) -> None:
    source = write_script("inference.py", INFERENCE_SCRIPT)
    write_script("helpers.py", HELPERS)
    model_data = model_tarball(session, tmp_path, {"weights.json": json.dumps({"factor": 3})}, "custom")
    model = Model(model_data=model_data, role=ROLE, entry_point="inference.py", source_dir=str(source),
                  sagemaker_session=session)

    definition = model.prepare_container_def()
    assert model.name is not None and re.fullmatch(f"script-mode-{STAMP}", model.name)
    code_uri = f"s3://{session.default_bucket()}/{model.name}/sourcedir.tar.gz"
    assert definition == {"Image": SCRIPT_MODE_IMAGE, "ModelDataUrl": model_data, "Environment": {
        "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": code_uri,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "us-east-1"}}
    with tarfile.open(fileobj=io.BytesIO(session.platform.artifacts.get_bytes(code_uri))) as tar:
        assert sorted(tar.getnames()) == ["helpers.py", "inference.py"]

    predictor = model.deploy(1, "ml.m5.large", serializer=JSONSerializer(), deserializer=JSONDeserializer())
    try:
        assert model.endpoint_name == predictor.endpoint_name
        assert re.fullmatch(f"script-mode-{STAMP}", predictor.endpoint_name)
        assert predictor.predict([[1, 2], [3, 4.5]]) == [[3, 6], [9, 13.5]]
        assert session.describe_model(model.name)["PrimaryContainer"]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] \
            == code_uri
    finally:
        predictor.delete_endpoint()
    model.delete_model()
    with pytest.raises(ValidationException, match="Could not find model"):
        session.describe_model(model.name)


TRAINING_SCRIPT = """
import argparse
import json
import os


def model_fn(model_dir):
    with open(os.path.join(model_dir, "offset.json")) as handle:
        return json.load(handle)["offset"]


def predict_fn(input_data, offset):
    return (input_data + offset).tolist()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--offset", type=float)
    args = parser.parse_args()
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "offset.json"), "w") as handle:
        json.dump({"offset": args.offset}, handle)
"""


def test_script_mode_estimator_serves_its_training_code(session: Session, write_script: Any) -> None:
    source = write_script("train.py", TRAINING_SCRIPT)
    estimator = sagemaker.Estimator(entry_point="train.py", source_dir=str(source), role=ROLE,
                                    hyperparameters={"offset": 10}, sagemaker_session=session)
    estimator.fit(logs=False)
    trained_code = json.loads(estimator.latest_training_job.describe()["HyperParameters"]  # type: ignore[union-attr]
                              ["sagemaker_submit_directory"])

    model = estimator.create_model()
    assert model.image_uri == SCRIPT_MODE_IMAGE and model.model_data == estimator.model_data
    assert model.prepare_container_def()["Environment"] == {
        "SAGEMAKER_PROGRAM": "train.py", "SAGEMAKER_SUBMIT_DIRECTORY": trained_code,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "us-east-1"}
    other_program = estimator.create_model(entry_point="serve.py").prepare_container_def()["Environment"]
    assert (other_program["SAGEMAKER_PROGRAM"], other_program["SAGEMAKER_SUBMIT_DIRECTORY"]) == ("serve.py", trained_code)

    predictor = estimator.deploy(1, "ml.m5.large", serializer=JSONSerializer(), deserializer=JSONDeserializer(),
                                 endpoint_name="offset-endpoint", model_name="offset-model")
    try:
        assert predictor.endpoint_name == "offset-endpoint"
        assert session.describe_endpoint_config("offset-endpoint")["ProductionVariants"][0]["ModelName"] \
            == "offset-model"
        assert predictor.predict([1, 2.5]) == [11.0, 12.5]
    finally:
        predictor.delete_endpoint()
        predictor.delete_model()


def test_built_in_model_definition_create_and_transformer(session: Session, caplog: pytest.LogCaptureFixture) -> None:
    image = retrieve("linear-learner")
    model = Model(image, "s3://models/ll/model.tar.gz", ROLE, env={"SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
                  sagemaker_session=session)
    assert model.prepare_container_def() == {"Image": image, "ModelDataUrl": "s3://models/ll/model.tar.gz",
                                             "Environment": {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}}
    transformer = model.transformer(2, "ml.m5.large", strategy="MultiRecord", assemble_with="Line",
                                    output_path="s3://batch/out", env={"A": "1"}, max_payload=2)
    assert isinstance(transformer, Transformer)
    assert transformer.model_name == model.name and transformer.base_transform_job_name == "linear-learner"
    assert (transformer.instance_count, transformer.strategy, transformer.assemble_with, transformer.env,
            transformer.max_payload) == (2, "MultiRecord", "Line", {"A": "1"}, 2)
    described = session.describe_model(model.name)  # type: ignore[arg-type]
    assert described["PrimaryContainer"]["Environment"] == {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    assert described["ExecutionRoleArn"] == ROLE

    with caplog.at_level("WARNING", logger="forgeml"):
        assert model.create() == model.name  # the SDK reuses a model that already exists
    assert f"Using already existing model: {model.name}" in caplog.text
    model.delete_model()
    with pytest.raises(ValidationException, match="Could not find model"):
        session.describe_model(model.name)  # type: ignore[arg-type]


def test_code_already_in_s3_is_referenced_not_uploaded(session: Session) -> None:
    model = Model(entry_point="serve.py", source_dir="s3://code/job/source/sourcedir.tar.gz", name="remote-code",
                  sagemaker_session=session, container_log_level=10)
    assert model.prepare_container_def() == {"Image": SCRIPT_MODE_IMAGE, "Environment": {
        "SAGEMAKER_PROGRAM": "serve.py", "SAGEMAKER_SUBMIT_DIRECTORY": "s3://code/job/source/sourcedir.tar.gz",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "10", "SAGEMAKER_REGION": "us-east-1"}}
    assert model.uploaded_code is None
    assert session.platform.artifacts.list_objects(f"s3://{session.default_bucket()}/remote-code/") == []


def test_model_argument_errors(session: Session, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Model needs an image_uri"):
        Model(sagemaker_session=session)
    with pytest.raises(ValueError, match="source_dir and dependencies need an entry_point"):
        Model(retrieve("linear-learner"), source_dir=str(tmp_path), sagemaker_session=session)
    with pytest.raises(TypeError, match="unexpected keyword argument.*: instance_count"):
        Model(retrieve("linear-learner"), instance_count=1, sagemaker_session=session)
    model = Model(retrieve("linear-learner"), "s3://models/x/model.tar.gz", sagemaker_session=session)
    with pytest.raises(ValueError, match="Must specify instance type and instance count"):
        model.deploy(instance_type="ml.m5.large")
    with pytest.raises(ValueError, match="must be created first"):
        model.delete_model()
    missing = Model(entry_point=str(tmp_path / "nope.py"), sagemaker_session=session)
    with pytest.raises(ValidationException, match="entry_point '.*nope.py' does not exist"):
        missing.create()
    with pytest.raises(ValueError, match="has not been fit yet"):
        sagemaker.Estimator(retrieve("linear-learner"), ROLE, sagemaker_session=session).deploy(1, "ml.m5.large")


def test_public_modules_have_the_sdk_names() -> None:
    from forgeml.sdk.model_monitor import DataCaptureConfig
    from forgeml.sdk.pipeline import PipelineModel

    assert sagemaker.model.Model is Model and sagemaker.Model is Model
    assert sagemaker.predictor.Predictor is Predictor and sagemaker.Predictor is Predictor
    assert sagemaker.pipeline.PipelineModel is PipelineModel and sagemaker.PipelineModel is PipelineModel
    assert sagemaker.model_monitor.DataCaptureConfig is DataCaptureConfig
    assert sagemaker.transformer.Transformer is Transformer and sagemaker.Transformer is Transformer
    assert sagemaker.LinearLearnerPredictor is LinearLearnerPredictor
    assert sagemaker.production_variant("m", "ml.m5.large") == {
        "ModelName": "m", "VariantName": "AllTraffic", "InitialVariantWeight": 1, "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        _ = sagemaker.nonexistent
