"""sagemaker.transformer's names."""

from forgeml.sdk.transformer import Transformer

__all__ = ["Transformer"]
