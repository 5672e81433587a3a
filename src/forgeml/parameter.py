"""sagemaker.parameter's names."""

from forgeml.sdk.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter, ParameterRange

__all__ = ["CategoricalParameter", "ContinuousParameter", "IntegerParameter", "ParameterRange"]
