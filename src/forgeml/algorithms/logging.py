"""Log lines in the shape SageMaker's first-party algorithms print them.

Users' metric regexes and SageMaker's own metric definitions match these lines, so the wording
matters: ``#quality_metric: host=algo-1, epoch=3, validation multiclass_accuracy <score>=0.94``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, TextIO


class AlgorithmLogger:
    """Prints SageMaker-style algorithm log lines to the job's stdout (one line per call)."""

    def __init__(self, host: str = "algo-1", stream: TextIO | None = None, algorithm: str = "") -> None:
        self.host = host
        self.stream = stream or sys.stdout
        self.algorithm = algorithm

    def _emit(self, level: str, message: str) -> None:
        stamp = time.strftime("%m/%d/%Y %H:%M:%S", time.gmtime())
        self.stream.write(f"[{stamp} {level} {threading.get_ident() % 10**15}] {message}\n")
        self.stream.flush()

    def info(self, message: str) -> None:
        self._emit("INFO", message)

    def warning(self, message: str) -> None:
        self._emit("WARNING", message)

    def error(self, message: str) -> None:
        self._emit("ERROR", message)

    def configuration(self, defaults: dict[str, Any], provided: dict[str, Any], final: dict[str, Any]) -> None:
        """The three dictionaries first-party containers log at start-up."""
        self.info(f"Reading default configuration from forgeml defaults: {_jsonable(defaults)}")
        self.info(f"Merging with provided configuration from hyperparameters.json: {_jsonable(provided)}")
        self.info(f"Final configuration: {_jsonable(final)}")

    def quality_metric(
        self,
        channel: str,
        metric: str,
        value: float,
        *,
        epoch: int | None = None,
        batch: int | None = None,
        maximize: bool = False,
    ) -> None:
        """``#quality_metric: host=algo-1[, epoch=N][, batch=M] <channel> <metric> <loss|score>=v``."""
        # SageMaker's shapes: "host=algo-1, epoch=0, train ..." and "host=algo-1, epoch=0, batch=5 train ..."
        where = f"host={self.host}"
        if epoch is not None:
            where += f", epoch={epoch}"
        where += f", batch={batch} " if batch is not None else ", "
        tag = "<score>" if maximize else "<loss>"
        self.info(f"#quality_metric: {where}{channel} {metric} {tag}={float(value)!r}")

    def score(self, channel: str, metric: str, value: float) -> None:
        """``#validation_score (algo-1) : ('mse', 0.0133)``."""
        self.info(f"#{channel}_score ({self.host}) : ('{metric}', {float(value)!r})")

    def progress(self, percent: float) -> None:
        self.info(f"#progress_metric: host={self.host}, completed {percent:g} % of epochs")

    def throughput(self, records_per_second: float, channel: str = "train") -> None:
        self.info(f"#throughput_metric: host={self.host}, {channel} throughput={records_per_second!r} records/second")

    def metrics(self, metrics: dict[str, float], **dimensions: Any) -> None:
        """A ``#metrics`` JSON line, as the first-party containers emit per epoch."""
        now = time.time()
        payload = {
            "StartTime": now,
            "EndTime": now,
            "Dimensions": {"Host": self.host, "Operation": "training", "Algorithm": self.algorithm, **dimensions},
            "Metrics": {k: {"count": 1, "max": v, "sum": v, "min": v} for k, v in metrics.items()},
        }
        self.info("#metrics " + json.dumps(payload))


def progress_metric_definitions() -> tuple[dict[str, str], dict[str, str]]:
    """SageMaker's ``train:progress`` and ``train:throughput`` definitions, which every MXNet-based
    first-party algorithm has; they match the lines ``progress`` and ``throughput`` print."""
    return (
        {"Name": "train:progress", "Regex": r"#progress_metric: host=\S+, completed (\S+) %"},
        {
            "Name": "train:throughput",
            "Regex": r"#throughput_metric: host=\S+, train throughput=(\S+) records/second",
        },
    )


def _jsonable(values: dict[str, Any]) -> str:
    return json.dumps(values, default=str)


def num_threads(default: int | None = None) -> int:
    """Threads an algorithm may use: SM_NUM_CPUS when the platform set it."""
    raw = os.environ.get("SM_NUM_CPUS")
    if raw and raw.isdigit():
        return max(1, int(raw))
    return default or os.cpu_count() or 1
