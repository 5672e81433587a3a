"""sagemaker.estimator's names."""

from forgeml.sdk.estimator import Estimator, TrainingJob

__all__ = ["Estimator", "TrainingJob"]
