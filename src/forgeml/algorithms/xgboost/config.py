"""From validated hyperparameters to what ``xgboost.train`` is given, the way the container does it.

Pure Python (no xgboost import), so the translation is testable on its own: which keys reach
XGBoost, which are container-side options (rounds, early stopping, custom metrics, k-fold), and
which are accepted only because they mean nothing on one host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from forgeml.algorithms.xgboost import hyperparameters as hp
from forgeml.algorithms.xgboost.metrics import CUSTOM_METRICS, maximize

#: parameters handed to XGBoost unchanged
PASS_THROUGH = (
    "objective", "num_class", "booster", "verbosity", "eta", "gamma", "max_depth", "min_child_weight",
    "max_delta_step", "subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode", "lambda",
    "alpha", "scale_pos_weight", "refresh_leaf", "process_type", "grow_policy", "max_leaves", "max_bin",
    "sample_type", "normalize_type", "rate_drop", "one_drop", "skip_drop", "tweedie_variance_power",
    "base_score", "seed", "num_parallel_tree", "aft_loss_distribution", "aft_loss_distribution_scale",
    "sampling_method",
)

# Accepted but not passed on, because on a single host they cannot change the result:
#   dsplit                  row/column split across Rabit workers; forgeml trains on one host
#   deterministic_histogram XGBoost >= 2 always builds deterministic GPU histograms
#   prob_buffer_row         GPU external-memory buffer sizing; forgeml keeps data in memory
#   predictor               auto/cpu_predictor: XGBoost >= 2 predicts where it trained
#                           (gpu_predictor selects the GPU, see ``wants_gpu``)
#   lambda_bias             only 0 is accepted (hyperparameters._check_unsupported)

#: XGBoost 1.7's default metric where XGBoost 3 changed it, so lines keep SageMaker's names
#: (``validation-map``, not ``validation-map@32``)
LEGACY_DEFAULT_METRIC = {
    "reg:gamma": "gamma-nloglik",
    "rank:pairwise": "map",
    "rank:ndcg": "ndcg",
    "rank:map": "map",
}

CLASSIFICATION_PREFIXES = ("binary:", "multi:")


@dataclass
class TrainingPlan:
    """Everything ``train`` needs besides the data."""

    params: dict[str, Any]
    num_round: int
    objective: str
    num_class: int | None
    native_metrics: list[str]
    custom_metrics: list[str]
    early_stopping_rounds: int | None = None
    #: None: XGBoost's own rule (last metric of the validation data)
    early_stopping_metric: str | None = None
    csv_weights: bool = False
    kfold: int | None = None
    num_cv_round: int = 1
    wants_gpu: bool = False
    save_model_on_termination: bool = False

    @property
    def booster(self) -> str:
        return str(self.params.get("booster", "gbtree"))

    @property
    def is_classification(self) -> bool:
        return self.objective.startswith(CLASSIFICATION_PREFIXES)

    def early_stopping_maximize(self) -> bool | None:
        """Direction from the container's maximize list; None lets XGBoost decide by name."""
        return None if self.early_stopping_metric is None else maximize(self.early_stopping_metric)

    def quantile_ready(self) -> bool:
        """Whether a QuantileDMatrix can stand in for a DMatrix (hist-based tree growth only)."""
        tree_method = self.params.get("tree_method", "auto")
        return (
            self.booster in ("gbtree", "dart")
            and tree_method in ("auto", "hist")
            and "updater" not in self.params
            and self.params.get("process_type", "default") == "default"
        )


def eval_metrics(values: dict[str, Any]) -> list[str]:
    """The user's ``eval_metric`` list, unioned with the tuning objective (sorted) like the container."""
    metrics = hp.parse_eval_metric(values["eval_metric"]) if values.get("eval_metric") else []
    tuning = values.get("_tuning_objective_metric")
    if tuning:
        objective_metric = hp.parse_tuning_objective(tuning)
        metrics = sorted(set(metrics) | {objective_metric}) if metrics else [objective_metric]
    return metrics


