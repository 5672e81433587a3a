"""forgeml: SageMaker's training, tuning and hosting API on your own machine.

Port a notebook by changing its imports: ``import forgeml as sagemaker``. Names are imported on
first use, so ``import forgeml`` stays cheap inside every job process.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Session": "forgeml.sdk.session",
    "get_execution_role": "forgeml.sdk.session",
    "Estimator": "forgeml.sdk.estimator",
    "TrainingInput": "forgeml.sdk.inputs",
    "LinearLearner": "forgeml.sdk.amazon_estimators",
    "KMeans": "forgeml.sdk.amazon_estimators",
    "PCA": "forgeml.sdk.amazon_estimators",
    "KNN": "forgeml.sdk.amazon_estimators",
    "FactorizationMachines": "forgeml.sdk.amazon_estimators",
    "RandomCutForest": "forgeml.sdk.amazon_estimators",
    "IPInsights": "forgeml.sdk.amazon_estimators",
    "RecordSet": "forgeml.sdk.amazon_estimators",
    "HyperparameterTuner": "forgeml.sdk.tuner",
    "HyperparameterTuningJobAnalytics": "forgeml.sdk.analytics",
    "TrainingJobAnalytics": "forgeml.sdk.analytics",
    "ValidationException": "forgeml.errors",
    "ResourceNotFound": "forgeml.errors",
    "ResourceInUse": "forgeml.errors",
    "ResourceLimitExceeded": "forgeml.errors",
    "UnexpectedStatusException": "forgeml.errors",
}

__all__ = [
    "Estimator",
    "FactorizationMachines",
    "HyperparameterTuner",
    "HyperparameterTuningJobAnalytics",
    "IPInsights",
    "KMeans",
    "KNN",
    "LinearLearner",
    "PCA",
    "RandomCutForest",
    "RecordSet",
    "ResourceInUse",
    "ResourceLimitExceeded",
    "ResourceNotFound",
    "Session",
    "TrainingInput",
    "TrainingJobAnalytics",
    "UnexpectedStatusException",
    "ValidationException",
    "get_execution_role",
    "__version__",
]

if TYPE_CHECKING:
    from forgeml.errors import (
        ResourceInUse,
        ResourceLimitExceeded,
        ResourceNotFound,
        UnexpectedStatusException,
        ValidationException,
    )
    from forgeml.sdk.amazon_estimators import (
        KNN,
        PCA,
        FactorizationMachines,
        IPInsights,
        KMeans,
        LinearLearner,
        RandomCutForest,
        RecordSet,
    )
    from forgeml.sdk.analytics import HyperparameterTuningJobAnalytics, TrainingJobAnalytics
    from forgeml.sdk.estimator import Estimator
    from forgeml.sdk.inputs import TrainingInput
    from forgeml.sdk.session import Session, get_execution_role
    from forgeml.sdk.tuner import HyperparameterTuner


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forgeml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
