"""Tuning and training results as pandas DataFrames, and the tuning charts.

``HyperparameterTuningJobAnalytics(name).dataframe()`` has sagemaker's columns: one per tuned
hyperparameter, then TrainingJobName, TrainingJobStatus, FinalObjectiveValue, TrainingStartTime,
TrainingEndTime, TrainingElapsedTimeSeconds (and TrainingJobDefinitionName with several definitions).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from forgeml.sdk.session import Session


def _session(session: Session | None) -> Session:
    from forgeml.sdk.session import Session

    return session or Session()


class HyperparameterTuningJobAnalytics:
    def __init__(self, hyperparameter_tuning_job_name: str, sagemaker_session: Session | None = None) -> None:
        self.name = hyperparameter_tuning_job_name
        self._session = _session(sagemaker_session)
        self._description: dict[str, Any] | None = None
        self._dataframe: pd.DataFrame | None = None

    @property
    def _service(self) -> Any:
        return self._session.platform.tuning_jobs

    def description(self, force_refresh: bool = False) -> dict[str, Any]:
        if force_refresh or self._description is None:
            self._description = self._service.describe_hyper_parameter_tuning_job(self.name)
        return self._description

    def training_job_summaries(self, force_refresh: bool = False) -> list[dict[str, Any]]:
        return list(self._service.trial_summaries(self.name))

    @property
    def tuning_ranges(self) -> dict[str, Any]:
        description = self.description()
        ranges = description["HyperParameterTuningJobConfig"].get("ParameterRanges", {})
        return {item["Name"]: item for group in ranges.values() for item in group}

    def dataframe(self, force_refresh: bool = False) -> pd.DataFrame:
        if force_refresh or self._dataframe is None:
            rows = []
            for summary in self.training_job_summaries():
                row: dict[str, Any] = {}
                for name, value in summary["TunedHyperParameters"].items():
                    try:
                        row[name] = float(value)
                    except ValueError:
                        row[name] = value
                row["TrainingJobName"] = summary["TrainingJobName"]
                row["TrainingJobStatus"] = summary["TrainingJobStatus"]
                metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric")
                row["FinalObjectiveValue"] = metric["Value"] if metric else None
                start, end = summary.get("TrainingStartTime"), summary.get("TrainingEndTime")
                row["TrainingStartTime"], row["TrainingEndTime"] = start, end
                if start and end:
                    row["TrainingElapsedTimeSeconds"] = (end - start).total_seconds()
                if summary.get("TrainingJobDefinitionName"):
                    row["TrainingJobDefinitionName"] = summary["TrainingJobDefinitionName"]
                rows.append(row)
            self._dataframe = pd.DataFrame(rows)
        return self._dataframe

    def plot(self, path: str | Path, kind: str = "objective") -> Path:
        """Write a chart: ``objective`` (objective over time, best so far) or ``hyperparameters``.

        ``.html`` gets a self-contained SVG page; ``.png`` needs matplotlib.
        """
        from forgeml.sdk.charts import hyperparameter_chart, objective_chart

        description = self.description(force_refresh=True)
        objective = description["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
        frame = self.dataframe(force_refresh=True)
        chart = objective_chart if kind == "objective" else hyperparameter_chart
        return chart(frame, objective["MetricName"], objective["Type"] == "Minimize", Path(path), title=self.name)


class TrainingJobAnalytics:
    """A training job's metric series: columns timestamp (seconds since start), metric_name, value."""

    def __init__(self, training_job_name: str, metric_names: list[str] | None = None,
                 sagemaker_session: Session | None = None, **_: Any) -> None:
        self.name = training_job_name
        self.metric_names = metric_names
        self._session = _session(sagemaker_session)

    def dataframe(self, force_refresh: bool = False) -> pd.DataFrame:
        service = self._session.platform.training_jobs
        description = service.describe_training_job(self.name)
        start = description.get("TrainingStartTime") or description["CreationTime"]
        rows = [
            {"timestamp": (p["Timestamp"] - start).total_seconds(), "metric_name": p["MetricName"], "value": p["Value"]}
            for p in service.metric_series(self.name)
            if self.metric_names is None or p["MetricName"] in self.metric_names
        ]
        return pd.DataFrame(rows, columns=["timestamp", "metric_name", "value"])
