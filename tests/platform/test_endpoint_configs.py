"""CreateEndpointConfig and friends: variants, weights, shadow variants, data capture, missing models."""

from __future__ import annotations

from typing import Any

import pytest

from forgeml import Session, ValidationException
from forgeml.image_uris import retrieve


@pytest.fixture
def client(session: Session) -> Any:
    client = session.sagemaker_client
    for name in ("model-a", "model-b"):
        client.create_model(ModelName=name, PrimaryContainer={"Image": retrieve("linear-learner"),
                                                              "ModelDataUrl": f"s3://bucket-one/{name}/model.tar.gz"})
    return client


def variant(name: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"VariantName": name, "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1, **extra}


def test_endpoint_config_lifecycle(client: Any) -> None:
    arn = client.create_endpoint_config(
        EndpointConfigName="ufo-config",
        ProductionVariants=[variant("blue", "model-a", InitialVariantWeight=3), variant("green", "model-b")],
        DataCaptureConfig={"InitialSamplingPercentage": 50, "DestinationS3Uri": "s3://bucket-one/capture",
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                           "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"]}},
    )["EndpointConfigArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/ufo-config"
    described = client.describe_endpoint_config(EndpointConfigName="ufo-config")
    assert [v["InitialVariantWeight"] for v in described["ProductionVariants"]] == [3.0, 1.0]
    assert described["DataCaptureConfig"]["EnableCapture"] is True
    with pytest.raises(ValidationException):
        client.create_endpoint_config(EndpointConfigName="ufo-config", ProductionVariants=[variant("v", "model-a")])
    client.create_endpoint_config(EndpointConfigName="shadow-config", ProductionVariants=[variant("prod", "model-a")],
                                  ShadowProductionVariants=[variant("shadow", "model-b")])
    assert len(client.list_endpoint_configs()["EndpointConfigs"]) == 2
    client.delete_endpoint_config(EndpointConfigName="ufo-config")
    with pytest.raises(ValidationException, match="Could not find endpoint configuration"):
        client.describe_endpoint_config(EndpointConfigName="ufo-config")


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"ProductionVariants": [variant("v", "no-such-model")]}, 'Could not find model ".*model/no-such-model"'),
        ({"ProductionVariants": [variant("v", "model-a", InitialVariantWeight=0),
                                 variant("w", "model-b", InitialVariantWeight=0)]}, "must not all be zero"),
        ({"ProductionVariants": [variant("v", "model-a", InitialVariantWeight=-1)]}, "initialVariantWeight"),
        ({"ProductionVariants": [variant("v", "model-a"), variant("v", "model-b")]}, "unique"),
        ({"ProductionVariants": [variant("v", "model-a", InstanceType="ml.banana.huge")]}, "instanceType"),
        ({"ProductionVariants": [variant("v", "model-a", InitialInstanceCount=0)]}, "initialInstanceCount"),
        ({"ProductionVariants": []}, "productionVariants"),
        ({"ProductionVariants": [variant("a", "model-a"), variant("b", "model-b")],
          "ShadowProductionVariants": [variant("s", "model-a")]}, "exactly one production variant"),
        ({"ProductionVariants": [variant("v", "model-a")],
          "DataCaptureConfig": {"InitialSamplingPercentage": 150, "DestinationS3Uri": "s3://bucket-one/c",
                                "CaptureOptions": [{"CaptureMode": "Input"}]}}, "initialSamplingPercentage"),
        ({"ProductionVariants": [variant("v", "model-a")],
          "DataCaptureConfig": {"InitialSamplingPercentage": 10, "DestinationS3Uri": "s3://bucket-one/c",
                                "CaptureOptions": [{"CaptureMode": "Everything"}]}}, "captureMode"),
    ],
)
def test_bad_endpoint_configs(client: Any, members: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationException, match=message):
        client.create_endpoint_config(EndpointConfigName="bad-config", **members)
    assert client.list_endpoint_configs()["EndpointConfigs"] == []
