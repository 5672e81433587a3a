"""Parsing and checking S3 URIs, so that a key can never escape its bucket."""

from __future__ import annotations

import re
from dataclasses import dataclass

from forgeml.errors import ValidationException

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Location:
        key = self.key.rstrip("/")
        for part in parts:
            part = part.strip("/")
            if part:
                key = f"{key}/{part}" if key else part
        return S3Location(self.bucket, check_key(key, field="key"))


def check_key(key: str, *, field: str = "S3Uri") -> str:
    """Reject keys that would resolve outside their bucket on a file system."""
    if key.startswith("/"):
        raise ValidationException(f"Value '{key}' at '{field}' failed to satisfy constraint: an S3 key must not be absolute")
    if any(segment in ("..", ".") for segment in key.split("/")):
        raise ValidationException(
            f"Value '{key}' at '{field}' failed to satisfy constraint: an S3 key must not contain '.' or '..' segments"
        )
    if "\\" in key or "\x00" in key:
        raise ValidationException(f"Value '{key}' at '{field}' failed to satisfy constraint: invalid character in S3 key")
    return key


def is_s3_uri(uri: str) -> bool:
    return uri.startswith("s3://")


def parse_s3_uri(uri: str, *, field: str = "S3Uri") -> S3Location:
    """``s3://bucket/key`` -> S3Location, or a ValidationException naming ``field``."""
    if not is_s3_uri(uri):
        raise ValidationException(
            f"Value '{uri}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: (https|s3)://([^/]+)/?(.*)"
        )
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValidationException(
            f"Value '{uri}' at '{field}' failed to satisfy constraint: bucket name '{bucket}' must be 3-63 characters of lower-case letters, digits, dots and hyphens"
        )
    return S3Location(bucket, check_key(key, field=field))
