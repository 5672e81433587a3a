"""Predictor: the InvokeEndpoint request it builds, how it decodes answers, the runtime's errors, and
managing the endpoint (update to a new instance count, several variants, deletes, failed endpoints)."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forgeml import (
    ModelError,
    RuntimeValidationError,
    Session,
    UnexpectedStatusException,
    ValidationException,
)
from forgeml.deserializers import BytesDeserializer, JSONDeserializer, NumpyDeserializer
from forgeml.image_uris import retrieve
from forgeml.sdk.model import Model
from forgeml.sdk.predictor import Predictor
from forgeml.sdk.session import production_variant
from forgeml.serializers import CSVSerializer, IdentitySerializer, JSONSerializer

ROLE = "arn:aws:iam::000000000000:role/r"


def ll_model(session: Session, tarball: Path, name: str | None = None) -> Model:
    uri = f"s3://{session.default_bucket()}/artifacts/{name or 'll'}/model.tar.gz"
    session.platform.artifacts.put_file(tarball, uri)
    return Model(retrieve("linear-learner"), uri, ROLE, name=name, sagemaker_session=session)


class RecordingRuntime:
    """A runtime client that keeps each request and answers with a fixed body and content type."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body, self.content_type = body, content_type
        self.requests: list[dict[str, Any]] = []

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"Body": io.BytesIO(self.body), "ContentType": self.content_type, "InvokedProductionVariant": "A"}


def test_predict_builds_the_request_and_decodes_by_the_response_type(session: Session) -> None:
    runtime = RecordingRuntime(b"1.5,2\n3,4\n", "text/csv; charset=utf-8")
    session.sagemaker_runtime_client = runtime  # type: ignore[assignment]
    predictor = Predictor("ep", session, serializer=CSVSerializer(), deserializer=NumpyDeserializer(dtype="float64"))
    assert (predictor.content_type, predictor.accept) == ("text/csv", ("application/x-npy",))

    answer = predictor.predict(np.array([[1, 2], [3, 4]]), target_variant="B", inference_id="req-1",
                               custom_attributes="trace=on")
    assert runtime.requests[-1] == {"EndpointName": "ep", "ContentType": "text/csv", "Accept": "application/x-npy",
                                    "Body": "1,2\n3,4", "TargetVariant": "B", "InferenceId": "req-1",
                                    "CustomAttributes": "trace=on"}
    np.testing.assert_array_equal(answer, np.array([[1.5, 2.0], [3.0, 4.0]]))

    predictor.predict([5, 6], initial_args={"ContentType": "text/plain", "Accept": "text/csv",
                                            "EndpointName": "other"})
    assert runtime.requests[-1] == {"EndpointName": "other", "ContentType": "text/plain", "Accept": "text/csv",
                                    "Body": "5,6"}


def test_default_predictor_sends_and_returns_bytes(session: Session) -> None:
    runtime = RecordingRuntime(b"\x00raw", "application/octet-stream")
    session.sagemaker_runtime_client = runtime  # type: ignore[assignment]
    predictor = Predictor("ep", session)
    assert isinstance(predictor.serializer, IdentitySerializer)
    assert isinstance(predictor.deserializer, BytesDeserializer)
    assert predictor.endpoint == "ep" and repr(predictor) == "Predictor(endpoint_name='ep')"
    assert predictor.predict(b"payload") == b"\x00raw"
    assert runtime.requests[-1] == {"EndpointName": "ep", "ContentType": "application/octet-stream",
                                    "Accept": "*/*", "Body": b"payload"}


def test_errors_update_and_delete_on_a_real_endpoint(session: Session, ll_tarball: Path, write_script: Any,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeValidationError, match="Endpoint missing of account 000000000000 not found."):
        Predictor("missing", session).predict(b"1,2,3,4")

    predictor = ll_model(session, ll_tarball).deploy(1, "ml.m5.large", serializer=CSVSerializer(),
                                                     deserializer=JSONDeserializer(), endpoint_name="scoring")
    try:
        with pytest.raises(ModelError) as refused:
            predictor.predict("not,numbers")
        assert refused.value.original_status_code == 400
        assert "Received client error (400) from model" in refused.value.message
        row = [3.0, -3.0, 0.0, 0.0]
        assert predictor.predict(row)["predictions"][0]["predicted_label"] == 1

        first_config = session.describe_endpoint("scoring")["EndpointConfigName"]
        capsys.readouterr()
        predictor.update_endpoint(initial_instance_count=2)
        assert re.fullmatch(r"-+!\n", capsys.readouterr().out)
        described = session.describe_endpoint("scoring")
        assert described["EndpointStatus"] == "InService"
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
        new_config = described["EndpointConfigName"]
        assert new_config != first_config and new_config.startswith(first_config[:30])
        variant = session.describe_endpoint_config(new_config)["ProductionVariants"][0]
        assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == \
            (session.describe_endpoint_config(first_config)["ProductionVariants"][0]["ModelName"], "ml.m5.large", 2)
        assert predictor.predict(row)["predictions"][0]["predicted_label"] == 1

        source = write_script("inference.py", """
            def model_fn(model_dir):
                raise RuntimeError("cannot load")
        """)
        Model(entry_point="inference.py", source_dir=str(source), name="broken", sagemaker_session=session).create()
        with pytest.raises(UnexpectedStatusException, match=f"Error updating endpoint scoring: the update to "
                                                            f"{new_config[:20]}.* was rolled back. Reason: "):
            predictor.update_endpoint(model_name="broken")
        assert session.describe_endpoint("scoring")["EndpointConfigName"] == new_config
        assert predictor.predict(row)["predictions"][0]["predicted_label"] == 1

        with pytest.raises(ValueError, match="Endpoint with name 'nope' does not exist"):
            session.update_endpoint("nope", new_config)
    finally:
        predictor.delete_endpoint()
    with pytest.raises(ValidationException, match="Could not find endpoint configuration"):
        session.describe_endpoint_config(new_config)
    assert session.describe_endpoint_config(first_config)["EndpointConfigName"] == first_config
    predictor.delete_model()  # the models are remembered once the endpoint config is gone
    assert [m["ModelName"] for m in session.sagemaker_client.list_models()["Models"]] == ["broken"]


