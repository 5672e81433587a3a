"""``HyperparameterTuner``: sagemaker.tuner's API over forgeml's tuning jobs."""

from __future__ import annotations

import sys
import time
from enum import Enum
from typing import Any, TextIO

from forgeml.sdk.analytics import HyperparameterTuningJobAnalytics
from forgeml.sdk.estimator import Estimator
from forgeml.sdk.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter, ParameterRange
from forgeml.service.names import base_name_from_image

__all__ = ["CategoricalParameter", "ContinuousParameter", "HyperparameterTuner", "IntegerParameter",
           "WarmStartConfig", "WarmStartTypes"]

TERMINAL = ("Completed", "Failed", "Stopped")


class WarmStartTypes(Enum):
    IDENTICAL_DATA_AND_ALGORITHM = "IdenticalDataAndAlgorithm"
    TRANSFER_LEARNING = "TransferLearning"


class WarmStartConfig:
    def __init__(self, warm_start_type: WarmStartTypes | str, parents: set[str] | list[str]) -> None:
        self.type = WarmStartTypes(warm_start_type) if isinstance(warm_start_type, str) else warm_start_type
        self.parents = set(parents)

    def to_input_req(self) -> dict[str, Any]:
        return {"WarmStartType": self.type.value,
                "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p} for p in sorted(self.parents)]}


def tuning_job_name(base: str) -> str:
    """``<base>-<yymmdd-HHMMSS-mmm>`` within 32 characters.

    sagemaker's SDK uses minutes only; forgeml's tuning jobs finish in seconds, so two can start in
    the same minute, and the name carries seconds and milliseconds to keep names unique.
    """
    now = time.time()
    suffix = time.strftime("%y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    return f"{base[: 32 - len(suffix) - 1].rstrip('-')}-{suffix}"


class HyperparameterTuner:
    def __init__(
        self,
        estimator: Estimator,
        objective_metric_name: str,
        hyperparameter_ranges: dict[str, ParameterRange],
        metric_definitions: list[dict[str, str]] | None = None,
        strategy: str = "Bayesian",
        objective_type: str = "Maximize",
        max_jobs: int | None = None,
        max_parallel_jobs: int = 1,
        max_runtime_in_seconds: int | None = None,
        tags: list[dict[str, str]] | None = None,
        base_tuning_job_name: str | None = None,
        warm_start_config: WarmStartConfig | None = None,
        strategy_config: dict[str, Any] | None = None,
        completion_criteria_config: dict[str, Any] | None = None,
        early_stopping_type: str = "Off",
        random_seed: int | None = None,
        estimator_name: str | None = None,
        hyperparameters_to_keep_static: list[str] | None = None,
    ) -> None:
        self.estimator = estimator
        self.objective_metric_name = objective_metric_name
        self._hyperparameter_ranges = dict(hyperparameter_ranges)
        self.metric_definitions = metric_definitions
        self.strategy = strategy
        self.objective_type = objective_type
        # sagemaker's default: one job, except Grid, where the grid decides
        self.max_jobs = max_jobs if max_jobs is not None or strategy == "Grid" else 1
        self.max_parallel_jobs = max_parallel_jobs
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.tags = tags
        self.base_tuning_job_name = base_tuning_job_name
        self.warm_start_config = warm_start_config
        self.strategy_config = strategy_config
        self.completion_criteria_config = completion_criteria_config
        self.early_stopping_type = early_stopping_type
        self.random_seed = random_seed
        self.sagemaker_session = estimator.sagemaker_session
        self.latest_tuning_job: str | None = None
        self._current_job_name: str | None = None

    def hyperparameter_ranges(self) -> dict[str, list[dict[str, Any]]]:
        ranges: dict[str, list[dict[str, Any]]] = {"IntegerParameterRanges": [], "ContinuousParameterRanges": [],
                                                   "CategoricalParameterRanges": []}
        script_mode = bool(self.estimator.entry_point)
        for name, parameter in self._hyperparameter_ranges.items():
            if isinstance(parameter, CategoricalParameter) and script_mode:
                ranges[parameter.range_key].append(parameter.as_json_range(name))
            else:
                ranges[parameter.range_key].append(parameter.as_tuning_range(name))
        return ranges

    def tuning_request(self, inputs: Any = None, job_name: str | None = None) -> dict[str, Any]:
        """The CreateHyperParameterTuningJob request ``fit`` sends."""
        base = self.base_tuning_job_name or self.estimator.base_job_name or base_name_from_image(
            self.estimator.image_uri or "forgeml-script")
        name = job_name or tuning_job_name(base)
        training = self.estimator.training_request(inputs, job_name=name)
        static = {k: v for k, v in training.pop("HyperParameters").items() if k not in self._hyperparameter_ranges}
        training.pop("TrainingJobName")
        training.pop("Tags", None)
        spec = training["AlgorithmSpecification"]
        if self.metric_definitions:
            spec["MetricDefinitions"] = self.metric_definitions
        limits: dict[str, Any] = {"MaxParallelTrainingJobs": self.max_parallel_jobs}
        if self.max_jobs is not None:
            limits["MaxNumberOfTrainingJobs"] = self.max_jobs
        if self.max_runtime_in_seconds is not None:
            limits["MaxRuntimeInSeconds"] = self.max_runtime_in_seconds
        config: dict[str, Any] = {
            "Strategy": self.strategy,
            "HyperParameterTuningJobObjective": {"Type": self.objective_type, "MetricName": self.objective_metric_name},
            "ResourceLimits": limits,
            "ParameterRanges": self.hyperparameter_ranges(),
            "TrainingJobEarlyStoppingType": self.early_stopping_type,
        }
        if self.strategy_config:
            config["StrategyConfig"] = self.strategy_config
        if self.completion_criteria_config:
            config["TuningJobCompletionCriteria"] = self.completion_criteria_config
        if self.random_seed is not None:
            config["RandomSeed"] = self.random_seed
        request: dict[str, Any] = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobConfig": config,
            "TrainingJobDefinition": {**training, "StaticHyperParameters": static},
        }
        if self.warm_start_config is not None:
            request["WarmStartConfig"] = self.warm_start_config.to_input_req()
        if self.tags:
            request["Tags"] = self.tags
        return request

    def fit(self, inputs: Any = None, job_name: str | None = None, wait: bool = True, **_kwargs: Any) -> None:
        request = self.tuning_request(inputs, job_name)
        self.sagemaker_session.platform.tuning_jobs.create_hyper_parameter_tuning_job(request)
        self.latest_tuning_job = self._current_job_name = request["HyperParameterTuningJobName"]
        if wait:
            self.wait()

    def _require_job(self) -> str:
        if self._current_job_name is None:
            raise ValueError("No tuning job available: call fit() first")
        return self._current_job_name

    def describe(self) -> dict[str, Any]:
        return self.sagemaker_session.platform.tuning_jobs.describe_hyper_parameter_tuning_job(self._require_job())

    def wait(self, stream: TextIO | None = None) -> dict[str, Any]:
        """Block until the tuning job ends, printing a line whenever its progress changes."""
        out = stream or sys.stdout
        last: tuple[Any, ...] = ()
        while True:
            description = self.describe()
            key = progress_key(description)
            if key != last:
                out.write(progress_line(description) + "\n")
                out.flush()
                last = key
            if description["HyperParameterTuningJobStatus"] in TERMINAL:
                return description
            time.sleep(self.sagemaker_session.poll_interval * 2)

    def stop_tuning_job(self) -> None:
        self.sagemaker_session.platform.tuning_jobs.stop_hyper_parameter_tuning_job(self._require_job())

    def best_training_job(self) -> str:
        best = self.describe().get("BestTrainingJob")
        if best is None:
            raise ValueError(f"No best training job available for tuning job {self._require_job()}")
        return str(best["TrainingJobName"])

    def best_estimator(self) -> Estimator:
        """The best training job as an estimator of the tuned estimator's class (LinearLearner, ...)."""
        estimator = type(self.estimator).attach(self.best_training_job(), sagemaker_session=self.sagemaker_session)
        estimator._hyperparameters.pop("_tuning_objective_metric", None)
        return estimator

    def deploy(self, initial_instance_count: int, instance_type: str, **kwargs: Any) -> Any:
        """Deploy the best training job's model (``best_estimator().deploy(...)``); the predictor."""
        return self.best_estimator().deploy(initial_instance_count, instance_type, **kwargs)

    def analytics(self) -> HyperparameterTuningJobAnalytics:
        return HyperparameterTuningJobAnalytics(self._require_job(), sagemaker_session=self.sagemaker_session)

    @classmethod
    def attach(cls, tuning_job_name: str, sagemaker_session: Any = None) -> HyperparameterTuner:
        from forgeml.sdk.session import Session

        session = sagemaker_session or Session()
        description = session.platform.tuning_jobs.describe_hyper_parameter_tuning_job(tuning_job_name)
        config = description["HyperParameterTuningJobConfig"]
        definition = description.get("TrainingJobDefinition") or description["TrainingJobDefinitions"][0]
        estimator = Estimator(image_uri=definition["AlgorithmSpecification"].get("TrainingImage"),
                              role=definition["RoleArn"], sagemaker_session=session,
                              hyperparameters=dict(definition.get("StaticHyperParameters", {})))
        ranges: dict[str, ParameterRange] = {}
        for item in config.get("ParameterRanges", {}).get("IntegerParameterRanges", []):
            ranges[item["Name"]] = IntegerParameter(int(item["MinValue"]), int(item["MaxValue"]), item.get("ScalingType", "Auto"))
        for item in config.get("ParameterRanges", {}).get("ContinuousParameterRanges", []):
            ranges[item["Name"]] = ContinuousParameter(float(item["MinValue"]), float(item["MaxValue"]),
                                                       item.get("ScalingType", "Auto"))
        for item in config.get("ParameterRanges", {}).get("CategoricalParameterRanges", []):
            ranges[item["Name"]] = CategoricalParameter(item["Values"])
        objective = config["HyperParameterTuningJobObjective"]
        tuner = cls(estimator, objective["MetricName"], ranges, strategy=config["Strategy"],
                    objective_type=objective["Type"], max_jobs=config["ResourceLimits"].get("MaxNumberOfTrainingJobs"),
                    max_parallel_jobs=config["ResourceLimits"]["MaxParallelTrainingJobs"])
        tuner.latest_tuning_job = tuner._current_job_name = tuning_job_name
        return tuner


def progress_key(description: dict[str, Any]) -> tuple[Any, ...]:
    """What a person watching cares about: status, finished jobs, the best job."""
    counters = description["TrainingJobStatusCounters"]
    best = description.get("BestTrainingJob", {}).get("TrainingJobName")
    return description["HyperParameterTuningJobStatus"], sum(counters.values()) - counters["InProgress"], best


def progress_line(description: dict[str, Any]) -> str:
    counters = description["TrainingJobStatusCounters"]
    total = sum(counters.values())
    done = total - counters["InProgress"]
    stamp = time.strftime("%H:%M:%S")
    line = (f"[{stamp}] {description['HyperParameterTuningJobName']} {description['HyperParameterTuningJobStatus']}: "
            f"{done}/{description['HyperParameterTuningJobConfig']['ResourceLimits']['MaxNumberOfTrainingJobs']} "
            f"training jobs done ({counters['InProgress']} running, {counters['Completed']} completed, "
            f"{counters['Stopped']} stopped, {counters['NonRetryableError']} failed)")
    best = description.get("BestTrainingJob")
    if best:
        metric = best["FinalHyperParameterTuningJobObjectiveMetric"]
        line += f"; best {metric['MetricName']}={metric['Value']:.6g} ({best['TrainingJobName']})"
    return line
