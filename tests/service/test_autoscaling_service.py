"""Application Auto Scaling for endpoint variants: targets, policies, activities, validation, cascades."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forgeml.errors import ValidationException
from forgeml.hosting.autoscaling import TargetTracking
from forgeml.sdk.autoscaling import AutoScalingClient
from forgeml.service.autoscaling import ObjectNotFoundException
from forgeml.service.platform import Platform

DIMENSION = "sagemaker:variant:DesiredInstanceCount"
RESOURCE = "endpoint/ep/variant/AllTraffic"
KEY = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE, "ScalableDimension": DIMENSION}


class FakeEndpoints:
    """What AutoScalingService asks EndpointService: an endpoint's variant names, None if there is none."""

    def __init__(self, endpoints: dict[str, list[str]]) -> None:
        self.endpoints = endpoints

    def variant_names(self, endpoint_name: str) -> list[str] | None:
        return self.endpoints.get(endpoint_name)


@pytest.fixture
def platform(forgeml_home: Path, monkeypatch: pytest.MonkeyPatch) -> Platform:
    instance = Platform.get()
    fake = FakeEndpoints({"ep": ["AllTraffic", "Canary"], "other": ["AllTraffic"], "ep2": ["AllTraffic"]})
    monkeypatch.setitem(instance.__dict__, "endpoints", fake)
    return instance


@pytest.fixture
def client(platform: Platform) -> AutoScalingClient:
    return AutoScalingClient(platform)


def _policy(name: str = "invocations", resource: str = RESOURCE, **config: Any) -> dict[str, Any]:
    return {"PolicyName": name, "ServiceNamespace": "sagemaker", "ResourceId": resource, "ScalableDimension": DIMENSION,
            "PolicyType": "TargetTrackingScaling", "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 70.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                **config}}


def test_register_and_describe_targets(client: AutoScalingClient) -> None:
    arn = client.register_scalable_target(**KEY, MinCapacity=1, MaxCapacity=4)["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/")
    [target] = client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target.pop("CreationTime").tzinfo is not None
    assert target == {
        **KEY, "MinCapacity": 1, "MaxCapacity": 4, "ScalableTargetARN": arn,
        "RoleARN": "arn:aws:iam::000000000000:role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                   "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
        "SuspendedState": {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                           "ScheduledScalingSuspended": False},
    }
    # registering again updates what is given and keeps the rest (the ARN included)
    again = client.register_scalable_target(**KEY, MaxCapacity=6, SuspendedState={"DynamicScalingInSuspended": True})
    assert again["ScalableTargetARN"] == arn
    [target] = client.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[RESOURCE])["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 6)
    assert target["SuspendedState"]["DynamicScalingInSuspended"] is True
    with pytest.raises(ValidationException, match="^Minimum capacity cannot be greater than maximum capacity$"):
        client.register_scalable_target(**KEY, MinCapacity=7)


def test_describe_targets_filters_and_pages(client: AutoScalingClient) -> None:
    for resource in ("endpoint/ep/variant/AllTraffic", "endpoint/ep/variant/Canary",
                     "endpoint/other/variant/AllTraffic"):
        client.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=DIMENSION,
                                        MinCapacity=1, MaxCapacity=2)
    first = client.describe_scalable_targets(ServiceNamespace="sagemaker", MaxResults=2)
    assert [t["ResourceId"] for t in first["ScalableTargets"]] == ["endpoint/ep/variant/AllTraffic",
                                                                    "endpoint/ep/variant/Canary"]
    rest = client.describe_scalable_targets(ServiceNamespace="sagemaker", MaxResults=2, NextToken=first["NextToken"])
    assert [t["ResourceId"] for t in rest["ScalableTargets"]] == ["endpoint/other/variant/AllTraffic"]
    assert "NextToken" not in rest
    pages = list(client.get_paginator("describe_scalable_targets").paginate(ServiceNamespace="sagemaker", MaxResults=1))
    assert len(pages) == 3
    only = client.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=["endpoint/ep/variant/Canary"])
    assert [t["ResourceId"] for t in only["ScalableTargets"]] == ["endpoint/ep/variant/Canary"]


