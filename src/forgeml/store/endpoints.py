"""SQL for endpoints. The control plane writes requests (update, delete); the host writes state."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from forgeml.store.database import Database
from forgeml.store.tables import endpoints, log_events

LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"

#: statuses in which a host process should be running
HOSTED = ("Creating", "InService", "Updating", "SystemUpdating", "RollingBack", "Deleting")


class DuplicateEndpoint(Exception):
    """An endpoint of that name exists already."""


def insert_endpoint(db: Database, row: dict[str, Any]) -> None:
    try:
        with db.write() as conn:
            conn.execute(insert(endpoints).values(**row))
    except IntegrityError as exc:
        raise DuplicateEndpoint(row["name"]) from exc


def get_endpoint(db: Database, name: str) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(endpoints).where(endpoints.c.name == name)).mappings().first()
        return dict(row) if row else None


def update_endpoint(db: Database, name: str, *, only_if: Sequence[str] | None = None, **fields: Any) -> bool:
    """Set ``fields`` (and LastModifiedTime when the status changes); False if the row or status did not match."""
    condition = endpoints.c.name == name
    if only_if is not None:
        condition = and_(condition, endpoints.c.status.in_(list(only_if)))
    if "status" in fields:
        fields.setdefault("last_modified_time", time.time())
    with db.write() as conn:
        return bool(conn.execute(update(endpoints).where(condition).values(**fields)).rowcount)


def delete_endpoint(db: Database, name: str) -> bool:
    with db.write() as conn:
        return bool(conn.execute(delete(endpoints).where(endpoints.c.name == name)).rowcount)


def log_group(endpoint_name: str) -> str:
    """SageMaker's log group for an endpoint (streams are ``<variant>/<instance id>``)."""
    return f"{LOG_GROUP_PREFIX}{endpoint_name}"


def append_logs(db: Database, endpoint_name: str, lines: Sequence[tuple[str, float, str]]) -> None:
    """An endpoint's worker output ``(stream, time, message)``, in one transaction."""
    if lines:
        group = log_group(endpoint_name)
        with db.write() as conn:
            conn.execute(insert(log_events), [{"log_group": group, "log_stream": stream, "timestamp": stamp,
                                               "message": message} for stream, stamp, message in lines])


def read_logs(db: Database, endpoint_name: str, after_id: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
    """The endpoint's log events after an id, in write order."""
    query = (select(log_events)
             .where(and_(log_events.c.log_group == log_group(endpoint_name), log_events.c.id > after_id))
             .order_by(log_events.c.id).limit(limit))
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
