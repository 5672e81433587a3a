"""SQL for models (CreateModel records: containers, model data, environment)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, asc, delete, desc, func, insert, select
from sqlalchemy.exc import IntegrityError

from forgeml.store.database import Database
from forgeml.store.tables import models


class DuplicateModel(Exception):
    """A model of that name exists already."""


def insert_model(db: Database, row: dict[str, Any]) -> None:
    try:
        with db.write() as conn:
            conn.execute(insert(models).values(**row))
    except IntegrityError as exc:
        raise DuplicateModel(row["name"]) from exc


def get_model(db: Database, name: str) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(models).where(models.c.name == name)).mappings().first()
        return dict(row) if row else None


def delete_model(db: Database, name: str) -> bool:
    with db.write() as conn:
        return bool(conn.execute(delete(models).where(models.c.name == name)).rowcount)


def list_models(db: Database, *, name_contains: str | None, created_after: float | None,
                created_before: float | None, sort_by: str, ascending: bool, offset: int, limit: int) -> list[dict[str, Any]]:
    conditions = []
    if name_contains:
        conditions.append(func.lower(models.c.name).contains(name_contains.lower(), autoescape=True))
    if created_after is not None:
        conditions.append(models.c.creation_time > created_after)
    if created_before is not None:
        conditions.append(models.c.creation_time < created_before)
    query = select(models)
    if conditions:
        query = query.where(and_(*conditions))
    column = models.c.name if sort_by == "Name" else models.c.creation_time
    order = asc if ascending else desc
    with db.read() as conn:
        rows = conn.execute(query.order_by(order(column), order(models.c.name)).offset(offset).limit(limit)).mappings()
        return [dict(r) for r in rows]