@pytest.mark.parametrize(
    ("members", "error", "message"),
    [
        ({"ServiceNamespace": "ecs"}, ValidationException,
         "Value 'ecs' at 'serviceNamespace' failed to satisfy constraint: Member must satisfy enum value set: "
         "[sagemaker]"),
        ({"ScalableDimension": "sagemaker:variant:DesiredProvisionedConcurrency"}, ValidationException,
         "at 'scalableDimension' failed to satisfy constraint: Member must satisfy enum value set: "
         "[sagemaker:variant:DesiredInstanceCount]"),
        ({"ResourceId": "endpoint/ep"}, ValidationException,
         "Value 'endpoint/ep' at 'resourceId' failed to satisfy constraint: Member must be of the form "
         "endpoint/<EndpointName>/variant/<VariantName>"),
        ({"ResourceId": None}, ValidationException, "Value 'null' at 'resourceId' failed to satisfy constraint: Member "
                                                    "must not be null"),
        ({"MinCapacity": 0}, ValidationException,
         "Value '0' at 'minCapacity' failed to satisfy constraint: Member must have value greater than or equal to 1 "
         "for sagemaker:variant:DesiredInstanceCount"),
        ({"MinCapacity": -1}, ValidationException, "at 'minCapacity' failed to satisfy constraint: Member must have "
                                                   "value greater than or equal to 0"),
        ({"MaxCapacity": "many"}, ValidationException, "at 'maxCapacity' failed to satisfy constraint: Member must be "
                                                       "an integer"),
        ({"MinCapacity": 3, "MaxCapacity": 2}, ValidationException,
         "Minimum capacity cannot be greater than maximum capacity"),
        ({"MaxCapacity": None}, ValidationException,
         "MinCapacity and MaxCapacity must both be given to register a new scalable target"),
        ({"SuspendedState": {"DynamicScalingInSuspended": "no"}}, ValidationException,
         "at 'suspendedState.dynamicScalingInSuspended' failed to satisfy constraint: Member must be a boolean"),
        ({"ResourceId": "endpoint/missing/variant/AllTraffic"}, ValidationException,
         'Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/missing".'),
        ({"ResourceId": "endpoint/ep/variant/Shadow"}, ValidationException,
         "The variant Shadow is not a production variant of the endpoint ep (its variants: AllTraffic, Canary)."),
        ({"Colour": "red"}, ValidationException, 'Unknown parameter in input: "Colour"'),
    ],
)
def test_bad_register_scalable_target(client: AutoScalingClient, members: dict[str, Any], error: type[Exception],
                                      message: str) -> None:
    request = {**KEY, "MinCapacity": 1, "MaxCapacity": 3, **members}
    with pytest.raises(error) as raised:
        client.register_scalable_target(**{k: v for k, v in request.items() if v is not None})
    assert message in str(raised.value)
    assert client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []


def test_policies_put_describe_replace_delete(client: AutoScalingClient) -> None:
    with pytest.raises(ObjectNotFoundException) as raised:
        client.put_scaling_policy(**_policy())
    assert str(raised.value) == ("No scalable target registered for service namespace: sagemaker, resource ID: "
                                 f"{RESOURCE}, scalable dimension: {DIMENSION}")
    assert raised.value.code == "ObjectNotFoundException" and raised.value.http_status == 400
    client.register_scalable_target(**KEY, MinCapacity=1, MaxCapacity=4)
    response = client.put_scaling_policy(**_policy(ScaleInCooldown=60))
    arn = response["PolicyARN"]
    assert response["Alarms"] == []
    assert arn.startswith("arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:")
    assert arn.endswith(f":resource/sagemaker/{RESOURCE}:policyName/invocations")
    # putting the same name again replaces the configuration and keeps the ARN
    assert client.put_scaling_policy(**_policy(TargetValue=90.0))["PolicyARN"] == arn
    [policy] = client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert policy.pop("CreationTime").tzinfo is not None
    assert policy == {
        "PolicyARN": arn, "PolicyName": "invocations", **KEY, "PolicyType": "TargetTrackingScaling", "Alarms": [],
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": 90.0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}},
    }
    client.put_scaling_policy(**_policy(name="second"))
    described = client.describe_scaling_policies(ServiceNamespace="sagemaker", PolicyNames=["second"])
    assert [p["PolicyName"] for p in described["ScalingPolicies"]] == ["second"]
    first = client.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=RESOURCE, MaxResults=1)
    assert [p["PolicyName"] for p in first["ScalingPolicies"]] == ["invocations"] and "NextToken" in first
    assert len(list(client.get_paginator("describe_scaling_policies").paginate(ServiceNamespace="sagemaker",
                                                                               MaxResults=1))) == 2
    client.delete_scaling_policy(PolicyName="invocations", **KEY)
    remaining = client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    assert [p["PolicyName"] for p in remaining] == ["second"]
    with pytest.raises(ObjectNotFoundException, match="^No scaling policy found for service namespace: sagemaker, "
                                                      f"resource ID: {RESOURCE}, scalable dimension: {DIMENSION}, "
                                                      "policy name: invocations$"):
        client.delete_scaling_policy(PolicyName="invocations", **KEY)


