"""The SageMaker XGBoost container's hyperparameters (1.7-1 validation) and its cross-field rules.

The container declares no defaults of its own: whatever a job leaves out falls through to the
XGBoost library's default, so most parameters here default to ``None`` (= "not passed on").
Aliases (``learning_rate`` for ``eta``...) are accepted as the container accepts them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from forgeml.algorithms.hyperparameters import (
    Categorical,
    Float,
    Hyperparameter,
    HyperparameterError,
    HyperparameterSchema,
    Int,
    Str,
)
from forgeml.algorithms.xgboost.metrics import METRIC_NAMES, THRESHOLD_METRICS

OBJECTIVES = (
    "binary:hinge",
    "binary:logistic",
    "binary:logitraw",
    "count:poisson",
    "multi:softmax",
    "multi:softprob",
    "rank:map",
    "rank:ndcg",
    "rank:pairwise",
    "reg:absoluteerror",
    "reg:gamma",
    "reg:linear",
    "reg:logistic",
    "reg:pseudohubererror",
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:tweedie",
    "survival:aft",
    "survival:cox",
)

#: alias -> canonical name, as XGBoost and the container accept them
ALIASES = {"learning_rate": "eta", "min_split_loss": "gamma", "reg_lambda": "lambda", "reg_alpha": "alpha"}

TREE_UPDATERS = ("grow_colmaker", "grow_histmaker", "grow_quantile_histmaker", "sync", "refresh", "prune")
TREE_GROWERS = ("grow_colmaker", "grow_histmaker", "grow_quantile_histmaker")
LINEAR_UPDATERS = ("shotgun", "coord_descent")
#: accepted by the 1.7-1 validator but unknown to XGBoost >= 1.0, so the job fails there too
REMOVED_UPDATERS = ("distcol", "grow_skmaker")

_TRUE_FALSE = ("true", "false")
_DEVICE = re.compile(r"^(cpu|cuda|gpu)(:[0-9]+)?$")


def _parameters() -> list[Hyperparameter]:
    unit = {"minimum": 0, "maximum": 1}
    open_unit = {"minimum": 0, "maximum": 1, "min_exclusive": True}
    non_negative = {"minimum": 0}
    return [
        Int("num_round", required=True, minimum=1),
        Int("num_class", minimum=2),
        Categorical("objective", OBJECTIVES),
        Str("eval_metric"),
        Int("csv_weights", 0, **unit),
        Int("early_stopping_rounds", minimum=1),
        Categorical("booster", ("gbtree", "gblinear", "dart")),
        Int("verbosity", minimum=0, maximum=3),
        Int("nthread", minimum=1),
        Float("eta", **unit),
        Float("learning_rate", **unit),
        Float("gamma", **non_negative),
        Float("min_split_loss", **non_negative),
        Int("max_depth", **non_negative),
        Float("min_child_weight", **non_negative),
        # DISCREPANCY: the docs call it an integer; the container parses a float (as here)
        Float("max_delta_step", **non_negative),
        Float("subsample", **open_unit),
        Float("colsample_bytree", **open_unit),
        Float("colsample_bylevel", **open_unit),
        Float("colsample_bynode", **open_unit),
        Float("lambda", **non_negative),
        Float("reg_lambda", **non_negative),
        Float("alpha", **non_negative),
        Float("reg_alpha", **non_negative),
        Categorical("tree_method", ("auto", "exact", "approx", "hist", "gpu_hist")),
        Float("sketch_eps", minimum=0, maximum=1, min_exclusive=True, max_exclusive=True),
        Float("scale_pos_weight", minimum=0, min_exclusive=True),
        Str("updater"),
        Categorical("dsplit", ("row", "col")),
        Int("refresh_leaf", **unit),
        Categorical("process_type", ("default", "update")),
        Categorical("grow_policy", ("depthwise", "lossguide")),
        Int("max_leaves", **non_negative),
        Int("max_bin", **non_negative),
        Categorical("predictor", ("auto", "cpu_predictor", "gpu_predictor")),
        Str("monotone_constraints"),
        Str("interaction_constraints"),
        Categorical("sample_type", ("uniform", "weighted")),
        Categorical("normalize_type", ("tree", "forest")),
        Float("rate_drop", **unit),
        Int("one_drop", **unit),
        Float("skip_drop", **unit),
        Float("lambda_bias", **unit),
        Float("tweedie_variance_power", minimum=1, maximum=2, min_exclusive=True, max_exclusive=True),
        Float("base_score", **non_negative),
        Int("seed", minimum=-(2**31), maximum=2**31 - 1, min_exclusive=True, max_exclusive=True),
        Int("num_parallel_tree", minimum=1),
        Categorical("save_model_on_termination", _TRUE_FALSE, "false"),
        Categorical("aft_loss_distribution", ("normal", "logistic", "extreme")),
        Float("aft_loss_distribution_scale", **non_negative),
        Categorical("deterministic_histogram", _TRUE_FALSE),
        Categorical("sampling_method", ("uniform", "gradient_based")),
        Int("prob_buffer_row", minimum=1, min_exclusive=True),
        Categorical("use_dask_gpu_training", _TRUE_FALSE, "false"),
        # the 3.0-5 image's way to pick the GPU; 1.x images use tree_method=gpu_hist
        Str("device"),
        # internal: k-fold cross-validation mode used by Autopilot (1.2-2+)
        Int("_kfold", minimum=2),
        Int("_num_cv_round", minimum=1),
        Str("_tuning_objective_metric"),
    ]


SCHEMA = HyperparameterSchema("xgboost", _parameters())


def invalid(name: str, value: Any, rule: str) -> HyperparameterError:
    """The shared message shape, for rules that span several parameters."""
    return HyperparameterError(
        f"Value '{value}' at 'HyperParameters.{name}' failed to satisfy constraint: {rule}"
    )


def _items(text: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            loaded = json.loads(stripped)
        except json.JSONDecodeError:
            loaded = None
        if isinstance(loaded, list):
            return [str(item).strip() for item in loaded if str(item).strip()]
    return [item.strip() for item in stripped.split(",") if item.strip()]


def parse_eval_metric(text: str) -> list[str]:
    """``"auc,error@0.7"`` -> ``["auc", "error@0.7"]``; names outside the container's list fail."""
    metrics = _items(text)
    if not metrics:
        raise invalid("eval_metric", text, "Member must name at least one metric")
    for metric in metrics:
        name, at, threshold = metric.partition("@")
        if at:
            if name not in THRESHOLD_METRICS:
                raise invalid(
                    "eval_metric", text,
                    f"Metric '{metric}' is not supported; a metric with a threshold must be one of "
                    f"{', '.join(repr(m) for m in THRESHOLD_METRICS)}",
                )
            try:
                float(threshold)
            except ValueError:
                raise invalid(
                    "eval_metric", text, f"Threshold value 't' in '{name}@t' must be a number"
                ) from None
        elif metric not in METRIC_NAMES:
            raise invalid(
                "eval_metric", text,
                f"Metric '{metric}' is not supported; supported metrics: {', '.join(METRIC_NAMES)}, "
                f"or error@t, ndcg@t, map@t",
            )
    return metrics


