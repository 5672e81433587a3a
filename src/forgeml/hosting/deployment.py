"""Blue/green traffic shifting: the steps an UpdateEndpoint's DeploymentConfig asks for.

Each step is (share of traffic on the new fleet, seconds to bake at that share). Alarms named in
``AutoRollbackConfiguration`` are watched while baking and during ``TerminationWaitInSeconds``
(the old fleet still runs then, so a rollback is still instant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrafficPlan:
    steps: tuple[tuple[float, float], ...]
    termination_wait: float
    alarms: tuple[str, ...]


def _share(size: dict[str, Any], capacity: int) -> float:
    """A CapacitySize as a share of the new fleet's capacity (instance counts round up to a share)."""
    if size["Type"] == "CAPACITY_PERCENT":
        return min(1.0, size["Value"] / 100.0)
    return min(1.0, size["Value"] / max(capacity, 1))


def traffic_plan(deployment_config: dict[str, Any] | None, capacity: int) -> TrafficPlan:
    """The steps for a DeploymentConfig; without one, all traffic moves at once with no baking."""
    config = deployment_config or {}
    alarms = tuple(a["AlarmName"] for a in (config.get("AutoRollbackConfiguration") or {}).get("Alarms", []))
    policy = config.get("BlueGreenUpdatePolicy")
    if not policy:
        return TrafficPlan(((1.0, 0.0),), 0.0, alarms)
    routing = policy["TrafficRoutingConfiguration"]
    wait = float(routing.get("WaitIntervalInSeconds", 0))
    termination = float(policy.get("TerminationWaitInSeconds", 0))
    kind = routing["Type"]
    if kind == "CANARY":
        canary = _share(routing["CanarySize"], capacity)
        steps: tuple[tuple[float, float], ...] = ((canary, wait), (1.0, 0.0)) if canary < 1 else ((1.0, wait),)
    elif kind == "LINEAR":
        step = _share(routing["LinearStepSize"], capacity)
        count = math.ceil(1.0 / step - 1e-9)
        steps = tuple((min(1.0, step * (i + 1)), wait) for i in range(count))
    else:
        steps = ((1.0, wait),)
    return TrafficPlan(steps, termination, alarms)
