"""Artifact store (S3 URIs on a local folder) and metadata store (schema versioning)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from forgeml import Session, ValidationException
from forgeml.store import Database, tables


def test_upload_download_and_default_bucket(session: Session, tmp_path: Path) -> None:
    assert session.default_bucket() == "sagemaker-us-east-1-000000000000"
    file = tmp_path / "data.csv"
    file.write_text("1,2\n")
    uri = session.upload_data(str(file), key_prefix="some/prefix")
    assert uri == "s3://sagemaker-us-east-1-000000000000/some/prefix/data.csv"
    assert (session.config.local_s3_root / "sagemaker-us-east-1-000000000000/some/prefix/data.csv").read_text() == "1,2\n"
    downloaded = session.download_data(str(tmp_path / "back"), session.default_bucket(), "some/prefix")
    assert [Path(p).read_text() for p in downloaded] == ["1,2\n"]


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/absolute", "a/./b"])
def test_keys_cannot_escape_their_bucket(session: Session, key: str) -> None:
    with pytest.raises(ValidationException, match="key"):
        session.platform.artifacts.put_bytes(b"x", f"s3://bucket-one/{key}")
    assert not (session.config.home / "escape").exists()


def test_bad_bucket_names(session: Session) -> None:
    with pytest.raises(ValidationException, match="bucket name"):
        session.platform.artifacts.put_bytes(b"x", "s3://UPPER_case/key")


def test_prefix_listing_matches_key_prefixes(session: Session) -> None:
    store = session.platform.artifacts
    for key in ("data/train/a.csv", "data/train/b.csv", "data/training-extra/c.csv", "data/validation/v.csv"):
        store.put_bytes(b"1", f"s3://bucket-one/{key}")
    names = [o.relative_name for o in store.list_objects("s3://bucket-one/data/train/")]
    assert names == ["a.csv", "b.csv"]
    both = [o.uri for o in store.list_objects("s3://bucket-one/data/train")]
    assert both == ["s3://bucket-one/data/train/a.csv", "s3://bucket-one/data/train/b.csv",
                    "s3://bucket-one/data/training-extra/c.csv"]


def test_schema_version_is_recorded_and_checked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    db = Database(url)
    from forgeml.store.database import SCHEMA_VERSION

    assert db.schema_version() == SCHEMA_VERSION
    Database(url)  # opening again keeps the version and the data
    with db.write() as conn:
        conn.execute(update(tables.schema_version).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(RuntimeError, match="newer than this forgeml"):
        Database(url)


def test_session_text_helpers_and_client_capabilities(session: Session) -> None:
    uri = session.upload_string_as_file_body("hello", session.default_bucket(), "notes/hello.txt")
    assert uri == f"s3://{session.default_bucket()}/notes/hello.txt"
    assert session.read_s3_file(session.default_bucket(), "notes/hello.txt") == "hello"
    assert session.sagemaker_client.can_paginate("list_training_jobs")
    assert not session.sagemaker_client.can_paginate("describe_training_job")
