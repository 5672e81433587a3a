"""Per-variant invocation metrics: windows, every statistic, expiry past the horizon, aggregation."""

from __future__ import annotations

import threading

import pytest

from forgeml.hosting.metrics import InvocationMetrics

T0 = 1_000_000.0


def _traffic() -> InvocationMetrics:
    """Four requests in two seconds: 200, 404, 500, 200 with known latencies."""
    metrics = InvocationMetrics(horizon=60)
    metrics.record(200, 1000.0, 10.0, now=T0 + 0.1)
    metrics.record(404, 3000.0, 30.0, now=T0 + 0.5)
    metrics.record(500, 2000.0, 20.0, now=T0 + 1.2)
    metrics.record(200, 6000.0, 40.0, now=T0 + 1.9)
    return metrics


@pytest.mark.parametrize(
    ("metric", "statistic", "expected"),
    [
        ("Invocations", "Sum", 4.0),
        ("Invocations", "SampleCount", 4.0),
        ("Invocations", "Average", 1.0),
        ("Invocations", "Maximum", 1.0),
        ("Invocations", "Minimum", 1.0),
        ("Invocation4XXErrors", "Sum", 1.0),
        ("Invocation4XXErrors", "Average", 0.25),
        ("Invocation4XXErrors", "Maximum", 1.0),
        ("Invocation4XXErrors", "Minimum", 0.0),
        ("Invocation4XXErrors", "SampleCount", 4.0),
        ("Invocation5XXErrors", "Sum", 1.0),
        ("Invocation5XXErrors", "Average", 0.25),
        ("ModelLatency", "Sum", 12000.0),
        ("ModelLatency", "Average", 3000.0),
        ("ModelLatency", "Maximum", 6000.0),
        ("ModelLatency", "Minimum", 1000.0),
        ("ModelLatency", "SampleCount", 4.0),
        ("OverheadLatency", "Sum", 100.0),
        ("OverheadLatency", "Average", 25.0),
        ("OverheadLatency", "Maximum", 40.0),
        ("OverheadLatency", "Minimum", 10.0),
    ],
)
def test_every_statistic_over_a_window(metric: str, statistic: str, expected: float) -> None:
    assert _traffic().statistic(metric, statistic, 10, now=T0 + 2) == pytest.approx(expected)


def test_invocations_per_instance_divides_by_the_instance_count() -> None:
    metrics = _traffic()
    assert metrics.statistic("InvocationsPerInstance", "Sum", 10, now=T0 + 2, instances=2) == pytest.approx(2.0)
    assert metrics.statistic("InvocationsPerInstance", "Average", 10, now=T0 + 2, instances=4) == pytest.approx(0.25)
    assert metrics.statistic("InvocationsPerInstance", "Sum", 10, now=T0 + 2) == pytest.approx(4.0)


def test_window_is_open_at_its_start_and_closed_at_its_end() -> None:
    metrics = _traffic()
    # (T0, T0 + 1]: only the second T0 + 1 (the 500 and the last 200)
    assert metrics.statistic("Invocations", "Sum", 1, now=T0 + 1) == 2.0
    assert metrics.statistic("Invocation5XXErrors", "Sum", 1, now=T0 + 1) == 1.0
    # (T0 - 1, T0]: the second T0 only
    assert metrics.statistic("Invocations", "Sum", 1, now=T0) == 2.0
    assert metrics.statistic("ModelLatency", "Maximum", 1, now=T0) == 3000.0


def test_a_window_without_invocations_has_no_datapoint() -> None:
    metrics = _traffic()
    assert metrics.statistic("Invocations", "Sum", 5, now=T0 + 30) is None
    assert metrics.statistic("ModelLatency", "Average", 5, now=T0 - 1) is None
    assert InvocationMetrics().statistic("Invocation5XXErrors", "Average", 60, now=T0) is None


def test_buckets_expire_past_the_horizon() -> None:
    metrics = InvocationMetrics(horizon=10)
    metrics.record(200, 1.0, 1.0, now=T0)
    assert metrics.statistic("Invocations", "Sum", 10, now=T0 + 9) == 1.0
    # a period longer than the horizon still sees only the horizon
    assert metrics.statistic("Invocations", "Sum", 100, now=T0 + 10) is None
    # the same slot reused ten seconds later starts from zero
    metrics.record(500, 7.0, 1.0, now=T0 + 10)
    assert metrics.statistic("Invocations", "Sum", 10, now=T0 + 10) == 1.0
    assert metrics.statistic("Invocation5XXErrors", "Minimum", 10, now=T0 + 10) == 1.0
    assert metrics.statistic("ModelLatency", "Minimum", 10, now=T0 + 10) == 7.0


def test_invocations_per_minute_scales_the_window_to_a_minute() -> None:
    metrics = _traffic()
    assert metrics.invocations_per_minute(2, now=T0 + 1) == pytest.approx(120.0)
    assert metrics.invocations_per_minute(60, now=T0 + 1) == pytest.approx(4.0)
    assert metrics.invocations_per_minute(2, now=T0 + 20) == 0.0


def test_combined_adds_up_variants() -> None:
    first, second = _traffic(), InvocationMetrics(horizon=60)
    second.record(503, 9000.0, 5.0, now=T0 + 1.5)
    second.record(200, 500.0, 5.0, now=T0 + 30)
    both = InvocationMetrics.combined([first, second])
    assert both.statistic("Invocations", "Sum", 10, now=T0 + 2) == 5.0
    assert both.statistic("Invocation5XXErrors", "Sum", 10, now=T0 + 2) == 2.0
    assert both.statistic("ModelLatency", "Maximum", 10, now=T0 + 2) == 9000.0
    assert both.statistic("ModelLatency", "Minimum", 60, now=T0 + 30) == 500.0
    assert both.statistic("Invocations", "Sum", 60, now=T0 + 30) == 6.0
    # a snapshot: later traffic on a part does not show
    first.record(200, 1.0, 1.0, now=T0 + 2)
    assert both.statistic("Invocations", "Sum", 10, now=T0 + 2) == 5.0
    assert InvocationMetrics.combined([]).statistic("Invocations", "Sum", 60, now=T0) is None


def test_unknown_metric_or_statistic_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric 'CPUUtilization'"):
        _traffic().statistic("CPUUtilization", "Average", 60, now=T0)
    with pytest.raises(ValueError, match="unknown statistic 'p99'"):
        _traffic().statistic("ModelLatency", "p99", 60, now=T0)
    with pytest.raises(ValueError, match="horizon"):
        InvocationMetrics(horizon=0)


def test_concurrent_records_are_all_counted() -> None:
    metrics = InvocationMetrics(horizon=60)

    def hammer() -> None:
        for _ in range(2000):
            metrics.record(200, 1.0, 1.0, now=T0)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert metrics.statistic("Invocations", "Sum", 1, now=T0) == 8000.0
