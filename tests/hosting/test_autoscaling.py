"""Target tracking: scale-out bounded by max, scale-in after cooldown, DisableScaleIn, clamping, cooldowns."""

from __future__ import annotations

from typing import Any

import pytest

from forgeml.hosting.autoscaling import TargetTracking, metric_window_seconds
from forgeml.hosting.metrics import InvocationMetrics

RESOURCE = "endpoint/ep/variant/AllTraffic"


def _target(**members: Any) -> dict[str, Any]:
    return {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount", "MinCapacity": 1, "MaxCapacity": 4,
            **members}


def _policy(**config: Any) -> dict[str, Any]:
    return {"PolicyName": "invocations", "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 100.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                **config}}


def _tracking(target: dict[str, Any] | None = None, **config: Any) -> TargetTracking:
    return TargetTracking.from_records(target or _target(), _policy(**config))


def test_from_records_defaults() -> None:
    tracking = _tracking()
    assert (tracking.min_capacity, tracking.max_capacity, tracking.target_value) == (1, 4, 100.0)
    assert (tracking.scale_out_cooldown, tracking.scale_in_cooldown, tracking.disable_scale_in) == (300, 300, False)
    assert tracking.resource_id == RESOURCE and tracking.policy_name == "invocations"
    assert tracking.metric == {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}


def test_scale_out_proportionally_and_bounded_by_max() -> None:
    tracking = _tracking()
    assert tracking.desired(1, 250.0, now=1000) == 3  # ceil(1 * 250 / 100)
    assert tracking.desired(2, 150.0, now=1000) == 3  # ceil(2 * 1.5)
    assert tracking.desired(2, 101.0, now=1000) == 3  # just above target: one more
    assert tracking.desired(2, 1000.0, now=1000) == 4  # bounded by MaxCapacity
    assert tracking.desired(4, 1000.0, now=1000) is None  # at max already
    assert tracking.desired(2, 100.0, now=1000) is None  # on target


def test_scale_out_cooldown_counts_from_the_last_scale_out() -> None:
    tracking = _tracking(ScaleOutCooldown=60)
    tracking.record_scaling("out", 1000)
    assert tracking.desired(2, 300.0, now=1059) is None
    assert tracking.desired(2, 300.0, now=1060) == 4
    tracking.record_scaling("in", 2000)  # a scale-in does not hold back a scale-out
    assert tracking.desired(2, 300.0, now=2001) == 4


def test_scale_in_only_after_cooldown_of_either_direction() -> None:
    tracking = _tracking(_target(MinCapacity=2, MaxCapacity=8), ScaleInCooldown=120)
    assert tracking.desired(6, 20.0, now=1000) == 2  # ceil(6 * 0.2) = 2, at MinCapacity
    assert tracking.desired(6, 0.0, now=1000) == 2  # never below MinCapacity
    assert tracking.desired(6, 50.0, now=1000) == 3
    tracking.record_scaling("out", 1000)
    assert tracking.desired(6, 20.0, now=1119) is None
    assert tracking.desired(6, 20.0, now=1120) == 2
    tracking.record_scaling("in", 1200)
    assert tracking.desired(6, 20.0, now=1300) is None
    assert tracking.desired(6, 20.0, now=1320) == 2


def test_scale_in_needs_a_margin() -> None:
    tracking = _tracking()
    assert tracking.desired(2, 60.0, now=0) is None  # one instance would run at 120 > 100
    assert tracking.desired(2, 50.0, now=0) == 1  # one instance would run exactly at target
    assert tracking.desired(3, 99.0, now=0) is None
    assert tracking.desired(1, 10.0, now=0) is None  # at MinCapacity


def test_disable_scale_in_and_suspension() -> None:
    assert _tracking(DisableScaleIn=True).desired(3, 1.0, now=0) is None
    assert _tracking(DisableScaleIn=True).desired(1, 300.0, now=0) == 3
    suspended_in = _tracking(_target(SuspendedState={"DynamicScalingInSuspended": True}))
    assert suspended_in.desired(3, 1.0, now=0) is None
    suspended_out = _tracking(_target(SuspendedState={"DynamicScalingOutSuspended": True}))
    assert suspended_out.desired(1, 300.0, now=0) is None
    assert suspended_out.desired(3, 1.0, now=0) == 1


def test_clamped_into_min_and_max_even_without_traffic() -> None:
    tracking = _tracking(_target(MinCapacity=2, MaxCapacity=3), DisableScaleIn=True)
    assert tracking.desired(1, None, now=0) == 2
    assert tracking.desired(5, None, now=0) == 3
    assert tracking.desired(5, 0.0, now=0) == 3  # above max even with DisableScaleIn
    assert tracking.desired(2, None, now=0) is None
    assert tracking.desired(1, 250.0, now=0) == 3  # below min and busy: as far as the load asks, up to max
    assert tracking.desired(1, 150.0, now=0) == 2
    tracking.record_scaling("out", 0)
    assert tracking.desired(1, 500.0, now=1) == 2  # clamping ignores the cooldowns, scaling beyond it does not


def test_record_scaling_bookkeeping() -> None:
    tracking = _tracking()
    tracking.record_scaling("out", 10)
    tracking.record_scaling("in", 20)
    assert (tracking.last_scale_out, tracking.last_scale_in) == (10, 20)
    with pytest.raises(ValueError, match="direction must be 'out' or 'in'"):
        tracking.record_scaling("up", 30)


def test_settings_leave_out_the_cooldown_clock() -> None:
    kept, fresh = _tracking(), _tracking()
    kept.record_scaling("out", 100)
    assert kept.settings() == fresh.settings()
    assert _tracking(TargetValue=50.0).settings() != fresh.settings()
    assert _tracking(_target(MaxCapacity=9)).settings() != fresh.settings()


def test_measure_predefined_metric_per_minute_per_instance() -> None:
    metrics = InvocationMetrics()
    for second in range(10):
        for _ in range(3):
            metrics.record(200, 1.0, 1.0, now=1000 + second)
    tracking = _tracking()
    assert tracking.measure(metrics, 2, 10, now=1009) == pytest.approx(90.0)  # 30 in 10 s = 180/min, 2 instances
    assert tracking.measure(metrics, 1, 10, now=5000) == 0.0


def test_measure_customized_metric() -> None:
    metrics = InvocationMetrics()
    metrics.record(200, 1000.0, 1.0, now=1000)
    metrics.record(500, 3000.0, 1.0, now=1001)
    config = {"CustomizedMetricSpecification": {"Namespace": "AWS/SageMaker", "MetricName": "ModelLatency",
                                                "Statistic": "Average"}}
    policy = _policy(**config)
    del policy["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
    latency = TargetTracking.from_records(_target(), policy)
    assert latency.measure(metrics, 1, 10, now=1001) == pytest.approx(2000.0)
    assert latency.measure(metrics, 1, 10, now=2000) is None
    latency.metric = {"Namespace": "AWS/SageMaker", "MetricName": "Invocations", "Statistic": "Sum"}
    assert latency.measure(metrics, 1, 2, now=1001) == pytest.approx(60.0)  # 2 in 2 s, per minute
    latency.metric = {"Namespace": "AWS/EC2", "MetricName": "CPUUtilization", "Statistic": "Average"}
    assert latency.measure(metrics, 1, 2, now=1001) is None


def test_activity_texts() -> None:
    tracking = _tracking(_target(MinCapacity=2))
    assert tracking.activity(2, 3, 150.0) == (
        "Setting desired instance count to 3.",
        "monitor metric SageMakerVariantInvocationsPerInstance at 150 was above the target 100, which triggered "
        "policy invocations")
    assert tracking.activity(1, 2, None) == (
        "Setting desired instance count to 2.", "the instance count 1 was below the minimum capacity 2")


def test_metric_window_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORGEML_AUTOSCALING_WINDOW_SECONDS", raising=False)
    assert metric_window_seconds() == 60.0
    monkeypatch.setenv("FORGEML_AUTOSCALING_WINDOW_SECONDS", "2.5")
    assert metric_window_seconds() == 2.5
    for bad in ("soon", "0", "-3"):
        monkeypatch.setenv("FORGEML_AUTOSCALING_WINDOW_SECONDS", bad)
        with pytest.raises(ValueError, match="FORGEML_AUTOSCALING_WINDOW_SECONDS must be a"):
            metric_window_seconds()
