"""sagemaker.predictor's names."""

from forgeml.sdk.predictor import Predictor

__all__ = ["Predictor"]
