"""sagemaker.model_monitor's names (data capture for now)."""

from forgeml.sdk.model_monitor import DataCaptureConfig

__all__ = ["DataCaptureConfig"]
