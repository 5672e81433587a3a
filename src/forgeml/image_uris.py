"""sagemaker.image_uris's names."""

from forgeml.sdk.image_uris import get_image_uri, retrieve

__all__ = ["get_image_uri", "retrieve"]