def test_deregister_cascades_to_policies(client: AutoScalingClient) -> None:
    client.register_scalable_target(**KEY, MinCapacity=1, MaxCapacity=4)
    client.put_scaling_policy(**_policy())
    client.deregister_scalable_target(**KEY)
    assert client.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    with pytest.raises(ObjectNotFoundException, match="^No scalable target found for service namespace: sagemaker, "
                                                      f"resource ID: {RESOURCE}, scalable dimension: {DIMENSION}$"):
        client.deregister_scalable_target(**KEY)
    # registering anew starts without the old policies
    client.register_scalable_target(**KEY, MinCapacity=1, MaxCapacity=4)
    assert client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []


def _without_predefined(**config: Any) -> dict[str, Any]:
    policy = _policy(**config)
    del policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    return policy


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({**_policy(), "PolicyType": "StepScaling"},
         "Value 'StepScaling' at 'policyType' failed to satisfy constraint: Member must be TargetTrackingScaling: "
         "forgeml scales endpoint variants with target tracking only (StepScaling needs CloudWatch alarm actions)"),
        ({k: v for k, v in _policy().items() if k != "PolicyType"}, "Value 'StepScaling' at 'policyType'"),
        ({**_policy(), "PolicyType": "Reactive"}, "at 'policyType' failed to satisfy constraint: Member must satisfy "
                                                  "enum value set: [StepScaling, TargetTrackingScaling, "
                                                  "PredictiveScaling]"),
        ({k: v for k, v in _policy().items() if k != "TargetTrackingScalingPolicyConfiguration"},
         "Value 'null' at 'targetTrackingScalingPolicyConfiguration' failed to satisfy constraint: Member must not be "
         "null"),
        ({**_policy(), "PolicyName": None}, "Value 'null' at 'policyName' failed to satisfy constraint"),
        (_policy(TargetValue=None), "Value 'null' at 'targetTrackingScalingPolicyConfiguration.targetValue' failed to "
                                    "satisfy constraint: Member must not be null"),
        (_policy(TargetValue=0), "Value '0' at 'targetTrackingScalingPolicyConfiguration.targetValue' failed to "
                                 "satisfy constraint: Member must have value greater than 0"),
        (_policy(TargetValue="lots"), "at 'targetTrackingScalingPolicyConfiguration.targetValue' failed to satisfy "
                                      "constraint: Member must be a number"),
        (_policy(ScaleInCooldown=-1), "at 'targetTrackingScalingPolicyConfiguration.scaleInCooldown' failed to "
                                      "satisfy constraint: Member must have value greater than or equal to 0"),
        (_policy(ScaleOutCooldown=86401), "at 'targetTrackingScalingPolicyConfiguration.scaleOutCooldown' failed to "
                                          "satisfy constraint: Member must have value less than or equal to 86400"),
        (_policy(DisableScaleIn="no"), "at 'targetTrackingScalingPolicyConfiguration.disableScaleIn' failed to satisfy "
                                       "constraint: Member must be a boolean"),
        (_policy(PredefinedMetricSpecification={"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}),
         "at 'targetTrackingScalingPolicyConfiguration.predefinedMetricSpecification.predefinedMetricType' failed to "
         "satisfy constraint: Member must satisfy enum value set: [SageMakerVariantInvocationsPerInstance]"),
        (_policy(CustomizedMetricSpecification={"Namespace": "AWS/SageMaker", "MetricName": "ModelLatency",
                                                "Statistic": "Average"}),
         "at 'targetTrackingScalingPolicyConfiguration.predefinedMetricSpecification' failed to satisfy constraint: "
         "Member must be given, or CustomizedMetricSpecification instead, but not both"),
        (_without_predefined(), "Value 'null' at 'targetTrackingScalingPolicyConfiguration."
                                "predefinedMetricSpecification' failed to satisfy constraint: Member must be given"),
        (_without_predefined(CustomizedMetricSpecification={"Namespace": "AWS/EC2", "MetricName": "ModelLatency",
                                                            "Statistic": "Average"}),
         "Value 'AWS/EC2' at 'targetTrackingScalingPolicyConfiguration.customizedMetricSpecification.namespace' failed "
         "to satisfy constraint: Member must satisfy enum value set: [AWS/SageMaker]"),
        (_without_predefined(CustomizedMetricSpecification={"Namespace": "AWS/SageMaker", "MetricName": "GPU",
                                                            "Statistic": "Average"}),
         "Value 'GPU' at 'targetTrackingScalingPolicyConfiguration.customizedMetricSpecification.metricName'"),
        (_without_predefined(CustomizedMetricSpecification={"Namespace": "AWS/SageMaker", "MetricName": "ModelLatency",
                                                            "Statistic": "p90"}),
         "Value 'p90' at 'targetTrackingScalingPolicyConfiguration.customizedMetricSpecification.statistic'"),
        (_without_predefined(CustomizedMetricSpecification={
            "Namespace": "AWS/SageMaker", "MetricName": "ModelLatency", "Statistic": "Average",
            "Dimensions": [{"Name": "InstanceId", "Value": "i"}]}),
         "Value 'InstanceId' at 'targetTrackingScalingPolicyConfiguration.customizedMetricSpecification.dimensions.1."
         "name'"),
        ({**_policy(), "ResourceId": "endpoint/ep/variant/"}, "at 'resourceId' failed to satisfy constraint: Member "
                                                              "must be of the form"),
    ],
)
def test_bad_put_scaling_policy(client: AutoScalingClient, policy: dict[str, Any], message: str) -> None:
    client.register_scalable_target(**KEY, MinCapacity=1, MaxCapacity=4)
    with pytest.raises(ValidationException) as raised:
        client.put_scaling_policy(**{k: v for k, v in policy.items() if v is not None})
    assert message in raised.value.message
    assert client.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []


