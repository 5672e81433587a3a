"""The List operations' query: name/status/time filters, a sort column, offset and limit.

Every resource table has ``name`` and ``creation_time``; ``status`` and ``last_modified_time``
filters apply where the table has those columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, asc, desc, func, select

from forgeml.store.database import Database


def list_rows(
    db: Database,
    table: Table,
    *,
    name_contains: str | None = None,
    status: str | None = None,
    created_after: float | None = None,
    created_before: float | None = None,
    modified_after: float | None = None,
    modified_before: float | None = None,
    extra: Sequence[ColumnElement[bool]] = (),
    sort_by: str = "CreationTime",
    ascending: bool = False,
    offset: int = 0,
    limit: int = 10,
) -> list[dict[str, Any]]:
    c = table.c
    conditions = list(extra)
    if name_contains:
        conditions.append(func.lower(c.name).contains(name_contains.lower(), autoescape=True))
    if status:
        conditions.append(c.status == status)
    for column, low, high in (("creation_time", created_after, created_before),
                              ("last_modified_time", modified_after, modified_before)):
        if low is not None:
            conditions.append(c[column] > low)
        if high is not None:
            conditions.append(c[column] < high)
    query = select(table)
    if conditions:
        query = query.where(and_(*conditions))
    sort_column = {"Name": c.name, "Status": c.get("status", c.creation_time)}.get(sort_by, c.creation_time)
    order = asc if ascending else desc
    query = query.order_by(order(sort_column), order(c.name)).offset(offset).limit(limit)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
