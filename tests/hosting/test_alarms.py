"""Alarm evaluation: operators, M of N, missing data treatments, endpoint-level aggregation, reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from forgeml.hosting.alarms import evaluate_alarm
from forgeml.hosting.metrics import InvocationMetrics

START = datetime(2026, 11, 23, 14, 2, tzinfo=UTC).timestamp()  # the first period's start
PERIOD = 60


def _alarm(**members: Any) -> dict[str, Any]:
    alarm: dict[str, Any] = {
        "AlarmName": "errors", "Namespace": "AWS/SageMaker", "MetricName": "Invocation5XXErrors",
        "Dimensions": [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        "Statistic": "Sum", "Period": PERIOD, "EvaluationPeriods": 1, "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    alarm.update(members)
    return alarm


def _errors_per_period(counts: list[int | None]) -> InvocationMetrics:
    """Period i (oldest first) gets ``counts[i]`` 5xx answers plus one 200, or no traffic when None."""
    metrics = InvocationMetrics()
    for index, errors in enumerate(counts):
        if errors is None:
            continue
        at = START + index * PERIOD + 10
        metrics.record(200, 100.0, 1.0, now=at)
        for _ in range(errors):
            metrics.record(500, 100.0, 1.0, now=at)
    return metrics


def _evaluate(alarm: dict[str, Any], metrics: InvocationMetrics | None, periods: int) -> tuple[str, str]:
    return evaluate_alarm(alarm, lambda dims: metrics, lambda dims: 1, now=START + periods * PERIOD - 0.5)


def test_reason_reads_like_cloudwatch() -> None:
    state, reason = _evaluate(_alarm(), _errors_per_period([4]), 1)
    assert state == "ALARM"
    assert reason == ("Threshold Crossed: 1 out of the last 1 datapoints [4.0 (23/11/26 14:02:00)] was greater than "
                      "the threshold (0.0) (minimum 1 datapoint for OK -> ALARM transition).")
    state, reason = _evaluate(_alarm(Threshold=5.0), _errors_per_period([4]), 1)
    assert (state, reason) == ("OK", "Threshold Crossed: 1 datapoint [4.0 (23/11/26 14:02:00)] was not greater than "
                                     "the threshold (5.0).")


@pytest.mark.parametrize(
    ("operator", "threshold", "expected"),
    [
        ("GreaterThanThreshold", 2.0, "OK"),
        ("GreaterThanThreshold", 1.9, "ALARM"),
        ("GreaterThanOrEqualToThreshold", 2.0, "ALARM"),
        ("GreaterThanOrEqualToThreshold", 2.1, "OK"),
        ("LessThanThreshold", 2.0, "OK"),
        ("LessThanThreshold", 2.1, "ALARM"),
        ("LessThanOrEqualToThreshold", 2.0, "ALARM"),
        ("LessThanOrEqualToThreshold", 1.9, "OK"),
    ],
)
def test_each_comparison_operator(operator: str, threshold: float, expected: str) -> None:
    state, reason = _evaluate(_alarm(ComparisonOperator=operator, Threshold=threshold), _errors_per_period([2]), 1)
    assert state == expected
    phrase = {"GreaterThanThreshold": "greater than", "GreaterThanOrEqualToThreshold": "greater than or equal to",
              "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to"}[operator]
    assert f"{'not ' if expected == 'OK' else ''}{phrase} the threshold ({threshold})" in reason


def test_datapoints_to_alarm_m_out_of_n() -> None:
    alarm = _alarm(EvaluationPeriods=3, DatapointsToAlarm=2)
    state, reason = _evaluate(alarm, _errors_per_period([3, 0, 1]), 3)
    assert state == "ALARM"
    assert reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints [1.0 (23/11/26 14:04:00), "
                             "3.0 (23/11/26 14:02:00)] were greater than the threshold (0.0) (minimum 2 datapoints")
    state, reason = _evaluate(alarm, _errors_per_period([0, 0, 5]), 3)
    assert state == "OK"
    assert reason.startswith("Threshold Crossed: 2 datapoints [0.0 (23/11/26 14:03:00), 0.0 (23/11/26 14:02:00)] "
                             "were not greater than")
    # without DatapointsToAlarm every period must breach
    assert _evaluate(_alarm(EvaluationPeriods=3), _errors_per_period([3, 0, 1]), 3)[0] == "OK"
    assert _evaluate(_alarm(EvaluationPeriods=3), _errors_per_period([3, 2, 1]), 3)[0] == "ALARM"


def test_all_data_missing_follows_treat_missing_data() -> None:
    quiet = _errors_per_period([None, None])
    assert _evaluate(_alarm(EvaluationPeriods=2), quiet, 2) == (
        "INSUFFICIENT_DATA", "Insufficient Data: 2 datapoints were unknown.")
    assert _evaluate(_alarm(EvaluationPeriods=2, TreatMissingData="breaching"), quiet, 2) == (
        "ALARM", "Threshold Crossed: no datapoints were received for 2 periods and 2 missing datapoints were "
                 "treated as [Breaching].")
    assert _evaluate(_alarm(TreatMissingData="notBreaching"), quiet, 1) == (
        "OK", "Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as "
              "[NonBreaching].")
    ignored = _alarm(TreatMissingData="ignore", StateValue="ALARM", StateReason="earlier")
    assert _evaluate(ignored, quiet, 1) == ("ALARM", "earlier")
    assert _evaluate(_alarm(TreatMissingData="ignore"), quiet, 1)[0] == "INSUFFICIENT_DATA"
    # no endpoint here publishes the metric: every datapoint is missing
    assert _evaluate(_alarm(), None, 1) == ("INSUFFICIENT_DATA", "Insufficient Data: 1 datapoint was unknown.")


def test_some_data_missing() -> None:
    three = {"EvaluationPeriods": 3}
    newest_breaches = _errors_per_period([None, None, 2])
    # missing / ignore: fewer datapoints than needed, all present ones breaching -> ALARM
    assert _evaluate(_alarm(**three), newest_breaches, 3)[0] == "ALARM"
    assert _evaluate(_alarm(**three, TreatMissingData="ignore"), newest_breaches, 3)[0] == "ALARM"
    # notBreaching: 1 breaching out of 3 is not 3
    state, reason = _evaluate(_alarm(**three, TreatMissingData="notBreaching"), newest_breaches, 3)
    assert state == "OK"
    assert reason.endswith("2 missing datapoints were treated as [NonBreaching].")
    # breaching: the two gaps count as breaching
    state, reason = _evaluate(_alarm(**three, TreatMissingData="breaching"), _errors_per_period([None, 1, None]), 3)
    assert state == "ALARM"
    assert reason.startswith("Threshold Crossed: 3 out of the last 3 datapoints [1.0 (23/11/26 14:03:00)] was greater")
    assert reason.endswith("2 missing datapoints were treated as [Breaching].")
    assert _evaluate(_alarm(**three, TreatMissingData="breaching"), _errors_per_period([0, None, 1]), 3)[0] == "OK"


def test_long_reasons_fit_set_alarm_state() -> None:
    alarm = _alarm(EvaluationPeriods=60, Period=1)
    metrics = InvocationMetrics()
    for second in range(60):
        metrics.record(500, 1.0, 1.0, now=START + second)
    state, reason = evaluate_alarm(alarm, lambda d: metrics, lambda d: 1, now=START + 59.5)
    assert state == "ALARM"
    assert len(reason) == 1023 and reason.startswith("Threshold Crossed: 60 out of the last 60 datapoints [1.0 (")
    assert reason.endswith("...")


def test_endpoint_level_alarm_aggregates_variants_through_lookup() -> None:
    blue, green = _errors_per_period([1]), _errors_per_period([2])
    seen: list[dict[str, str]] = []

    def lookup(dimensions: dict[str, str]) -> InvocationMetrics | None:
        seen.append(dimensions)
        return InvocationMetrics.combined([blue, green]) if "VariantName" not in dimensions else blue

    alarm = _alarm(Dimensions=[{"Name": "EndpointName", "Value": "ep"}], Threshold=2.5)
    state, reason = evaluate_alarm(alarm, lookup, lambda dims: 2, now=START + PERIOD - 0.5)
    assert seen == [{"EndpointName": "ep"}]
    assert state == "ALARM" and "[3.0 (" in reason
    assert evaluate_alarm(_alarm(Threshold=2.5), lookup, lambda dims: 2, now=START + PERIOD - 0.5)[0] == "OK"


def test_invocations_per_instance_uses_the_instance_count() -> None:
    metrics = _errors_per_period([3])  # four invocations
    alarm = _alarm(MetricName="InvocationsPerInstance", Threshold=1.5, ComparisonOperator="GreaterThanThreshold")
    assert evaluate_alarm(alarm, lambda d: metrics, lambda d: 2, now=START + PERIOD - 0.5)[0] == "ALARM"
    assert evaluate_alarm(alarm, lambda d: metrics, lambda d: 4, now=START + PERIOD - 0.5)[0] == "OK"


def test_latency_alarm() -> None:
    metrics = InvocationMetrics()
    metrics.record(200, 250_000.0, 10.0, now=START + 5)
    alarm = _alarm(MetricName="ModelLatency", Statistic="Average", Threshold=200_000.0)
    assert evaluate_alarm(alarm, lambda d: metrics, lambda d: 1, now=START + 30)[0] == "ALARM"


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ({"Namespace": "AWS/EC2", "MetricName": "CPUUtilization"},
         "Insufficient Data: the metric namespace AWS/EC2 is not published by forgeml endpoints; only AWS/SageMaker "
         "invocation metrics can be evaluated locally."),
        ({"MetricName": "CPUUtilization"}, "Insufficient Data: the metric CPUUtilization is not published"),
        ({"Dimensions": [{"Name": "InstanceId", "Value": "i-1"}]},
         "Insufficient Data: the dimension InstanceId is not published"),
    ],
)
def test_alarms_that_cannot_be_evaluated_locally(members: dict[str, Any], reason: str) -> None:
    state, text = _evaluate(_alarm(**members), _errors_per_period([5]), 1)
    assert state == "INSUFFICIENT_DATA"
    assert text.startswith(reason)
