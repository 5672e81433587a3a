"""SQL for records that are created, described, listed and deleted whole: models and endpoint configs.

Both tables have the same shape (name, arn, creation_time, request), so one set of functions serves
both; the table is the first argument.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, and_, asc, delete, desc, func, insert, select
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


def list_records(db: Database, table: Table, *, name_contains: str | None, created_after: float | None,
                 created_before: float | None, sort_by: str, ascending: bool, offset: int,
                 limit: int) -> list[dict[str, Any]]:
    conditions = []
    if name_contains:
        conditions.append(func.lower(table.c.name).contains(name_contains.lower(), autoescape=True))
    if created_after is not None:
        conditions.append(table.c.creation_time > created_after)
    if created_before is not None:
        conditions.append(table.c.creation_time < created_before)
    query = select(table)
    if conditions:
        query = query.where(and_(*conditions))
    column = table.c.name if sort_by == "Name" else table.c.creation_time
    order = asc if ascending else desc
    with db.read() as conn:
        rows = conn.execute(query.order_by(order(column), order(table.c.name)).offset(offset).limit(limit)).mappings()
        return [dict(r) for r in rows]
