"""sagemaker.tuner's names."""

from forgeml.sdk.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter
from forgeml.sdk.tuner import HyperparameterTuner, WarmStartConfig, WarmStartTypes

__all__ = ["CategoricalParameter", "ContinuousParameter", "HyperparameterTuner", "IntegerParameter",
           "WarmStartConfig", "WarmStartTypes"]