def parse_tuning_objective(text: str) -> str:
    """``"validation:auc"`` -> ``"auc"``."""
    split, _, metric = text.strip().partition(":")
    if split != "validation" or metric not in METRIC_NAMES:
        raise invalid(
            "_tuning_objective_metric", text,
            "Member must be validation:<metric> with a metric XGBoost reports "
            f"({', '.join(METRIC_NAMES)})",
        )
    return metric


def parse_monotone_constraints(text: str) -> list[int]:
    """``"(1,0,-1)"`` (or ``[1,0,-1]``) -> ``[1, 0, -1]``."""
    body = text.strip()
    if len(body) >= 2 and body[0] + body[-1] in ("()", "[]"):
        body = body[1:-1]
    try:
        values = [int(item) for item in body.split(",") if item.strip()]
    except ValueError:
        values = []
    if not values or any(v not in (-1, 0, 1) for v in values):
        raise invalid(
            "monotone_constraints", text, "Member must be a tuple of -1, 0 and 1 such as (0,1,-1)"
        )
    return values


def parse_interaction_constraints(text: str) -> list[list[int]]:
    """``"[[0,1],[2,3,4]]"`` -> nested lists of feature indices.

    The container's validator also rejects index 0 (its range is ``>= 1``), which looks like a
    slip: XGBoost's indices start at 0, so forgeml accepts 0.
    """
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError:
        loaded = None
    valid = (
        isinstance(loaded, list)
        and loaded
        and all(
            isinstance(group, list)
            and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in group)
            for group in loaded
        )
    )
    if not valid:
        raise invalid(
            "interaction_constraints", text,
            "Member must be a nested list of feature indices such as [[0,1],[2,3,4]]",
        )
    return loaded


def parse_updater(text: str) -> list[str]:
    return _items(text)