def test_customized_metric_policy_is_accepted(client: AutoScalingClient, platform: Platform) -> None:
    client.register_scalable_target(**KEY, MinCapacity=1, MaxCapacity=4)
    spec = {"Namespace": "AWS/SageMaker", "MetricName": "ModelLatency", "Statistic": "Average", "Unit": "Microseconds",
            "Dimensions": [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]}
    client.put_scaling_policy(**_without_predefined(CustomizedMetricSpecification=spec))
    tracking = platform.autoscaling.tracking_for_endpoint("ep")["AllTraffic"]
    assert tracking.metric == spec and tracking.target_value == 70.0


def test_activities_newest_first_and_paged(client: AutoScalingClient, platform: Platform) -> None:
    platform.autoscaling.record_activity(RESOURCE, "Setting desired instance count to 2.", "load rose")
    platform.autoscaling.record_activity(RESOURCE, "Setting desired instance count to 3.", "load rose more",
                                         "InProgress")
    platform.autoscaling.record_activity("endpoint/other/variant/AllTraffic", "Setting desired instance count to 1.",
                                         "quiet", "Failed")
    activities = client.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=RESOURCE)
    [newest, oldest] = activities["ScalingActivities"]
    assert newest["Description"] == "Setting desired instance count to 3." and newest["StatusCode"] == "InProgress"
    assert "EndTime" not in newest
    assert set(oldest) == {"ActivityId", "ServiceNamespace", "ResourceId", "ScalableDimension", "Description", "Cause",
                           "StartTime", "EndTime", "StatusCode"}
    assert (oldest["ServiceNamespace"], oldest["ResourceId"], oldest["ScalableDimension"], oldest["Cause"],
            oldest["StatusCode"]) == ("sagemaker", RESOURCE, DIMENSION, "load rose", "Successful")
    assert oldest["EndTime"] >= oldest["StartTime"]
    everything = client.describe_scaling_activities(ServiceNamespace="sagemaker")["ScalingActivities"]
    assert [a["Cause"] for a in everything] == ["quiet", "load rose more", "load rose"]
    pages = list(client.get_paginator("describe_scaling_activities").paginate(ServiceNamespace="sagemaker",
                                                                              MaxResults=2))
    assert [len(p["ScalingActivities"]) for p in pages] == [2, 1]
    with pytest.raises(ValueError, match="status_code must be one of"):
        platform.autoscaling.record_activity(RESOURCE, "x", "y", "Done")