def plan(values: dict[str, Any], num_cpus: int) -> TrainingPlan:
    """Translate validated hyperparameters (the schema's typed dict) into a TrainingPlan."""
    params: dict[str, Any] = {}
    for alias, name in hp.ALIASES.items():
        if values.get(alias) is not None:
            params[name] = values[alias]
    for name in PASS_THROUGH:
        if values.get(name) is not None:
            params[name] = values[name]
    params["nthread"] = values.get("nthread") or num_cpus
    objective = str(values.get("objective") or "reg:squarederror")
    params["objective"] = objective

    wants_gpu = _device_params(values, params)
    _tree_params(values, params)

    metrics = eval_metrics(values)
    custom = [m for m in metrics if m in CUSTOM_METRICS]
    native = [m for m in metrics if m not in CUSTOM_METRICS]
    if native:
        params["eval_metric"] = native
    elif objective in LEGACY_DEFAULT_METRIC:
        params["eval_metric"] = [LEGACY_DEFAULT_METRIC[objective]]

    stopping_metric = None
    if values.get("early_stopping_rounds"):
        tuning = values.get("_tuning_objective_metric")
        user = hp.parse_eval_metric(values["eval_metric"]) if values.get("eval_metric") else []
        stopping_metric = hp.parse_tuning_objective(tuning) if tuning else (user[-1] if user else None)

    return TrainingPlan(
        params=params,
        num_round=int(values["num_round"]),
        objective=objective,
        num_class=values.get("num_class"),
        native_metrics=native,
        custom_metrics=custom,
        early_stopping_rounds=values.get("early_stopping_rounds"),
        early_stopping_metric=stopping_metric,
        csv_weights=bool(values.get("csv_weights")),
        kfold=values.get("_kfold"),
        num_cv_round=values.get("_num_cv_round") or 1,
        wants_gpu=wants_gpu,
        save_model_on_termination=values.get("save_model_on_termination") == "true",
    )


def _device_params(values: dict[str, Any], params: dict[str, Any]) -> bool:
    """Set ``device``; True when the job asked for a GPU (gpu_hist, cuda, gpu_predictor, Dask GPU)."""
    device = (values.get("device") or "").strip().lower()
    if device.startswith("gpu"):
        device = "cuda" + device[3:]
    wants_gpu = (
        device.startswith("cuda")
        or values.get("tree_method") == "gpu_hist"
        or values.get("predictor") == "gpu_predictor"
        or values.get("use_dask_gpu_training") == "true"
    )
    if wants_gpu:
        params["device"] = device if device.startswith("cuda") else "cuda"
    elif device:
        params["device"] = device
    return wants_gpu


def _tree_params(values: dict[str, Any], params: dict[str, Any]) -> None:
    tree_method = values.get("tree_method")
    if tree_method is not None:
        # XGBoost >= 2 spells gpu_hist as tree_method=hist with device=cuda (set in _device_params)
        params["tree_method"] = "hist" if tree_method == "gpu_hist" else tree_method
    if values.get("sketch_eps") is not None and values.get("max_bin") is None:
        # XGBoost >= 1.6 sizes approx's sketch with max_bin; sketch_eps = 1 / bins
        params["max_bin"] = max(2, math.ceil(1.0 / float(values["sketch_eps"])))
    if values.get("updater") is not None:
        params["updater"] = ",".join(hp.parse_updater(values["updater"]))
    if values.get("monotone_constraints") is not None:
        constraints = hp.parse_monotone_constraints(values["monotone_constraints"])
        params["monotone_constraints"] = "(" + ",".join(str(c) for c in constraints) + ")"
    if values.get("interaction_constraints") is not None:
        groups = hp.parse_interaction_constraints(values["interaction_constraints"])
        params["interaction_constraints"] = str(groups).replace(" ", "")
