"""sagemaker.inputs's names."""

from forgeml.sdk.inputs import ShuffleConfig, TrainingInput

__all__ = ["ShuffleConfig", "TrainingInput"]