def check(values: dict[str, Any]) -> None:
    """The container's rules across parameters, plus the ones that keep forgeml honest."""
    for alias, name in ALIASES.items():
        if values.get(alias) is not None and values.get(name) is not None:
            raise invalid(alias, values[alias], f"Member is an alias of '{name}'; set only one of them")
    objective = values.get("objective") or "reg:squarederror"
    _check_objective(objective, values)
    if values.get("eval_metric") is not None:
        metrics = parse_eval_metric(values["eval_metric"])
        if "auc" in metrics and not objective.startswith(("binary:", "rank:")):
            raise invalid(
                "eval_metric", values["eval_metric"],
                f"Metric 'auc' can only be applied for classification and ranking problems "
                f"(objective is '{objective}')",
            )
        if "aft-nloglik" in metrics and objective != "survival:aft":
            raise invalid("eval_metric", values["eval_metric"], "Metric 'aft-nloglik' needs objective survival:aft")
    if values.get("_tuning_objective_metric") is not None:
        parse_tuning_objective(values["_tuning_objective_metric"])
    _check_tree_options(values)
    _check_updater(values)
    _check_unsupported(values)


def _check_objective(objective: str, values: dict[str, Any]) -> None:
    num_class = values.get("num_class")
    if objective.startswith("multi:") and num_class is None:
        raise HyperparameterError(
            f"HyperParameters: missing required hyperparameter 'num_class': objective={objective} "
            "(multi-classification) needs the number of classes"
        )
    if num_class is not None and not objective.startswith("multi:"):
        raise invalid(
            "num_class", num_class,
            f"Member is only used by multi:softmax and multi:softprob, not objective={objective}",
        )


def _check_tree_options(values: dict[str, Any]) -> None:
    tree_method = values.get("tree_method")
    if values.get("monotone_constraints") is not None:
        parse_monotone_constraints(values["monotone_constraints"])
        if tree_method not in ("exact", "hist", "gpu_hist"):
            raise invalid(
                "monotone_constraints", values["monotone_constraints"],
                "Member can be used only when tree_method is 'exact' or 'hist' "
                f"(tree_method is {tree_method or 'unset'})",
            )
    if values.get("interaction_constraints") is not None:
        parse_interaction_constraints(values["interaction_constraints"])
        if tree_method not in ("exact", "hist", "approx", "gpu_hist"):
            raise invalid(
                "interaction_constraints", values["interaction_constraints"],
                "Member can be used only when tree_method is 'exact', 'hist' or 'approx' "
                f"(tree_method is {tree_method or 'unset'})",
            )
    if values.get("sketch_eps") is not None and tree_method != "approx":
        raise invalid(
            "sketch_eps", values["sketch_eps"],
            f"Member only applies with tree_method=approx (tree_method is {tree_method or 'unset'})",
        )
    device = values.get("device")
    if device is not None:
        if not _DEVICE.match(device.strip().lower()):
            raise invalid("device", device, "Member must be cpu, cuda, cuda:<ordinal>, gpu or gpu:<ordinal>")
        if device.strip().lower() == "cpu" and (
            tree_method == "gpu_hist" or values.get("predictor") == "gpu_predictor"
        ):
            raise invalid("device", device, "Member cannot be cpu with tree_method=gpu_hist or predictor=gpu_predictor")
    if values.get("_num_cv_round") is not None and values.get("_kfold") is None:
        raise invalid("_num_cv_round", values["_num_cv_round"], "Member needs _kfold (k-fold cross-validation)")


def _check_updater(values: dict[str, Any]) -> None:
    text = values.get("updater")
    if text is None:
        return
    updaters = parse_updater(text)
    for name in updaters:
        if name in REMOVED_UPDATERS:
            raise invalid("updater", text, f"Member '{name}' no longer exists in XGBoost (removed before 1.0)")
    booster = values.get("booster") or "gbtree"
    if booster == "gblinear":
        if len(updaters) != 1 or updaters[0] not in LINEAR_UPDATERS:
            raise invalid("updater", text, "Linear updater should be one of these options: 'shotgun', 'coord_descent'")
        return
    if values.get("process_type") == "update":
        if not updaters or any(name not in ("refresh", "prune") for name in updaters):
            raise invalid("updater", text, "process_type 'update' can only be used with updater 'refresh' and 'prune'")
        return
    if not updaters or any(name not in TREE_UPDATERS for name in updaters):
        raise invalid(
            "updater", text, f"Tree updater should be selected from these options: {', '.join(TREE_UPDATERS)}"
        )
    if sum(name in TREE_GROWERS for name in updaters) > 1:
        raise invalid(
            "updater", text, f"Only one tree grow plugin can be selected; choose one of {', '.join(TREE_GROWERS)}"
        )


def _check_unsupported(values: dict[str, Any]) -> None:
    # XGBoost >= 1.0 never regularises the linear booster's bias: only the no-op value is honest.
    lambda_bias = values.get("lambda_bias")
    if lambda_bias not in (None, 0, 0.0):
        raise invalid(
            "lambda_bias", lambda_bias,
            "Member must be 0: XGBoost no longer supports a bias penalty for gblinear",
        )