def test_several_variants_update_to_one_model(session: Session, ll_tarball: Path) -> None:
    for name in ("model-a", "model-b"):
        ll_model(session, ll_tarball, name).create()
    session.endpoint_from_production_variants("ab", [
        production_variant("model-a", "ml.m5.large", 1, variant_name="A"),
        production_variant("model-b", "ml.m5.large", 1, variant_name="B", initial_weight=3),
    ])
    predictor = Predictor("ab", session, serializer=CSVSerializer())
    try:
        answer = session.sagemaker_runtime_client.invoke_endpoint(EndpointName="ab", Body="1,2,3,4",
                                                                 ContentType="text/csv", TargetVariant="B")
        assert answer["InvokedProductionVariant"] == "B" and answer["ResponseMetadata"]["HTTPStatusCode"] == 200
        with pytest.raises(ValueError, match="multiple models: model-a, model-b"):
            predictor.update_endpoint(initial_instance_count=1)
        with pytest.raises(ValueError, match="Missing initial_instance_count and/or instance_type. Provided values: "
                                             "initial_instance_count=None, instance_type=None"):
            predictor.update_endpoint(model_name="model-a")
        predictor.update_endpoint(initial_instance_count=1, instance_type="ml.c5.xlarge", model_name="model-a")
        variants = session.describe_endpoint("ab")["ProductionVariants"]
        assert [(v["VariantName"], v["CurrentInstanceCount"]) for v in variants] == [("AllTraffic", 1)]
    finally:
        predictor.delete_endpoint()
    predictor.delete_model()
    assert [m["ModelName"] for m in session.sagemaker_client.list_models()["Models"]] == ["model-b"]


def test_an_endpoint_that_fails_raises_with_its_reason(session: Session, write_script: Any,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    source = write_script("inference.py", """
        def model_fn(model_dir):
            raise RuntimeError("the weights are corrupt")
    """)
    model = Model(entry_point="inference.py", source_dir=str(source), sagemaker_session=session)
    with pytest.raises(UnexpectedStatusException, match=r"(?s)Error hosting endpoint broken: Failed. Reason: "
                                                        r"ClientError: .*the weights are corrupt") as failed:
        model.deploy(1, "ml.m5.large", endpoint_name="broken")
    assert failed.value.actual_status == "Failed" and failed.value.allowed_statuses == ["InService"]
    assert capsys.readouterr().out.endswith("*\n")
    Predictor("broken", session).delete_endpoint()


def test_send_feedback_goes_to_the_runtime(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    class Runtime:
        def send_feedback(self, endpoint_name: str, reward: float, *, inference_id: str | None = None,
                          variant_name: str | None = None) -> str:
            calls.append((endpoint_name, reward, inference_id, variant_name))
            return "B"

    monkeypatch.setattr(session.platform, "runtime", Runtime())
    predictor = Predictor("bandit", session, serializer=JSONSerializer())
    assert predictor.send_feedback(1.0, inference_id="req-7") == "B"
    assert predictor.send_feedback(0.0, variant_name="A") == "B"
    assert calls == [("bandit", 1.0, "req-7", None), ("bandit", 0.0, None, "A")]


def test_session_clients_are_built_once_on_the_sessions_platform(session: Session) -> None:
    from forgeml.sdk.autoscaling import AutoScalingClient
    from forgeml.sdk.client import RuntimeClient
    from forgeml.sdk.cloudwatch import CloudWatchClient

    for attribute, kind in (("sagemaker_runtime_client", RuntimeClient), ("cloudwatch_client", CloudWatchClient),
                            ("autoscaling_client", AutoScalingClient)):
        client = getattr(session, attribute)
        assert isinstance(client, kind) and client.platform is session.platform
        assert getattr(session, attribute) is client
