"""Factorization Machines hyperparameters: SageMaker's names, defaults and ranges (reference §4.1)."""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.common.hyperparameters import mxnet_internal_keys
from forgeml.algorithms.hyperparameters import (
    Categorical,
    Float,
    Hyperparameter,
    HyperparameterError,
    HyperparameterSchema,
    Int,
)

INIT_METHODS = ("normal", "uniform", "constant")
TERMS = ("bias", "linear", "factors")

_SIGMA_DEFAULTS = {"bias": 0.01, "linear": 0.01, "factors": 0.001}
_LR_DEFAULTS = {"bias": 0.1, "linear": 0.001, "factors": 0.0001}
_WD_DEFAULTS = {"bias": 0.01, "linear": 0.001, "factors": 0.00001}


def _term_parameters(term: str) -> list[Hyperparameter]:
    return [
        Categorical(f"{term}_init_method", INIT_METHODS, "normal"),
        Float(f"{term}_init_scale", None, minimum=0),
        Float(f"{term}_init_sigma", _SIGMA_DEFAULTS[term], minimum=0),
        Float(f"{term}_init_value", None),
        Float(f"{term}_lr", _LR_DEFAULTS[term], minimum=0),
        Float(f"{term}_wd", _WD_DEFAULTS[term], minimum=0),
    ]


SCHEMA = HyperparameterSchema(
    "factorization-machines",
    [
        Int("feature_dim", required=True, minimum=1),
        Int("num_factors", required=True, minimum=1),
        Categorical("predictor_type", ("binary_classifier", "regressor"), required=True),
        Int("epochs", 1, minimum=1),
        Int("mini_batch_size", 1000, minimum=1),
        *[p for term in TERMS for p in _term_parameters(term)],
        # MXNet optimizer arguments; unset means MXNet's own behaviour (no clipping, eps 1e-8,
        # rescale by 1/batch size).
        Float("clip_gradient", None, minimum=0, min_exclusive=True),
        Float("eps", None, minimum=0, min_exclusive=True),
        Float("rescale_grad", None, minimum=0, min_exclusive=True),
        # MXNet container keys (kvstore, GPUs, log level...): accepted without effect.
        *mxnet_internal_keys(),
    ],
)


def check(values: dict[str, Any]) -> None:
    """The init method needs its parameter: ``uniform`` a scale, ``constant`` a value."""
    for term in TERMS:
        method = values[f"{term}_init_method"]
        needed = {"uniform": f"{term}_init_scale", "constant": f"{term}_init_value"}.get(method)
        if needed is not None and values.get(needed) is None:
            raise HyperparameterError(
                f"HyperParameters: '{needed}' is required when {term}_init_method is '{method}'"
            )
