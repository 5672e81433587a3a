"""Artifact store: fsspec URIs (local paths, file://, s3://) behind one small interface."""

from forgeml.storage.artifacts import ArtifactStore, StoredObject
from forgeml.storage.uri import S3Location, parse_s3_uri

__all__ = ["ArtifactStore", "S3Location", "StoredObject", "parse_s3_uri"]
