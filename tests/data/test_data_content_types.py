"""Content-type parsing and the aliases the SageMaker XGBoost container accepts."""

from __future__ import annotations

import pytest

from forgeml.data import (
    CSV,
    JSON,
    JSONLINES,
    LIBSVM,
    PARQUET,
    RECORDIO_PROTOBUF,
    canonical_mime,
    parse_content_type,
)


def test_parse_with_parameters() -> None:
    assert parse_content_type("text/csv; label_size=0") == ("text/csv", {"label_size": "0"})
    assert parse_content_type("TEXT/CSV;Label_Size=1;charset=\"UTF-8\"") == (
        "text/csv",
        {"label_size": "1", "charset": "UTF-8"},
    )
    assert parse_content_type("application/x-recordio-protobuf") == (RECORDIO_PROTOBUF, {})
    assert parse_content_type("text/csv;") == ("text/csv", {})
    with pytest.raises(ValueError, match="malformed parameter"):
        parse_content_type("text/csv; label_size")


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("csv", CSV),
        ("text/csv", CSV),
        ("text/csv;label_size=1", CSV),
        ("libsvm", LIBSVM),
        ("text/libsvm", LIBSVM),
        ("text/x-libsvm", LIBSVM),
        ("application/x-libsvm", LIBSVM),
        ("parquet", PARQUET),
        ("application/x-parquet", PARQUET),
        ("recordio-protobuf", RECORDIO_PROTOBUF),
        ("application/x-recordio-protobuf", RECORDIO_PROTOBUF),
        ("Application/X-RecordIO-Protobuf", RECORDIO_PROTOBUF),
        ("application/jsonlines", JSONLINES),
        ("application/json", JSON),
    ],
)
def test_aliases(alias: str, canonical: str) -> None:
    assert canonical_mime(alias) == canonical


def test_constants() -> None:
    assert (CSV, LIBSVM, RECORDIO_PROTOBUF, PARQUET, JSONLINES, JSON) == (
        "text/csv",
        "text/libsvm",
        "application/x-recordio-protobuf",
        "application/x-parquet",
        "application/jsonlines",
        "application/json",
    )


def test_unknown_content_type() -> None:
    with pytest.raises(ValueError, match="unsupported content type 'image/png'") as info:
        canonical_mime("image/png")
    assert "text/csv" in str(info.value)
