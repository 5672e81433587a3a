"""Application Auto Scaling over JSON 1.1 (``X-Amz-Target: AnyScaleFrontendService.<Operation>``).

Every method of the in-process ``forgeml.sdk.autoscaling.AutoScalingClient``, called the same way:
operations that change something pass the request whole, Describe operations pass its members as
keyword parameters. The service (``platform.autoscaling``) validates and answers in Application
Auto Scaling's own error codes (``ValidationException``, ``ObjectNotFoundException``).
"""

from __future__ import annotations

from forgeml.server.json_protocol import JsonService, Operation

TARGET_PREFIX = "AnyScaleFrontendService"



OPERATIONS: dict[str, Operation] = {
    "RegisterScalableTarget": lambda p, r: p.autoscaling.register_scalable_target(r),
    "DescribeScalableTargets": lambda p, r: p.autoscaling.describe_scalable_targets(**r),
    "DeregisterScalableTarget": lambda p, r: p.autoscaling.deregister_scalable_target(r),
    "PutScalingPolicy": lambda p, r: p.autoscaling.put_scaling_policy(r),
    "DescribeScalingPolicies": lambda p, r: p.autoscaling.describe_scaling_policies(**r),
    "DeleteScalingPolicy": lambda p, r: p.autoscaling.delete_scaling_policy(r),
    "DescribeScalingActivities": lambda p, r: p.autoscaling.describe_scaling_activities(**r),
}

SERVICE = JsonService(prefix=TARGET_PREFIX, model_name="application-autoscaling", operations=OPERATIONS)
