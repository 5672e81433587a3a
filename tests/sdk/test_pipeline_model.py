"""PipelineModel: a preprocessing script in front of Linear Learner, as one model of two containers
run in series, deployed to an endpoint and handed to batch transform."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forgeml import Session, ValidationException
from forgeml.deserializers import JSONDeserializer
from forgeml.image_uris import retrieve
from forgeml.sdk.model import SCRIPT_MODE_IMAGE, Model
from forgeml.sdk.pipeline import PipelineModel
from forgeml.sdk.predictor import Predictor
from forgeml.sdk.transformer import Transformer
from forgeml.serializers import CSVSerializer

ROLE = "arn:aws:iam::000000000000:role/r"
#: clients send raw readings shifted by this much; the preprocessing container takes it off again
SHIFT = 50.0

PREPROCESS = f"""
import numpy as np


def model_fn(model_dir):
    return {SHIFT}


def input_fn(request_body, request_content_type):
    return np.array([[float(v) for v in line.split(",")] for line in request_body.splitlines() if line.strip()])


def predict_fn(rows, shift):
    return rows - shift


def output_fn(rows, accept):
    return "\\n".join(",".join(repr(float(v)) for v in row) for row in rows), "text/csv"
"""


def pipeline(session: Session, source: Path, model_data: str) -> PipelineModel:
    preprocess = Model(entry_point="preprocess.py", source_dir=str(source), sagemaker_session=session,
                       env={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})
    linear = Model(retrieve("linear-learner"), model_data, sagemaker_session=session)
    return PipelineModel([preprocess, linear], role=ROLE, sagemaker_session=session)


def test_container_definitions_model_and_transformer(session: Session, write_script: Any) -> None:
    source = write_script("preprocess.py", PREPROCESS)
    model = pipeline(session, source, "s3://models/ll/model.tar.gz")
    containers = model.pipeline_container_def("ml.m5.large")
    preprocess_name = model.models[0].name
    assert preprocess_name is not None
    assert containers == [
        {"Image": SCRIPT_MODE_IMAGE, "Environment": {
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv", "SAGEMAKER_PROGRAM": "preprocess.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{session.default_bucket()}/{preprocess_name}/sourcedir.tar.gz",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": "us-east-1"}},
        {"Image": retrieve("linear-learner"), "Environment": {}, "ModelDataUrl": "s3://models/ll/model.tar.gz"},
    ]

    transformer = model.transformer(1, "ml.m5.large", accept="application/json", assemble_with="Line",
                                    output_path="s3://batch/out")
    assert isinstance(transformer, Transformer)
    assert model.name is not None and re.fullmatch(r"script-mode-\d{4}(-\d{2}){5}-\d{3}", model.name)
    assert (transformer.model_name, transformer.base_transform_job_name) == (model.name, model.name)
    described = session.describe_model(model.name)
    assert described["InferenceExecutionConfig"] == {"Mode": "Serial"}
    assert [c["Image"] for c in described["Containers"]] == [SCRIPT_MODE_IMAGE, retrieve("linear-learner")]
    assert described["ExecutionRoleArn"] == ROLE
    model.delete_model()
    with pytest.raises(ValidationException, match="Could not find model"):
        session.describe_model(model.name)


def test_endpoint_preprocesses_then_predicts(session: Session, write_script: Any, ll_tarball: Path,
                                             ll_weights: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_script("preprocess.py", PREPROCESS)
    model_data = f"s3://{session.default_bucket()}/ll/model.tar.gz"
    session.platform.artifacts.put_file(ll_tarball, model_data)
    model = pipeline(session, source, model_data)
    predictor = model.deploy(1, "ml.m5.large", serializer=CSVSerializer(), deserializer=JSONDeserializer())
    try:
        assert re.fullmatch(r"-+!\n", capsys.readouterr().out)
        assert type(predictor) is Predictor and predictor.endpoint_name == model.name == model.endpoint_name
        features = np.array([[3.0, -3.0, 0.0, 1.0], [-3.0, 3.0, 0.0, 1.0], [1.0, -1.0, 2.0, 0.0],
                             [0.0, 2.0, -2.0, 0.0]])
        answer = predictor.predict(features + SHIFT)
        assert [p["predicted_label"] for p in answer["predictions"]] == (features @ ll_weights > 0).astype(int).tolist()
    finally:
        predictor.delete_endpoint()
    model.delete_model()
    assert session.sagemaker_client.list_models()["Models"] == []


def test_argument_errors(session: Session) -> None:
    with pytest.raises(ValueError, match="needs at least one model"):
        PipelineModel([], sagemaker_session=session)
    linear = Model(retrieve("linear-learner"), "s3://models/ll/model.tar.gz", sagemaker_session=session)
    with pytest.raises(ValueError, match="must be created before attempting to delete"):
        PipelineModel([linear]).delete_model()
