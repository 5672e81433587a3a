"""Blue/green traffic steps for each DeploymentConfig."""

from __future__ import annotations

import pytest

from forgeml.hosting.deployment import traffic_plan


def policy(routing: dict[str, object], **extra: object) -> dict[str, object]:
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, **extra}}


def test_no_config_moves_everything_at_once_without_baking() -> None:
    plan = traffic_plan(None, 2)
    assert plan.steps == ((1.0, 0.0),) and plan.termination_wait == 0.0 and plan.alarms == ()


def test_all_at_once_bakes_and_waits_before_terminating() -> None:
    plan = traffic_plan({**policy({"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 30}, TerminationWaitInSeconds=5),
                         "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a"}, {"AlarmName": "b"}]}}, 3)
    assert plan.steps == ((1.0, 30.0),) and plan.termination_wait == 5.0 and plan.alarms == ("a", "b")


@pytest.mark.parametrize(("size", "capacity", "first"), [
    ({"Type": "INSTANCE_COUNT", "Value": 1}, 4, 0.25),
    ({"Type": "CAPACITY_PERCENT", "Value": 20}, 4, 0.2),
    ({"Type": "INSTANCE_COUNT", "Value": 4}, 4, 1.0),
])
def test_canary_shifts_its_size_then_the_rest(size: dict[str, object], capacity: int, first: float) -> None:
    plan = traffic_plan(policy({"Type": "CANARY", "WaitIntervalInSeconds": 10, "CanarySize": size}), capacity)
    expected = ((1.0, 10.0),) if first == 1.0 else ((first, 10.0), (1.0, 0.0))
    assert plan.steps == expected


def test_linear_shifts_step_by_step_baking_each() -> None:
    plan = traffic_plan(policy({"Type": "LINEAR", "WaitIntervalInSeconds": 2,
                                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 30}}), 10)
    assert [round(share, 6) for share, _ in plan.steps] == [0.3, 0.6, 0.9, 1.0]
    assert {bake for _, bake in plan.steps} == {2.0}
    by_count = traffic_plan(policy({"Type": "LINEAR", "WaitIntervalInSeconds": 0,
                                    "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1}}), 2)
    assert by_count.steps == ((0.5, 0.0), (1.0, 0.0))
