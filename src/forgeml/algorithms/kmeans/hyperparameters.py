"""K-Means hyperparameters: SageMaker's names, defaults and ranges (reference §5.1)."""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.common.hyperparameters import mxnet_internal_keys
from forgeml.algorithms.hyperparameters import (
    AUTO,
    Bool,
    Categorical,
    Float,
    Hyperparameter,
    HyperparameterError,
    HyperparameterSchema,
    Int,
)

EVAL_METRICS = ("msd", "ssd")

# ``auto`` for extra_center_factor and local_lloyd_num_trials: a 2019 log with k=8 shows
# "shrinking 80 centers into 8" and ten local attempts, so both resolve to 10. Whether SageMaker's
# auto depends on the data size is UNVERIFIED; 10 is the observed value.
AUTO_EXTRA_CENTER_FACTOR = 10
AUTO_LOCAL_LLOYD_NUM_TRIALS = 10

SCHEMA = HyperparameterSchema(
    "kmeans",
    [
        Int("feature_dim", required=True, minimum=1),
        Int("k", required=True, minimum=1),
        Int("epochs", 1, minimum=1),
        Categorical("init_method", ("random", "kmeans++"), "random"),
        Int("extra_center_factor", AUTO, minimum=1, allow_auto=True),
        Categorical("local_lloyd_init_method", ("random", "kmeans++"), "kmeans++"),
        Int("local_lloyd_max_iter", 300, minimum=1),
        Int("local_lloyd_num_trials", AUTO, minimum=1, allow_auto=True),
        Float("local_lloyd_tol", 0.0001, minimum=0, maximum=1),
        Int("half_life_time_size", 0, minimum=0),
        Hyperparameter("eval_metrics", "json", ["msd"]),
        Int("mini_batch_size", 5000, minimum=1),
        # The SDK always sends force_dense=True. Honoured: true densifies sparse mini-batches,
        # false keeps them sparse (same centres, different arithmetic).
        Bool("force_dense", True),
        # MXNet container keys (kvstore, GPUs, log level...): accepted without effect.
        *mxnet_internal_keys(
            num_kv_servers="1",
            extra={"_num_slices": "1", "_disable_wait_to_read": "false", "_enable_profiler": "false"},
        ),
    ],
)


def check(values: dict[str, Any]) -> None:
    """eval_metrics must be a non-empty JSON list drawn from ``msd`` and ``ssd``."""
    metrics = values["eval_metrics"]
    if isinstance(metrics, str):  # a bare JSON string such as "msd"
        metrics = [metrics]
    if not isinstance(metrics, list) or not metrics or any(m not in EVAL_METRICS for m in metrics):
        raise HyperparameterError(
            f"Value '{values['eval_metrics']}' at 'HyperParameters.eval_metrics' failed to satisfy constraint: "
            'Member must be a JSON list drawn from ["msd", "ssd"], e.g. ["msd","ssd"]'
        )
    values["eval_metrics"] = list(dict.fromkeys(metrics))


def resolved_extra_center_factor(values: dict[str, Any]) -> int:
    factor = values["extra_center_factor"]
    return AUTO_EXTRA_CENTER_FACTOR if factor == AUTO else int(factor)


def resolved_num_trials(values: dict[str, Any]) -> int:
    trials = values["local_lloyd_num_trials"]
    return AUTO_LOCAL_LLOYD_NUM_TRIALS if trials == AUTO else int(trials)
