"""sagemaker.analytics's names."""

from forgeml.sdk.analytics import HyperparameterTuningJobAnalytics, TrainingJobAnalytics

__all__ = ["HyperparameterTuningJobAnalytics", "TrainingJobAnalytics"]
