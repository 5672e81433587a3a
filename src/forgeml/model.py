"""sagemaker.model's names."""

from forgeml.sdk.model import Model

__all__ = ["Model"]
