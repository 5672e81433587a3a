"""Application Auto Scaling through boto3's client, for a real endpoint's variant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.server.conftest import RunningServer

DIMENSION = "sagemaker:variant:DesiredInstanceCount"
RESOURCE = "endpoint/scaled/variant/AllTraffic"
KEY = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE, "ScalableDimension": DIMENSION}


def test_targets_policies_and_activities_round_trip(server: RunningServer, linear_learner_model: Any) -> None:
    sm = server.client("sagemaker")
    sm.create_model(**linear_learner_model("scaled-model"))
    sm.create_endpoint_config(EndpointConfigName="scaled", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "scaled-model", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="scaled", EndpointConfigName="scaled")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="scaled", WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    scaling = server.client("application-autoscaling")

    arn = scaling.register_scalable_target(**KEY, MinCapacity=1, MaxCapacity=3)["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/")
    [target] = scaling.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[RESOURCE])[
        "ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"], target["ScalableTargetARN"]) == (1, 3, arn)
    assert isinstance(target["CreationTime"], datetime)

    policy = scaling.put_scaling_policy(PolicyName="invocations", PolicyType="TargetTrackingScaling", **KEY,
                                        TargetTrackingScalingPolicyConfiguration={
                                            "TargetValue": 70.0, "PredefinedMetricSpecification": {
                                                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    assert policy["PolicyARN"].startswith("arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:")
    pages = list(scaling.get_paginator("describe_scaling_policies").paginate(ServiceNamespace="sagemaker"))
    [described] = [p for page in pages for p in page["ScalingPolicies"]]
    assert described["PolicyName"] == "invocations" and described["PolicyARN"] == policy["PolicyARN"]
    assert described["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 70.0
    assert isinstance(described["CreationTime"], datetime)
    activities = scaling.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=RESOURCE)
    assert all(isinstance(a["StartTime"], datetime) for a in activities["ScalingActivities"])

    with pytest.raises(ClientError) as unknown_variant:
        scaling.register_scalable_target(**{**KEY, "ResourceId": "endpoint/scaled/variant/Nope"}, MinCapacity=1,
                                         MaxCapacity=2)
    assert unknown_variant.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as inverted:
        scaling.register_scalable_target(**KEY, MinCapacity=5, MaxCapacity=2)
    assert inverted.value.response["Error"] == {
        "Code": "ValidationException", "Message": "Minimum capacity cannot be greater than maximum capacity"}

    scaling.delete_scaling_policy(PolicyName="invocations", **KEY)
    assert scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    scaling.deregister_scalable_target(**KEY)
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    with pytest.raises(ClientError) as gone:
        scaling.deregister_scalable_target(**KEY)
    assert gone.value.response["Error"]["Code"] == "ObjectNotFoundException"
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
