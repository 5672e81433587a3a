"""SQL for records that are created, described, listed and deleted whole: models and endpoint configs.

Both tables have the same shape (name, arn, creation_time, request), so one set of functions serves
both; the table is the first argument.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.exc import IntegrityError

from forgeml.store.database import Database
from forgeml.store.tables import endpoint_configs, models

__all__ = ["endpoint_configs", "models"]


class DuplicateRecord(Exception):
    """A record of that name exists already."""


def insert_record(db: Database, table: Table, row: dict[str, Any]) -> None:
    try:
        with db.write() as conn:
            conn.execute(insert(table).values(**row))
    except IntegrityError as exc:
        raise DuplicateRecord(row["name"]) from exc


def get_record(db: Database, table: Table, name: str) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(table).where(table.c.name == name)).mappings().first()
        return dict(row) if row else None


def delete_record(db: Database, table: Table, name: str) -> bool:
    with db.write() as conn:
        return bool(conn.execute(delete(table).where(table.c.name == name)).rowcount)
