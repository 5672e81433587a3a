"""CreateHyperParameterTuningJob: validate a request and fill in SageMaker's defaults.

Every rule that SageMaker checks when the request arrives is checked here, before anything is stored:
the ranges (through the SearchSpace), the strategy's constraints, that the objective metric is one
the training jobs will emit, that no hyperparameter is both static and tuned, that each training
job definition would itself be a valid CreateTrainingJob request, and the warm-start parents.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from forgeml.algorithms.registry import get_algorithm
from forgeml.errors import ValidationException
from forgeml.service.training_requests import normalize_create_request, resolve_program
from forgeml.service.validation import Checker
from forgeml.tuning.space import SearchSpace

if TYPE_CHECKING:
    from forgeml.store.database import Database

TUNING_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}"
STRATEGIES = ("Bayesian", "Random", "Hyperband", "Grid")
EPOCH_NAMES = ("epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs")
MAX_RUNTIME_RANGE = (120, 15768000)
DEFAULT_MAX_JOBS = 10  # SageMaker requires the value except for Grid; forgeml fills in a small default


@dataclass
class Definition:
    """One training job definition with its own search space and objective."""

    name: str | None
    definition: dict[str, Any]
    space: SearchSpace
    objective: dict[str, str]


def normalize_tuning_request(request: dict[str, Any], db: Database) -> tuple[dict[str, Any], list[Definition]]:
    check = Checker()
    if not isinstance(request, dict):
        raise ValidationException("1 validation error detected: the request must be a JSON object")
    check.unknown_members(request, "", ("HyperParameterTuningJobName", "HyperParameterTuningJobConfig",
                                        "TrainingJobDefinition", "TrainingJobDefinitions", "WarmStartConfig",
                                        "Tags", "Autotune"))
    check.string(request.get("HyperParameterTuningJobName"), "HyperParameterTuningJobName", required=True,
                 min_len=1, max_len=32, pattern=TUNING_NAME_PATTERN)
    config = dict(check.structure(request.get("HyperParameterTuningJobConfig"), "HyperParameterTuningJobConfig",
                                  required=True))
    strategy = config.get("Strategy")
    check.enum(strategy, "HyperParameterTuningJobConfig.Strategy", STRATEGIES, required=True)
    limits = dict(check.structure(config.get("ResourceLimits"), "HyperParameterTuningJobConfig.ResourceLimits",
                                  required=True))
    check.integer(limits.get("MaxNumberOfTrainingJobs"), "HyperParameterTuningJobConfig.ResourceLimits.MaxNumberOfTrainingJobs",
                  minimum=1)
    check.integer(limits.get("MaxParallelTrainingJobs"), "HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs",
                  required=True, minimum=1, maximum=100)
    check.integer(limits.get("MaxRuntimeInSeconds"), "HyperParameterTuningJobConfig.ResourceLimits.MaxRuntimeInSeconds",
                  minimum=MAX_RUNTIME_RANGE[0], maximum=MAX_RUNTIME_RANGE[1])
    check.enum(config.get("TrainingJobEarlyStoppingType"), "HyperParameterTuningJobConfig.TrainingJobEarlyStoppingType",
               ("Off", "Auto"))
    check.integer(config.get("RandomSeed"), "HyperParameterTuningJobConfig.RandomSeed", minimum=0)
    objective = config.get("HyperParameterTuningJobObjective")
    if objective is not None:
        objective = dict(check.structure(objective, "HyperParameterTuningJobConfig.HyperParameterTuningJobObjective"))
        check.enum(objective.get("Type"), "HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.Type",
                   ("Maximize", "Minimize"), required=True)
        check.string(objective.get("MetricName"), "HyperParameterTuningJobConfig.HyperParameterTuningJobObjective.MetricName",
                     required=True, min_len=1, max_len=255)
    criteria = config.get("TuningJobCompletionCriteria")
    if criteria is not None:
        criteria = check.structure(criteria, "HyperParameterTuningJobConfig.TuningJobCompletionCriteria")
        not_improving = criteria.get("BestObjectiveNotImproving")
        if not_improving is not None:
            check.integer(check.structure(not_improving, "x").get("MaxNumberOfTrainingJobsNotImproving"),
                          "HyperParameterTuningJobConfig.TuningJobCompletionCriteria.BestObjectiveNotImproving."
                          "MaxNumberOfTrainingJobsNotImproving", required=True, minimum=3)
        convergence = criteria.get("ConvergenceDetected")
        if convergence is not None:
            check.enum(check.structure(convergence, "x").get("CompleteOnConvergence"),
                       "HyperParameterTuningJobConfig.TuningJobCompletionCriteria.ConvergenceDetected.CompleteOnConvergence",
                       ("Disabled", "Enabled"))
    single, several = request.get("TrainingJobDefinition"), request.get("TrainingJobDefinitions")
    if (single is None) == (several is None):
        check.fail(None, "TrainingJobDefinition", "be given, or TrainingJobDefinitions instead, but not both")
    raw_definitions = [single] if single is not None else check.items(several, "TrainingJobDefinitions",
                                                                      min_items=1, max_items=10)
    check.raise_if_any()

    config.setdefault("TrainingJobEarlyStoppingType", "Off")
    if strategy == "Hyperband" and config["TrainingJobEarlyStoppingType"] != "Off":
        raise _error(config["TrainingJobEarlyStoppingType"], "hyperParameterTuningJobConfig.trainingJobEarlyStoppingType",
                     "be Off when Strategy is Hyperband (Hyperband stops trials itself)")
    definitions = [_definition(d, index, config, len(raw_definitions) > 1) for index, d in enumerate(raw_definitions)]
    if strategy == "Grid":
        _check_grid(definitions, limits)
    limits.setdefault("MaxNumberOfTrainingJobs", DEFAULT_MAX_JOBS)
    if limits["MaxParallelTrainingJobs"] > limits["MaxNumberOfTrainingJobs"]:
        raise _error(limits["MaxParallelTrainingJobs"], "hyperParameterTuningJobConfig.resourceLimits.maxParallelTrainingJobs",
                     f"be less than or equal to MaxNumberOfTrainingJobs ({limits['MaxNumberOfTrainingJobs']})")
    if strategy == "Hyperband":
        _hyperband_resources(config, definitions)
    config["ResourceLimits"] = limits
    normalized = {
        "HyperParameterTuningJobName": request["HyperParameterTuningJobName"],
        "HyperParameterTuningJobConfig": config,
    }
    if single is not None:
        normalized["TrainingJobDefinition"] = definitions[0].definition
    else:
        normalized["TrainingJobDefinitions"] = [d.definition for d in definitions]
    if request.get("WarmStartConfig") is not None:
        normalized["WarmStartConfig"] = _check_warm_start(request["WarmStartConfig"], definitions, db)
    if request.get("Tags"):
        normalized["Tags"] = request["Tags"]
    return normalized, definitions


def _error(value: Any, path: str, rule: str) -> ValidationException:
    return ValidationException(f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: "
                               f"Member must {rule}")


def _definition(raw: Any, index: int, config: dict[str, Any], several: bool) -> Definition:
    if not isinstance(raw, dict):
        raise _error(raw, f"trainingJobDefinitions.{index + 1}", "be a structure")
    definition = copy.deepcopy(raw)
    name = definition.get("DefinitionName")
    if several and not name:
        raise _error(None, f"trainingJobDefinitions.{index + 1}.definitionName", "be set when there are several definitions")
    ranges = definition.get("HyperParameterRanges") or config.get("ParameterRanges")
    if ranges is None:
        raise _error(None, "hyperParameterTuningJobConfig.parameterRanges", "not be null")
    space = SearchSpace.from_parameter_ranges(ranges)
    objective = definition.get("TuningObjective") or config.get("HyperParameterTuningJobObjective")
    if not objective:
        raise _error(None, "hyperParameterTuningJobConfig.hyperParameterTuningJobObjective", "not be null")
    static = dict(definition.get("StaticHyperParameters") or {})
    both = sorted(set(static) & set(space.names))
    if both:
        raise _error(", ".join(both), "trainingJobDefinition.staticHyperParameters",
                     "not name a hyperparameter that is also tuned in ParameterRanges")
    env = definition.get("Environment") or {}
    if len(env) > 48:
        raise _error(f"{len(env)} entries", "trainingJobDefinition.environment", "have length less than or equal to 48")
    # The definition must be a valid training job at both ends of every range.
    for corner in _corners(space):
        probe = {
            "TrainingJobName": "tuning-probe",
            "HyperParameters": {**static, **corner, "_tuning_objective_metric": objective["MetricName"]},
            **{k: v for k, v in definition.items() if k in _TRAINING_MEMBERS},
        }
        if "ResourceConfig" not in probe and definition.get("HyperParameterTuningResourceConfig") is not None:
            probe["ResourceConfig"] = trial_resource_config(definition)
        try:
            normalized, _ = normalize_create_request(probe)
        except ValidationException as exc:
            raise ValidationException(f"TrainingJobDefinition: {exc.message}") from None
    spec = normalized["AlgorithmSpecification"]
    _check_objective_metric(objective["MetricName"], spec, static)
    definition.update({k: normalized[k] for k in ("AlgorithmSpecification", "OutputDataConfig", "StoppingCondition")})
    if "ResourceConfig" in definition:
        definition["ResourceConfig"] = normalized["ResourceConfig"]
    if "InputDataConfig" in definition:
        definition["InputDataConfig"] = normalized["InputDataConfig"]
    definition["StaticHyperParameters"] = static
    return Definition(name, definition, space, dict(objective))


def trial_resource_config(definition: dict[str, Any]) -> dict[str, Any]:
    """A trial's ResourceConfig: the definition's own, or one from its HyperParameterTuningResourceConfig.

    The sagemaker SDK sends the latter (InstanceType/InstanceCount/VolumeSizeInGB, or InstanceConfigs,
    of which the first is used: every trial here runs on this machine).
    """
    if definition.get("ResourceConfig") is not None:
        return dict(definition["ResourceConfig"])
    tuning = dict(definition.get("HyperParameterTuningResourceConfig") or {})
    first = (tuning.get("InstanceConfigs") or [{}])[0]
    resource = {key: tuning.get(key, first.get(key)) for key in ("InstanceType", "InstanceCount", "VolumeSizeInGB")}
    if tuning.get("VolumeKmsKeyId"):
        resource["VolumeKmsKeyId"] = tuning["VolumeKmsKeyId"]
    return {key: value for key, value in resource.items() if value is not None}


_TRAINING_MEMBERS = ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
                     "StoppingCondition", "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                     "EnableManagedSpotTraining", "CheckpointConfig", "Environment", "RetryStrategy")


def _corners(space: SearchSpace) -> list[dict[str, str]]:
    """Two assignments that together touch both ends of every numeric range and every category."""
    low: dict[str, str] = {}
    high: dict[str, str] = {}
    for item in space.ranges:
        if item.kind == "Categorical":
            low[item.name], high[item.name] = item.values[0], item.values[-1]
        else:
            low[item.name] = _number(item.min_value, item.kind)
            high[item.name] = _number(item.max_value, item.kind)
    return [low, high]


def _number(value: float, kind: str) -> str:
    return str(int(round(value))) if kind == "Integer" else repr(float(value))


def _check_objective_metric(metric: str, spec: dict[str, Any], static: dict[str, str]) -> None:
    names = [d["Name"] for d in spec.get("MetricDefinitions", [])]
    if metric in names:
        return
    program = resolve_program(spec, static)
    hint = ""
    if program.kind == "builtin":
        algorithm = get_algorithm(program.algorithm or "")
        hint = f"; {algorithm.name} emits: {', '.join(algorithm.metric_names())}"
    else:
        hint = "; add a MetricDefinitions entry whose regex extracts it from the job's log"
    raise _error(metric, "hyperParameterTuningJobConfig.hyperParameterTuningJobObjective.metricName",
                 f"be a metric the training jobs emit{hint}")


def _check_grid(definitions: list[Definition], limits: dict[str, Any]) -> None:
    size = 0
    for definition in definitions:
        numeric = [r.name for r in definition.space.ranges if r.kind != "Categorical"]
        if numeric:
            raise _error(", ".join(numeric), "hyperParameterTuningJobConfig.parameterRanges",
                         "contain only CategoricalParameterRanges when Strategy is Grid")
        size += definition.space.grid_size()
    given = limits.get("MaxNumberOfTrainingJobs")
    if given is not None and given != size:
        raise _error(given, "hyperParameterTuningJobConfig.resourceLimits.maxNumberOfTrainingJobs",
                     f"equal the number of grid combinations ({size}) when Strategy is Grid, or be omitted")
    limits["MaxNumberOfTrainingJobs"] = size


def _hyperband_resources(config: dict[str, Any], definitions: list[Definition]) -> None:
    strategy_config = config.setdefault("StrategyConfig", {}).setdefault("HyperbandStrategyConfig", {})
    static = definitions[0].definition.get("StaticHyperParameters", {})
    resource_name = next((n for n in EPOCH_NAMES if n in static), None)
    if "MaxResource" not in strategy_config:
        if resource_name is None:
            raise _error(None, "hyperParameterTuningJobConfig.strategyConfig.hyperbandStrategyConfig.maxResource",
                         f"be set, or a static hyperparameter named one of {', '.join(EPOCH_NAMES)} must give it")
        strategy_config["MaxResource"] = int(float(static[resource_name]))
    strategy_config.setdefault("MinResource", 1)
    low, high = strategy_config["MinResource"], strategy_config["MaxResource"]
    if not (isinstance(low, int) and isinstance(high, int) and 1 <= low < high <= 20000):
        raise _error(f"{low}..{high}", "hyperParameterTuningJobConfig.strategyConfig.hyperbandStrategyConfig",
                     "have 1 <= MinResource < MaxResource <= 20000")


def _check_warm_start(raw: Any, definitions: list[Definition], db: Database) -> dict[str, Any]:
    from forgeml.store import tuning_jobs as repo

    check = Checker()
    config = check.structure(raw, "WarmStartConfig")
    check.enum(config.get("WarmStartType"), "WarmStartConfig.WarmStartType",
               ("IdenticalDataAndAlgorithm", "TransferLearning"), required=True)
    parents = check.items(config.get("ParentHyperParameterTuningJobs"), "WarmStartConfig.ParentHyperParameterTuningJobs",
                          required=True, min_items=1, max_items=5)
    check.raise_if_any()
    for index, parent in enumerate(parents):
        name = parent.get("HyperParameterTuningJobName") if isinstance(parent, dict) else None
        row = repo.get_tuning_job(db, name) if name else None
        path = f"warmStartConfig.parentHyperParameterTuningJobs.{index + 1}.hyperParameterTuningJobName"
        if row is None:
            raise _error(name, path, "name an existing hyperparameter tuning job")
        if row["status"] not in repo.TERMINAL:
            raise _error(name, path, f"name a tuning job that has ended (it is {row['status']})")
        if config["WarmStartType"] == "IdenticalDataAndAlgorithm":
            parent_request = row["request"]
            parent_config = parent_request["HyperParameterTuningJobConfig"]
            parent_definition = parent_request.get("TrainingJobDefinition") or parent_request["TrainingJobDefinitions"][0]
            parent_ranges = parent_definition.get("HyperParameterRanges") or parent_config.get("ParameterRanges")
            parent_space = SearchSpace.from_parameter_ranges(parent_ranges)
            mine = definitions[0].space
            if {(r.name, r.kind) for r in parent_space.ranges} != {(r.name, r.kind) for r in mine.ranges}:
                raise _error(name, path, "have been tuned over the same hyperparameters with the same types "
                                         "(use WarmStartType TransferLearning to change them)")
            parent_objective = parent_definition.get("TuningObjective") or parent_config["HyperParameterTuningJobObjective"]
            if parent_objective["MetricName"] != definitions[0].objective["MetricName"]:
                raise _error(name, path, "have the same objective metric")
    return dict(config)
