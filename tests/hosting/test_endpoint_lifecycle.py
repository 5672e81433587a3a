"""Endpoints end to end: create -> InService -> invoke -> describe/list -> delete, and bad requests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from forgeml.errors import ModelError, RuntimeValidationError, ValidationException

ROW = "0.5,1.2,-0.3,2.0"


def create(platform: Any, name: str, variants: list[dict[str, Any]], **config: Any) -> None:
    platform.endpoint_configs.create_endpoint_config({"EndpointConfigName": name, "ProductionVariants": variants,
                                                      **config})
    platform.endpoints.create_endpoint({"EndpointName": name, "EndpointConfigName": name})


def variant(name: str, model: str, count: int = 1, weight: float = 1.0) -> dict[str, Any]:
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": count, "InstanceType": "ml.m5.large",
            "InitialVariantWeight": weight}


def in_service(platform: Any, name: str, wait_for: Callable[..., Any]) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        described = platform.endpoints.describe_endpoint(name)
        assert described["EndpointStatus"] != "Failed", described.get("FailureReason")
        return described if described["EndpointStatus"] == "InService" else None

    result: dict[str, Any] = wait_for(probe, 60, f"endpoint {name} InService")
    return result


def test_create_invoke_describe_delete(platform: Any, make_model: Callable[..., str],
                                       wait_for: Callable[..., Any]) -> None:
    make_model("ll")
    create(platform, "ufo", [variant("AllTraffic", "ll")])
    assert platform.endpoints.describe_endpoint("ufo")["EndpointStatus"] == "Creating"
    described = in_service(platform, "ufo", wait_for)
    assert described["EndpointArn"] == "arn:aws:sagemaker:us-east-1:000000000000:endpoint/ufo"
    summary = described["ProductionVariants"][0]
    assert summary["VariantName"] == "AllTraffic"
    assert summary["CurrentInstanceCount"] == summary["DesiredInstanceCount"] == 1
    assert summary["CurrentWeight"] == summary["DesiredWeight"] == 1.0
    assert summary["DeployedImages"][0]["SpecifiedImage"].endswith("linear-learner:1")

    answer = platform.runtime.invoke_endpoint(EndpointName="ufo", Body=ROW, ContentType="text/csv",
                                              Accept="application/json")
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["ContentType"].startswith("application/json")
    prediction = json.loads(answer["Body"].read())["predictions"][0]
    assert prediction["predicted_label"] in (0, 1) and 0.0 <= prediction["score"] <= 1.0

    listed = platform.endpoints.list_endpoints()["Endpoints"]
    assert [(e["EndpointName"], e["EndpointStatus"]) for e in listed] == [("ufo", "InService")]

    platform.endpoints.delete_endpoint("ufo")
    wait_for(lambda: not platform.endpoints.exists("ufo"), 20, "the endpoint to be deleted")
    with pytest.raises(ValidationException, match='Could not find endpoint "arn:aws:sagemaker:.*:endpoint/ufo"'):
        platform.endpoints.describe_endpoint("ufo")


def test_invoke_errors_keep_the_endpoint_serving(platform: Any, make_model: Callable[..., str],
                                                 wait_for: Callable[..., Any]) -> None:
    make_model("ll")
    create(platform, "errs", [variant("AllTraffic", "ll")])
    in_service(platform, "errs", wait_for)
    with pytest.raises(RuntimeValidationError, match="Endpoint missing of account 000000000000 not found."):
        platform.runtime.invoke_endpoint(EndpointName="missing", Body=ROW, ContentType="text/csv")
    with pytest.raises(ModelError) as bad_payload:
        platform.runtime.invoke_endpoint(EndpointName="errs", Body="not,numbers", ContentType="text/csv")
    assert bad_payload.value.original_status_code == 400
    assert "Received client error (400) from model" in bad_payload.value.message
    with pytest.raises(ModelError) as bad_type:
        platform.runtime.invoke_endpoint(EndpointName="errs", Body=ROW, ContentType="image/png")
    assert bad_type.value.original_status_code == 415
    with pytest.raises(RuntimeValidationError, match="does not have a variant named Nope"):
        platform.runtime.invoke_endpoint(EndpointName="errs", Body=ROW, ContentType="text/csv", TargetVariant="Nope")
    with pytest.raises(RuntimeValidationError, match="less than or equal to 6291456"):
        platform.runtime.invoke_endpoint(EndpointName="errs", Body=b"1" * (6 * 1024 * 1024 + 1),
                                         ContentType="text/csv")
    answer = platform.runtime.invoke_endpoint(EndpointName="errs", Body=ROW, ContentType="text/csv")
    assert answer["Body"].read()


def test_control_plane_validation(platform: Any, make_model: Callable[..., str]) -> None:
    with pytest.raises(ValidationException, match="Could not find endpoint configuration"):
        platform.endpoints.create_endpoint({"EndpointName": "e", "EndpointConfigName": "nope"})
    with pytest.raises(ValidationException, match="at 'endpointName' failed to satisfy constraint"):
        platform.endpoints.create_endpoint({"EndpointName": "bad_name", "EndpointConfigName": "c"})
    make_model("gone")
    platform.endpoint_configs.create_endpoint_config({"EndpointConfigName": "c",
                                                      "ProductionVariants": [variant("AllTraffic", "gone")]})
    platform.models.delete_model("gone")
    with pytest.raises(ValidationException, match='Could not find model "arn:aws:sagemaker:.*:model/gone"'):
        platform.endpoints.create_endpoint({"EndpointName": "e", "EndpointConfigName": "c"})
    with pytest.raises(ValidationException, match="Could not find endpoint"):
        platform.endpoints.delete_endpoint("nope")
    with pytest.raises(ValidationException, match="when Type is CANARY"):
        platform.endpoints.update_endpoint({"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 1}}}})
