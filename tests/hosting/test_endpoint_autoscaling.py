"""Target tracking on invocations per instance adds workers under load and removes them after it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

ROW = "0.5,1.2,-0.3,2.0"


def test_scales_out_under_load_and_back_in(platform: Any, make_model: Callable[..., str],
                                           wait_for: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGEML_AUTOSCALING_WINDOW_SECONDS", "2")  # read by the host, started after this
    make_model("ll")
    platform.endpoint_configs.create_endpoint_config({"EndpointConfigName": "auto", "ProductionVariants": [
        {"VariantName": "AllTraffic", "ModelName": "ll", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]})
    platform.endpoints.create_endpoint({"EndpointName": "auto", "EndpointConfigName": "auto"})
    wait_for(lambda: platform.endpoints.describe_endpoint("auto")["EndpointStatus"] == "InService", 60, "InService")
    resource = "endpoint/auto/variant/AllTraffic"
    platform.autoscaling.register_scalable_target({
        "ServiceNamespace": "sagemaker", "ResourceId": resource,
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 1, "MaxCapacity": 3})
    platform.autoscaling.put_scaling_policy({
        "PolicyName": "per-instance", "ServiceNamespace": "sagemaker", "ResourceId": resource,
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 600.0,  # invocations per instance per minute = 10/s
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleOutCooldown": 1, "ScaleInCooldown": 1}})

    def count() -> int:
        return int(platform.endpoints.describe_endpoint("auto")["ProductionVariants"][0]["CurrentInstanceCount"])

    done = threading.Event()

    def load() -> None:
        while not done.is_set():
            platform.runtime.invoke_endpoint(EndpointName="auto", Body=ROW, ContentType="text/csv")

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: count() >= 2, 40, "a scale-out under load")
    finally:
        done.set()
        for thread in threads:
            thread.join()
    wait_for(lambda: count() == 1, 40, "the scale-in once the load stopped")
    activities = platform.autoscaling.describe_scaling_activities(ServiceNamespace="sagemaker",
                                                                  ResourceId=resource)["ScalingActivities"]
    descriptions = [a["Description"] for a in activities]
    assert "Setting desired instance count to 1." in descriptions[0]
    assert any(a["StatusCode"] == "Successful" and "above the target" in a["Cause"] for a in activities)
