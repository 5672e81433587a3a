"""Per-variant invocation metrics, kept the way CloudWatch's ``AWS/SageMaker`` namespace reports them.

The router records every request on its event loop, so ``record`` is O(1): a ring of per-second
buckets indexed by ``second % horizon``, a stale bucket reset in place, a lock held for a few
additions. Readers (alarms, autoscaling; the host's thread) aggregate the buckets of a window.

Each invocation is one sample of every metric, as SageMaker publishes them: ``Invocations`` = 1,
``Invocation4XXErrors`` / ``Invocation5XXErrors`` = 1 or 0 (so their Average is the error rate),
``InvocationsPerInstance`` = 1 / instances, ``ModelLatency`` / ``OverheadLatency`` in microseconds.
A window without invocations has no datapoint (``None``), CloudWatch's missing data.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_HORIZON_SECONDS = 900
METRIC_NAMES = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "InvocationsPerInstance",
                "ModelLatency", "OverheadLatency")
COUNT_METRICS = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors", "InvocationsPerInstance")
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


@dataclass
class _Window:
    """The buckets of one window added up."""

    invocations: int = 0
    client_errors: int = 0
    server_errors: int = 0
    model_sum: float = 0.0
    model_max: float = -math.inf
    model_min: float = math.inf
    overhead_sum: float = 0.0
    overhead_max: float = -math.inf
    overhead_min: float = math.inf


def _count_statistic(events: int, samples: int, statistic: str, scale: float) -> float:
    """A 0/1-per-invocation metric (scaled by ``scale``: 1, or 1/instances) over ``samples`` invocations."""
    if statistic == "Sum":
        return events * scale
    if statistic == "SampleCount":
        return float(samples)
    if statistic == "Average":
        return events * scale / samples
    if statistic == "Maximum":
        return scale if events else 0.0
    return scale if events == samples else 0.0  # Minimum


def _latency_statistic(total: float, high: float, low: float, samples: int, statistic: str) -> float:
    if statistic == "Sum":
        return total
    if statistic == "SampleCount":
        return float(samples)
    if statistic == "Average":
        return total / samples
    return high if statistic == "Maximum" else low


class InvocationMetrics:
    """Per-second buckets of one variant's invocations over the last ``horizon`` seconds."""

    def __init__(self, horizon: int = DEFAULT_HORIZON_SECONDS) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1 second, not {horizon}")
        self.horizon = horizon
        self._lock = threading.Lock()
        self._second = [-1] * horizon
        self._invocations = [0] * horizon
        self._client_errors = [0] * horizon
        self._server_errors = [0] * horizon
        self._model_sum = [0.0] * horizon
        self._model_max = [-math.inf] * horizon
        self._model_min = [math.inf] * horizon
        self._overhead_sum = [0.0] * horizon
        self._overhead_max = [-math.inf] * horizon
        self._overhead_min = [math.inf] * horizon

    def _reset(self, slot: int, second: int) -> None:
        self._second[slot] = second
        self._invocations[slot] = self._client_errors[slot] = self._server_errors[slot] = 0
        self._model_sum[slot] = self._overhead_sum[slot] = 0.0
        self._model_max[slot] = self._overhead_max[slot] = -math.inf
        self._model_min[slot] = self._overhead_min[slot] = math.inf

    def record(self, status: int, model_latency_us: float, overhead_latency_us: float,
               now: float | None = None) -> None:
        """Count one request (the router's hot path: constant time, nothing allocated but numbers)."""
        second = int(time.time() if now is None else now)
        slot = second % self.horizon
        with self._lock:
            if self._second[slot] != second:
                self._reset(slot, second)
            self._invocations[slot] += 1
            if 400 <= status < 500:
                self._client_errors[slot] += 1
            elif status >= 500:
                self._server_errors[slot] += 1
            self._model_sum[slot] += model_latency_us
            if model_latency_us > self._model_max[slot]:
                self._model_max[slot] = model_latency_us
            if model_latency_us < self._model_min[slot]:
                self._model_min[slot] = model_latency_us
            self._overhead_sum[slot] += overhead_latency_us
            if overhead_latency_us > self._overhead_max[slot]:
                self._overhead_max[slot] = overhead_latency_us
            if overhead_latency_us < self._overhead_min[slot]:
                self._overhead_min[slot] = overhead_latency_us

    def _seconds(self, period_seconds: float, now: float | None) -> range:
        """The bucket seconds ``s`` of the window ``(now - period, now]``, at most ``horizon`` of them."""
        end = time.time() if now is None else now
        newest = math.floor(end)
        oldest = max(math.floor(end - period_seconds) + 1, newest - self.horizon + 1)
        return range(oldest, newest + 1)

    def _window(self, seconds: range) -> _Window:
        total = _Window()
        with self._lock:
            for second in seconds:
                slot = second % self.horizon
                if self._second[slot] != second:
                    continue
                total.invocations += self._invocations[slot]
                total.client_errors += self._client_errors[slot]
                total.server_errors += self._server_errors[slot]
                total.model_sum += self._model_sum[slot]
                total.model_max = max(total.model_max, self._model_max[slot])
                total.model_min = min(total.model_min, self._model_min[slot])
                total.overhead_sum += self._overhead_sum[slot]
                total.overhead_max = max(total.overhead_max, self._overhead_max[slot])
                total.overhead_min = min(total.overhead_min, self._overhead_min[slot])
        return total

    def statistic(self, metric_name: str, statistic: str, period_seconds: float, now: float | None = None, *,
                  instances: int = 1) -> float | None:
        """One datapoint: ``statistic`` of ``metric_name`` over ``(now - period, now]``; None if no invocation."""
        if metric_name not in METRIC_NAMES:
            raise ValueError(f"unknown metric {metric_name!r}; one of {', '.join(METRIC_NAMES)}")
        if statistic not in STATISTICS:
            raise ValueError(f"unknown statistic {statistic!r}; one of {', '.join(STATISTICS)}")
        window = self._window(self._seconds(period_seconds, now))
        samples = window.invocations
        if samples == 0:
            return None
        if metric_name == "ModelLatency":
            return _latency_statistic(window.model_sum, window.model_max, window.model_min, samples, statistic)
        if metric_name == "OverheadLatency":
            return _latency_statistic(window.overhead_sum, window.overhead_max, window.overhead_min, samples, statistic)
        events = {"Invocation4XXErrors": window.client_errors,
                  "Invocation5XXErrors": window.server_errors}.get(metric_name, samples)
        scale = 1.0 / max(instances, 1) if metric_name == "InvocationsPerInstance" else 1.0
        return _count_statistic(events, samples, statistic, scale)

    def invocations_per_minute(self, window_seconds: float, now: float | None = None) -> float:
        """Invocations over ``(now - window, now]`` scaled to a minute (0.0 without traffic)."""
        seconds = self._seconds(window_seconds, now)
        if len(seconds) == 0:
            return 0.0
        return self._window(seconds).invocations * 60.0 / len(seconds)

    @classmethod
    def combined(cls, parts: Sequence[InvocationMetrics]) -> InvocationMetrics:
        """A snapshot adding up several variants' buckets (an alarm on a whole endpoint)."""
        horizon = max((p.horizon for p in parts), default=DEFAULT_HORIZON_SECONDS)
        merged = cls(horizon)
        for part in parts:
            with part._lock:
                seconds = [s for s in part._second if s >= 0]
                for second in seconds:
                    merged._merge_bucket(part, second % part.horizon, second)
        return merged

    def _merge_bucket(self, other: InvocationMetrics, source: int, second: int) -> None:
        slot = second % self.horizon
        if self._second[slot] > second:
            return  # an older second than the one this slot holds: past the horizon
        if self._second[slot] != second:
            self._reset(slot, second)
        self._invocations[slot] += other._invocations[source]
        self._client_errors[slot] += other._client_errors[source]
        self._server_errors[slot] += other._server_errors[source]
        self._model_sum[slot] += other._model_sum[source]
        self._model_max[slot] = max(self._model_max[slot], other._model_max[source])
        self._model_min[slot] = min(self._model_min[slot], other._model_min[source])
        self._overhead_sum[slot] += other._overhead_sum[source]
        self._overhead_max[slot] = max(self._overhead_max[slot], other._overhead_max[source])
        self._overhead_min[slot] = min(self._overhead_min[slot], other._overhead_min[source])