def test_tracking_for_endpoint(client: AutoScalingClient, platform: Platform) -> None:
    for variant in ("AllTraffic", "Canary"):
        client.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=f"endpoint/ep/variant/{variant}",
                                        ScalableDimension=DIMENSION, MinCapacity=1, MaxCapacity=5)
    client.register_scalable_target(ServiceNamespace="sagemaker", ResourceId="endpoint/ep2/variant/AllTraffic",
                                    ScalableDimension=DIMENSION, MinCapacity=2, MaxCapacity=3)
    client.put_scaling_policy(**_policy(name="first", TargetValue=50.0, ScaleOutCooldown=5, DisableScaleIn=True))
    client.put_scaling_policy(**_policy(name="later", TargetValue=500.0))
    client.put_scaling_policy(**_policy(name="ep2", resource="endpoint/ep2/variant/AllTraffic"))
    trackers = platform.autoscaling.tracking_for_endpoint("ep")
    assert list(trackers) == ["AllTraffic"]  # Canary has no policy; ep2 is another endpoint
    tracking = trackers["AllTraffic"]
    assert isinstance(tracking, TargetTracking)
    assert (tracking.policy_name, tracking.target_value, tracking.scale_out_cooldown, tracking.disable_scale_in,
            tracking.min_capacity, tracking.max_capacity) == ("first", 50.0, 5.0, True, 1, 5)
    assert platform.autoscaling.tracking_for_endpoint("e") == {}
    assert platform.autoscaling.tracking_for_endpoint("ep2")["AllTraffic"].min_capacity == 2


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        ("describe_scalable_targets", {}, "Value 'null' at 'serviceNamespace' failed to satisfy constraint"),
        ("describe_scalable_targets", {"ServiceNamespace": "sagemaker", "MaxResults": 51},
         "at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50"),
        ("describe_scalable_targets", {"ServiceNamespace": "sagemaker", "ResourceIds": ["x"] * 51},
         "at 'resourceIds' failed to satisfy constraint: Member must have length less than or equal to 50"),
        ("describe_scaling_policies",
         {"ServiceNamespace": "sagemaker", "ScalableDimension": "ecs:service:DesiredCount"},
         "at 'scalableDimension' failed to satisfy constraint"),
        ("describe_scaling_activities", {"ServiceNamespace": "sagemaker", "IncludeNotScaledActivities": "yes"},
         "at 'includeNotScaledActivities' failed to satisfy constraint: Member must be a boolean"),
        ("deregister_scalable_target", {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE},
         "Value 'null' at 'scalableDimension' failed to satisfy constraint: Member must not be null"),
        ("delete_scaling_policy", KEY, "Value 'null' at 'policyName' failed to satisfy constraint"),
    ],
)
def test_bad_requests(client: AutoScalingClient, operation: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationException) as raised:
        getattr(client, operation)(**params)
    assert message in raised.value.message


def test_client_pagination_names(client: AutoScalingClient) -> None:
    assert client.can_paginate("describe_scaling_activities") and not client.can_paginate("put_scaling_policy")
    with pytest.raises(ValueError, match="cannot be paginated"):
        client.get_paginator("register_scalable_target")
    response = client.register_scalable_target(**KEY, MinCapacity=1, MaxCapacity=1)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert client.deregister_scalable_target(**KEY)["ResponseMetadata"]["HTTPStatusCode"] == 200
