"""Target-tracking scaling of a variant's instance count (Application Auto Scaling's TargetTrackingScaling).

The host measures the policy's metric over a short window, asks ``TargetTracking.desired`` for a new
instance count, applies it and reports back with ``record_scaling`` so cooldowns can be kept.
The capacity follows ``ceil(current * metric / target)`` within [MinCapacity, MaxCapacity]: scale-out
as soon as the metric is above target (once the previous scale-out's cooldown has passed), scale-in
only when the smaller fleet would still run at or below target and ScaleInCooldown has passed since
the last scaling of either direction. AWS does not document its exact formula; this one is the
usual reading of it and never oscillates between two counts on a steady load.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from forgeml.hosting.metrics import COUNT_METRICS, METRIC_NAMES, InvocationMetrics

DEFAULT_COOLDOWN_SECONDS = 300
DEFAULT_WINDOW_SECONDS = 60.0
WINDOW_VARIABLE = "FORGEML_AUTOSCALING_WINDOW_SECONDS"
PREDEFINED_INVOCATIONS_PER_INSTANCE = "SageMakerVariantInvocationsPerInstance"
_ROUNDING_SLACK = 1e-9


def metric_window_seconds() -> float:
    """How many seconds of traffic the host measures the metric over (SageMaker: one minute)."""
    raw = os.environ.get(WINDOW_VARIABLE)
    if raw is None or raw.strip() == "":
        return DEFAULT_WINDOW_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{WINDOW_VARIABLE} must be a number of seconds, not {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{WINDOW_VARIABLE} must be a positive number of seconds, not {raw!r}")
    return value


@dataclass
class TargetTracking:
    """One variant's scalable target and its target-tracking policy, with the cooldown clock."""

    resource_id: str
    policy_name: str
    min_capacity: int
    max_capacity: int
    target_value: float
    metric: dict[str, Any] = field(
        default_factory=lambda: {"PredefinedMetricType": PREDEFINED_INVOCATIONS_PER_INSTANCE})
    scale_out_cooldown: float = DEFAULT_COOLDOWN_SECONDS
    scale_in_cooldown: float = DEFAULT_COOLDOWN_SECONDS
    disable_scale_in: bool = False
    scale_out_suspended: bool = False
    scale_in_suspended: bool = False
    last_scale_out: float | None = None
    last_scale_in: float | None = None

    @classmethod
    def from_records(cls, target: dict[str, Any], policy: dict[str, Any]) -> TargetTracking:
        """From a RegisterScalableTarget request and a PutScalingPolicy request (as stored)."""
        config = policy["TargetTrackingScalingPolicyConfiguration"]
        suspended = target.get("SuspendedState") or {}
        metric = config.get("PredefinedMetricSpecification") or config.get("CustomizedMetricSpecification") or {}
        return cls(
            resource_id=str(target["ResourceId"]),
            policy_name=str(policy["PolicyName"]),
            min_capacity=int(target["MinCapacity"]),
            max_capacity=int(target["MaxCapacity"]),
            target_value=float(config["TargetValue"]),
            metric=dict(metric),
            scale_out_cooldown=float(config.get("ScaleOutCooldown", DEFAULT_COOLDOWN_SECONDS)),
            scale_in_cooldown=float(config.get("ScaleInCooldown", DEFAULT_COOLDOWN_SECONDS)),
            disable_scale_in=bool(config.get("DisableScaleIn", False)),
            scale_out_suspended=bool(suspended.get("DynamicScalingOutSuspended", False)),
            scale_in_suspended=bool(suspended.get("DynamicScalingInSuspended", False)),
        )

    def settings(self) -> tuple[Any, ...]:
        """Everything but the cooldown clock: equal settings mean the host may keep its old object."""
        return (self.resource_id, self.policy_name, self.min_capacity, self.max_capacity, self.target_value,
                repr(sorted(self.metric.items(), key=lambda item: item[0])), self.scale_out_cooldown,
                self.scale_in_cooldown, self.disable_scale_in, self.scale_out_suspended, self.scale_in_suspended)

    def measure(self, metrics: InvocationMetrics, instances: int, window_seconds: float,
                now: float | None = None) -> float | None:
        """The policy's metric over the last window, per minute as CloudWatch's one-minute datapoints.

        The predefined metric is invocations per minute per instance (0.0 without traffic, so an idle
        variant scales in). A customized metric on AWS/SageMaker uses its statistic; count sums are
        scaled to a minute. None when the metric is not one a forgeml endpoint publishes, or has no data.
        """
        if self.metric.get("PredefinedMetricType") == PREDEFINED_INVOCATIONS_PER_INSTANCE:
            return metrics.invocations_per_minute(window_seconds, now) / max(instances, 1)
        name, statistic = self.metric.get("MetricName"), self.metric.get("Statistic") or "Average"
        if self.metric.get("Namespace") != "AWS/SageMaker" or name not in METRIC_NAMES:
            return None
        value = metrics.statistic(str(name), str(statistic), window_seconds, now, instances=instances)
        if value is not None and statistic == "Sum" and name in COUNT_METRICS:
            value *= 60.0 / window_seconds
        return value

    def desired(self, current: int, metric_value: float | None, now: float) -> int | None:
        """The instance count to scale to now, or None to leave it as it is."""
        if current > self.max_capacity:
            return self.max_capacity
        if metric_value is None or self.target_value <= 0:
            return self.min_capacity if current < self.min_capacity else None
        wanted = math.ceil(current * metric_value / self.target_value - _ROUNDING_SLACK)
        if current < self.min_capacity:
            busier = self._scale_out(current, wanted, now) if metric_value > self.target_value else None
            return max(self.min_capacity, busier or 0)
        if metric_value > self.target_value:
            return self._scale_out(current, wanted, now)
        if metric_value < self.target_value:
            return self._scale_in(current, wanted, now)
        return None

    def _scale_out(self, current: int, wanted: int, now: float) -> int | None:
        if self.scale_out_suspended or self._cooling(self.last_scale_out, self.scale_out_cooldown, now):
            return None
        count = min(max(wanted, current + 1), self.max_capacity)
        return count if count > current else None

    def _scale_in(self, current: int, wanted: int, now: float) -> int | None:
        if self.disable_scale_in or self.scale_in_suspended:
            return None
        latest = max((t for t in (self.last_scale_out, self.last_scale_in) if t is not None), default=None)
        if self._cooling(latest, self.scale_in_cooldown, now):
            return None
        count = max(wanted, self.min_capacity)
        return count if count < current else None

    @staticmethod
    def _cooling(since: float | None, cooldown: float, now: float) -> bool:
        return since is not None and now - since < cooldown

    def record_scaling(self, direction: str, now: float) -> None:
        """The host scaled ``direction`` ("out" or "in") at ``now``: start that cooldown."""
        if direction == "out":
            self.last_scale_out = now
        elif direction == "in":
            self.last_scale_in = now
        else:
            raise ValueError(f"direction must be 'out' or 'in', not {direction!r}")

    def activity(self, current: int, desired: int, metric_value: float | None) -> tuple[str, str]:
        """(Description, Cause) of a scaling activity, in Application Auto Scaling's wording."""
        description = f"Setting desired instance count to {desired}."
        if current < self.min_capacity:
            return description, f"the instance count {current} was below the minimum capacity {self.min_capacity}"
        if current > self.max_capacity:
            return description, f"the instance count {current} was above the maximum capacity {self.max_capacity}"
        measured = "no data" if metric_value is None else f"{metric_value:g}"
        side = "above" if desired > current else "below"
        return description, (f"monitor metric {self.metric_label()} at {measured} was {side} the target "
                             f"{self.target_value:g}, which triggered policy {self.policy_name}")

    def metric_label(self) -> str:
        return str(self.metric.get("PredefinedMetricType") or self.metric.get("MetricName") or "metric")
