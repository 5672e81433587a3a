"""What S3 knows about an object beyond its bytes (ETag, type, metadata, checksums), and how keys and
ETags compare, kept apart from the disk layout so handlers and the store share one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forgeml.server.s3.constants import DEFAULT_CONTENT_TYPE


def _normalized_key(key: str) -> str:
    """The key as the file system stores it: empty segments collapse, as ``Path`` joins them."""
    return "/".join(segment for segment in key.split("/") if segment)


def _unquoted_etag(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


def _etag_matches(condition: str, etag: str) -> bool:
    wanted = [_unquoted_etag(part) for part in condition.split(",")]
    return "*" in wanted or _unquoted_etag(etag) in wanted


@dataclass
class ObjectRecord:
    """What S3 knows about an object beyond its bytes; kept in a sidecar next to (not in) the bucket."""

    etag: str
    content_type: str = DEFAULT_CONTENT_TYPE
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    part_sizes: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "etag": self.etag,
            "content_type": self.content_type,
            "metadata": self.metadata,
            "headers": self.headers,
            "checksums": self.checksums,
            "part_sizes": self.part_sizes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectRecord:
        return cls(
            etag=str(data["etag"]),
            content_type=str(data.get("content_type") or DEFAULT_CONTENT_TYPE),
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
            headers={str(k): str(v) for k, v in (data.get("headers") or {}).items()},
            checksums={str(k): str(v) for k, v in (data.get("checksums") or {}).items()},
            part_sizes=[int(size) for size in data.get("part_sizes") or []],
        )


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: float
    record: ObjectRecord


@dataclass(frozen=True)
class PartInfo:
    number: int
    etag: str
    size: int
    modified: float
    checksums: dict[str, str]
