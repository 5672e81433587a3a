"""An in-process client with boto3's Application Auto Scaling method names and shapes.

``AutoScalingClient(platform).register_scalable_target(ServiceNamespace="sagemaker", ...)`` behaves like
``boto3.client("application-autoscaling").register_scalable_target(...)`` for endpoint variants.
"""

from __future__ import annotations

from typing import Any

from forgeml.sdk.client import PaginatingClient, _with_metadata
from forgeml.service.platform import Platform


class AutoScalingClient(PaginatingClient):
    _PAGINATED = {
        "describe_scalable_targets": "ScalableTargets",
        "describe_scaling_policies": "ScalingPolicies",
        "describe_scaling_activities": "ScalingActivities",
    }

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def register_scalable_target(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.autoscaling.register_scalable_target(request))

    def describe_scalable_targets(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.autoscaling.describe_scalable_targets(**params))

    def deregister_scalable_target(self, **request: Any) -> dict[str, Any]:
        self.platform.autoscaling.deregister_scalable_target(request)
        return _with_metadata({})

    def put_scaling_policy(self, **request: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.autoscaling.put_scaling_policy(request))

    def describe_scaling_policies(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.autoscaling.describe_scaling_policies(**params))

    def delete_scaling_policy(self, **request: Any) -> dict[str, Any]:
        self.platform.autoscaling.delete_scaling_policy(request)
        return _with_metadata({})

    def describe_scaling_activities(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.autoscaling.describe_scaling_activities(**params))
