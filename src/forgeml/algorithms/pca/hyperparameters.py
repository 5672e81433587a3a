"""PCA hyperparameters: SageMaker's names, defaults and ranges (reference §6.1)."""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.common.hyperparameters import mxnet_internal_keys
from forgeml.algorithms.hyperparameters import (
    Bool,
    Categorical,
    HyperparameterError,
    HyperparameterSchema,
    Int,
)

SCHEMA = HyperparameterSchema(
    "pca",
    [
        Int("feature_dim", required=True, minimum=1),
        # required by the docs (the SDK always fills it in from the data size)
        Int("mini_batch_size", required=True, minimum=1),
        Int("num_components", required=True, minimum=1),
        Categorical("algorithm_mode", ("regular", "randomized"), "regular"),
        Bool("subtract_mean", True),
        # -1 means max(10, num_components); only the randomized mode's sketch uses it
        Int("extra_components", -1, minimum=-1),
        # Container default-configuration keys. force_dense is honoured (true densifies sparse
        # mini-batches, false keeps sparse arithmetic: same result). PCA makes exactly one pass
        # over the data, as the container's epochs=1 says, so epochs accepts only 1.
        Bool("force_dense", True),
        Int("epochs", 1, minimum=1, maximum=1),
        # MXNet container keys (kvstore, GPUs, log level...): accepted without effect.
        *mxnet_internal_keys(kvstore="dist_sync", num_kv_servers="1"),
    ],
)


def check(values: dict[str, Any]) -> None:
    """num_components ≤ feature_dim; extra_components only in randomized mode."""
    if values["num_components"] > values["feature_dim"]:
        raise HyperparameterError(
            f"Value '{values['num_components']}' at 'HyperParameters.num_components' failed to satisfy constraint: "
            f"Member must be less than or equal to feature_dim ({values['feature_dim']})"
        )
    if values["extra_components"] != -1 and values["algorithm_mode"] != "randomized":
        raise HyperparameterError(
            f"Value '{values['extra_components']}' at 'HyperParameters.extra_components' failed to satisfy "
            "constraint: Member is only used with algorithm_mode=randomized (leave it at -1 for regular mode)"
        )


def sketch_rows(values: dict[str, Any]) -> int:
    """Rows of the randomized sketch: num_components + extra (extra -1 → max(10, num_components))."""
    extra = values["extra_components"]
    components = int(values["num_components"])
    return components + (max(10, components) if extra == -1 else int(extra))
