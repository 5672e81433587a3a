"""Content types: parsing ``ContentType`` strings and normalising the aliases SageMaker accepts.

A channel's ``ContentType`` is a MIME type with optional parameters (``text/csv;label_size=0``).
The SageMaker XGBoost container also takes short aliases (``csv``, ``libsvm``, ``parquet``,
``recordio-protobuf``) and matches case-insensitively; ``canonical_mime`` maps all of them onto
one canonical name per format so the rest of forgeml compares against constants.
"""

from __future__ import annotations

CSV = "text/csv"
LIBSVM = "text/libsvm"
RECORDIO_PROTOBUF = "application/x-recordio-protobuf"
PARQUET = "application/x-parquet"
JSONLINES = "application/jsonlines"
JSON = "application/json"

CANONICAL = (CSV, LIBSVM, RECORDIO_PROTOBUF, PARQUET, JSONLINES, JSON)

_ALIASES = {
    "csv": CSV,
    "text/csv": CSV,
    "libsvm": LIBSVM,
    "text/libsvm": LIBSVM,
    "text/x-libsvm": LIBSVM,
    "application/x-libsvm": LIBSVM,
    "parquet": PARQUET,
    "application/x-parquet": PARQUET,
    "recordio-protobuf": RECORDIO_PROTOBUF,
    "application/x-recordio-protobuf": RECORDIO_PROTOBUF,
    "jsonlines": JSONLINES,
    "application/jsonlines": JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "json": JSON,
    "application/json": JSON,
}


def parse_content_type(content_type: str) -> tuple[str, dict[str, str]]:
    """Split ``"text/csv; label_size=0"`` into ``("text/csv", {"label_size": "0"})``.

    The MIME type and parameter names are lower-cased (they are case-insensitive); parameter
    values keep their case, with surrounding quotes removed.
    """
    if not isinstance(content_type, str):
        raise ValueError(f"content type must be a string, got {type(content_type).__name__}")
    mime, *parts = content_type.split(";")
    params: dict[str, str] = {}
    for part in parts:
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"malformed parameter {part.strip()!r} in content type {content_type!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        params[key.strip().lower()] = value
    return mime.strip().lower(), params


def canonical_mime(content_type: str) -> str:
    """The canonical MIME type for ``content_type`` or one of its aliases; parameters dropped."""
    mime, _ = parse_content_type(content_type)
    try:
        return _ALIASES[mime]
    except KeyError:
        accepted = ", ".join(sorted(_ALIASES))
        raise ValueError(f"unsupported content type {content_type!r}; accepted: {accepted}") from None
