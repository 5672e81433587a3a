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
    "Model": "forgeml.sdk.model",
    "PipelineModel": "forgeml.sdk.pipeline",
    "Predictor": "forgeml.sdk.predictor",
    "DataCaptureConfig": "forgeml.sdk.model_monitor",
    "Transformer": "forgeml.sdk.transformer",
    "production_variant": "forgeml.sdk.session",
    "container_def": "forgeml.sdk.session",
    "pipeline_container_def": "forgeml.sdk.session",
    "ModelError": "forgeml.errors",
    "RuntimeValidationError": "forgeml.errors",
    "LinearLearnerModel": "forgeml.sdk.amazon_estimators",
    "LinearLearnerPredictor": "forgeml.sdk.amazon_estimators",
    "KMeansModel": "forgeml.sdk.amazon_estimators",
    "KMeansPredictor": "forgeml.sdk.amazon_estimators",
    "PCAModel": "forgeml.sdk.amazon_estimators",
    "PCAPredictor": "forgeml.sdk.amazon_estimators",
    "KNNModel": "forgeml.sdk.amazon_estimators",
    "KNNPredictor": "forgeml.sdk.amazon_estimators",
    "FactorizationMachinesModel": "forgeml.sdk.amazon_estimators",
    "FactorizationMachinesPredictor": "forgeml.sdk.amazon_estimators",
    "RandomCutForestModel": "forgeml.sdk.amazon_estimators",
    "RandomCutForestPredictor": "forgeml.sdk.amazon_estimators",
    "IPInsightsModel": "forgeml.sdk.amazon_estimators",
    "IPInsightsPredictor": "forgeml.sdk.amazon_estimators",
}

__all__ = [
    "DataCaptureConfig",
    "Estimator",
    "FactorizationMachines",
    "FactorizationMachinesModel",
    "FactorizationMachinesPredictor",
    "HyperparameterTuner",
    "HyperparameterTuningJobAnalytics",
    "IPInsights",
    "IPInsightsModel",
    "IPInsightsPredictor",
    "KMeans",
    "KMeansModel",
    "KMeansPredictor",
    "KNN",
    "KNNModel",
    "KNNPredictor",
    "LinearLearner",
    "LinearLearnerModel",
    "LinearLearnerPredictor",
    "Model",
    "ModelError",
    "PCA",
    "PCAModel",
    "PCAPredictor",
    "PipelineModel",
    "Predictor",
    "RandomCutForest",
    "RandomCutForestModel",
    "RandomCutForestPredictor",
    "RecordSet",
    "ResourceInUse",
    "ResourceLimitExceeded",
    "ResourceNotFound",
    "RuntimeValidationError",
    "Session",
    "TrainingInput",
    "TrainingJobAnalytics",
    "Transformer",
    "UnexpectedStatusException",
    "ValidationException",
    "container_def",
    "get_execution_role",
    "pipeline_container_def",
    "production_variant",
    "__version__",
]

if TYPE_CHECKING:
    from forgeml.errors import (
        ModelError,
        ResourceInUse,
        ResourceLimitExceeded,
        ResourceNotFound,
        RuntimeValidationError,
        UnexpectedStatusException,
        ValidationException,
    )
    from forgeml.sdk.amazon_estimators import (
        KNN,
        PCA,
        FactorizationMachines,
        FactorizationMachinesModel,
        FactorizationMachinesPredictor,
        IPInsights,
        IPInsightsModel,
        IPInsightsPredictor,
        KMeans,
        KMeansModel,
        KMeansPredictor,
        KNNModel,
        KNNPredictor,
        LinearLearner,
        LinearLearnerModel,
        LinearLearnerPredictor,
        PCAModel,
        PCAPredictor,
        RandomCutForest,
        RandomCutForestModel,
        RandomCutForestPredictor,
        RecordSet,
    )
    from forgeml.sdk.analytics import HyperparameterTuningJobAnalytics, TrainingJobAnalytics
    from forgeml.sdk.estimator import Estimator
    from forgeml.sdk.inputs import TrainingInput
    from forgeml.sdk.model import Model
    from forgeml.sdk.model_monitor import DataCaptureConfig
    from forgeml.sdk.pipeline import PipelineModel
    from forgeml.sdk.predictor import Predictor
    from forgeml.sdk.session import (
        Session,
        container_def,
        get_execution_role,
        pipeline_container_def,
        production_variant,
    )
    from forgeml.sdk.transformer import Transformer
    from forgeml.sdk.tuner import HyperparameterTuner


#: the sagemaker-named public modules, reachable as attributes (``sagemaker.estimator.Estimator(...)``)
_SUBMODULES = frozenset({
    "amazon", "analytics", "deserializers", "estimator", "image_uris", "inputs", "model", "model_monitor",
    "parameter", "pipeline", "predictor", "serializers", "session", "transformer", "tuner",
})


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"forgeml.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forgeml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
