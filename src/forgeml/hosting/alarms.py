"""CloudWatch metric alarms evaluated against an endpoint's own invocation metrics.

An UpdateEndpoint's ``AutoRollbackConfiguration`` names alarms; while a blue/green deployment bakes
the host evaluates them here. An alarm is a stored PutMetricAlarm request on ``AWS/SageMaker``: each
of its ``EvaluationPeriods`` windows of ``Period`` seconds ending now is one datapoint, and it goes to
ALARM when ``DatapointsToAlarm`` of them cross the threshold, as CloudWatch's M-out-of-N rule. Missing
datapoints follow ``TreatMissingData``; with ``missing`` or ``ignore`` the datapoints present are
evaluated and, when fewer than M are present, all of them must breach (CloudWatch's reading).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from forgeml.hosting.metrics import METRIC_NAMES, STATISTICS, InvocationMetrics

NAMESPACE = "AWS/SageMaker"
OPERATORS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "GreaterThanOrEqualToThreshold": ("greater than or equal to", lambda value, threshold: value >= threshold),
    "GreaterThanThreshold": ("greater than", lambda value, threshold: value > threshold),
    "LessThanThreshold": ("less than", lambda value, threshold: value < threshold),
    "LessThanOrEqualToThreshold": ("less than or equal to", lambda value, threshold: value <= threshold),
}
MISSING_DATA_TREATMENTS = ("breaching", "notBreaching", "ignore", "missing")
MAX_REASON_LENGTH = 1023  # SetAlarmState's StateReason limit


@dataclass(frozen=True)
class Datapoint:
    start: float  # the period's first second (CloudWatch labels a datapoint with its period's start)
    value: float | None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _render(points: list[Datapoint]) -> str:
    stamps = (datetime.fromtimestamp(p.start, tz=UTC).strftime("%d/%m/%y %H:%M:%S") for p in points)
    shown = (f"{float(p.value or 0.0)!r} ({stamp})" for p, stamp in zip(points, stamps, strict=True))
    return "[" + ", ".join(shown) + "]"


def _dimensions(alarm: dict[str, Any]) -> dict[str, str]:
    return {str(d["Name"]): str(d["Value"]) for d in alarm.get("Dimensions") or []}


def _unsupported(alarm: dict[str, Any]) -> str | None:
    """Why this alarm cannot be evaluated on a local endpoint's metrics, if it cannot."""
    namespace, metric = alarm.get("Namespace"), alarm.get("MetricName")
    if namespace != NAMESPACE:
        return (f"Insufficient Data: the metric namespace {namespace} is not published by forgeml endpoints; only "
                f"{NAMESPACE} invocation metrics can be evaluated locally.")
    if metric not in METRIC_NAMES:
        return (f"Insufficient Data: the metric {metric} is not published by forgeml endpoints; one of "
                f"{', '.join(METRIC_NAMES)} can be evaluated locally.")
    if alarm.get("Statistic") not in STATISTICS:
        return "Insufficient Data: only the statistics SampleCount, Average, Sum, Minimum and Maximum are evaluated."
    unknown = sorted(set(_dimensions(alarm)) - {"EndpointName", "VariantName"})
    if unknown:
        return f"Insufficient Data: the dimension {unknown[0]} is not published by forgeml endpoints."
    return None


def datapoints(alarm: dict[str, Any], metrics: InvocationMetrics | None, instances: int, now: float) -> list[Datapoint]:
    """The alarm's EvaluationPeriods datapoints, newest first."""
    period = float(alarm["Period"])
    points = []
    for index in range(int(alarm["EvaluationPeriods"])):
        end = now - index * period
        value = None if metrics is None else metrics.statistic(alarm["MetricName"], alarm["Statistic"], period, end,
                                                               instances=instances)
        points.append(Datapoint(math.floor(end - period) + 1, value))
    return points


def _were(count: int) -> str:
    return "was" if count == 1 else "were"


def _without_data(alarm: dict[str, Any], missing: int, treatment: str) -> tuple[str, str]:
    """The state when no datapoint of the evaluation range is present."""
    if treatment == "missing":
        return "INSUFFICIENT_DATA", f"Insufficient Data: {_plural(missing, 'datapoint')} {_were(missing)} unknown."
    if treatment == "ignore":
        state, reason = alarm.get("StateValue"), alarm.get("StateReason")
        return str(state or "INSUFFICIENT_DATA"), str(reason or "Unchecked: no data")
    label = "Breaching" if treatment == "breaching" else "NonBreaching"
    return ("ALARM" if treatment == "breaching" else "OK",
            f"Threshold Crossed: no datapoints were received for {_plural(missing, 'period')} and "
            f"{_plural(missing, 'missing datapoint')} {_were(missing)} treated as [{label}].")


def _judge(alarm: dict[str, Any], points: list[Datapoint]) -> tuple[str, str]:
    phrase, crosses = OPERATORS[alarm["ComparisonOperator"]]
    threshold = float(alarm["Threshold"])
    treatment = alarm.get("TreatMissingData") or "missing"
    needed = int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"])
    present = [p for p in points if p.value is not None]
    missing = len(points) - len(present)
    if not present:
        return _without_data(alarm, missing, treatment)
    breaching = [p for p in present if crosses(float(p.value or 0.0), threshold)]
    calm = [p for p in present if not crosses(float(p.value or 0.0), threshold)]
    note = ""
    if treatment in ("missing", "ignore"):
        needed = min(needed, len(present))
    elif missing:
        label = "Breaching" if treatment == "breaching" else "NonBreaching"
        note = f" {_plural(missing, 'missing datapoint')} {_were(missing)} treated as [{label}]."
    count = len(breaching) + (missing if treatment == "breaching" else 0)
    minimum = f"(minimum {_plural(needed, 'datapoint')} for OK -> ALARM transition)"
    if count >= needed:
        return "ALARM", (f"Threshold Crossed: {count} out of the last {len(points)} datapoints {_render(breaching)} "
                         f"{_were(len(breaching))} {phrase} the threshold ({threshold!r}) {minimum}.{note}")
    if not calm:
        return "OK", (f"Threshold Crossed: only {count} out of the last {len(points)} datapoints {_render(breaching)} "
                      f"{_were(len(breaching))} {phrase} the threshold ({threshold!r}) {minimum}.{note}")
    return "OK", (f"Threshold Crossed: {_plural(len(calm), 'datapoint')} {_render(calm)} {_were(len(calm))} not "
                  f"{phrase} the threshold ({threshold!r}).{note}")


def evaluate_alarm(
    alarm: dict[str, Any],
    lookup: Callable[[dict[str, str]], InvocationMetrics | None],
    instances: Callable[[dict[str, str]], int],
    now: float | None = None,
) -> tuple[str, str]:
    """(StateValue, StateReason) of a stored alarm now: ``OK``, ``ALARM`` or ``INSUFFICIENT_DATA``.

    ``lookup`` gives the metrics its dimensions name (an endpoint's variants added up when only
    EndpointName is given), or None when no endpoint here publishes them: every datapoint is missing.
    """
    reason = _unsupported(alarm)
    if reason is not None:
        return "INSUFFICIENT_DATA", reason
    dimensions = _dimensions(alarm)
    metrics = lookup(dimensions)
    points = datapoints(alarm, metrics, instances(dimensions) if metrics is not None else 1,
                        time.time() if now is None else now)
    state, reason = _judge(alarm, points)
    if len(reason) > MAX_REASON_LENGTH:
        reason = reason[:MAX_REASON_LENGTH - 3] + "..."
    return state, reason
