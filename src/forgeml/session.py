"""sagemaker.session's names."""

from forgeml.sdk.session import Session, get_execution_role

__all__ = ["Session", "get_execution_role"]
