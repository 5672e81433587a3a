"""Printing resources for people: rich tables and JSON with datetimes."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False, soft_wrap=True)


def to_json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if isinstance(obj, datetime):
            return obj.isoformat()
        raise TypeError(type(obj).__name__)

    return json.dumps(value, indent=2, default=default)


def short_time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def jobs_table(summaries: list[dict[str, Any]]) -> Table:
    table = Table(title="Training jobs")
    for column in ("Name", "Status", "Secondary", "Created", "Ended"):
        table.add_column(column, no_wrap=column == "Name")
    colours = {"Completed": "green", "Failed": "red", "Stopped": "yellow", "InProgress": "cyan", "Stopping": "yellow"}
    for job in summaries:
        status = job["TrainingJobStatus"]
        table.add_row(job["TrainingJobName"], f"[{colours.get(status, 'white')}]{status}[/]",
                      job.get("SecondaryStatus", ""), short_time(job.get("CreationTime")),
                      short_time(job.get("TrainingEndTime")))
    return table


def tuning_table(summaries: list[dict[str, Any]]) -> Table:
    table = Table(title="Hyperparameter tuning jobs")
    for column in ("Name", "Status", "Strategy", "Jobs done/max", "Created"):
        table.add_column(column, no_wrap=column == "Name")
    for job in summaries:
        counters = job["TrainingJobStatusCounters"]
        done = sum(counters.values()) - counters["InProgress"]
        table.add_row(job["HyperParameterTuningJobName"], job["HyperParameterTuningJobStatus"], job["Strategy"],
                      f"{done}/{job['ResourceLimits']['MaxNumberOfTrainingJobs']}", short_time(job.get("CreationTime")))
    return table
