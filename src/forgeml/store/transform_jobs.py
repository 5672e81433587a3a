"""SQL for transform jobs and their log lines (log group ``/aws/sagemaker/TransformJobs``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from forgeml.store.database import Database
from forgeml.store.tables import log_events, transform_jobs

ACTIVE = ("InProgress", "Stopping")
TERMINAL = ("Completed", "Failed", "Stopped")
LOG_GROUP = "/aws/sagemaker/TransformJobs"


class DuplicateTransformJob(Exception):
    """A transform job of that name exists already."""


def insert_job(db: Database, row: dict[str, Any]) -> None:
    try:
        with db.write() as conn:
            conn.execute(insert(transform_jobs).values(**row))
    except IntegrityError as exc:
        raise DuplicateTransformJob(row["name"]) from exc


def get_job(db: Database, name: str) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(transform_jobs).where(transform_jobs.c.name == name)).mappings().first()
        return dict(row) if row else None


def set_status(db: Database, name: str, status: str, *, only_if: Sequence[str] | None = None, **fields: Any) -> bool:
    """Move a job to ``status`` (only from one of ``only_if`` when given); False if it was elsewhere."""
    condition = transform_jobs.c.name == name
    if only_if is not None:
        condition = and_(condition, transform_jobs.c.status.in_(list(only_if)))
    with db.write() as conn:
        result = conn.execute(update(transform_jobs).where(condition)
                              .values(status=status, last_modified_time=round(time.time(), 6), **fields))
        return bool(result.rowcount)


def update_fields(db: Database, name: str, **fields: Any) -> None:
    with db.write() as conn:
        conn.execute(update(transform_jobs).where(transform_jobs.c.name == name)
                     .values(last_modified_time=round(time.time(), 6), **fields))


def stop_requested(db: Database, name: str) -> bool:
    with db.read() as conn:
        return bool(conn.execute(select(transform_jobs.c.stop_requested)
                                 .where(transform_jobs.c.name == name)).scalar())


def append_logs(db: Database, lines: Sequence[tuple[str, float, str]]) -> None:
    """Log lines ``(stream, time, message)`` of transform jobs, in one transaction."""
    if not lines:
        return
    with db.write() as conn:
        conn.execute(insert(log_events), [{"log_group": LOG_GROUP, "log_stream": stream, "timestamp": stamp,
                                           "message": message} for stream, stamp, message in lines])


def read_logs(db: Database, job_name: str, after_id: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
    """The job's log events (every stream ``<job>/...``) after an id, in write order."""
    query = (
        select(log_events)
        .where(and_(log_events.c.log_group == LOG_GROUP,
                    log_events.c.log_stream.startswith(f"{job_name}/", autoescape=True),
                    log_events.c.id > after_id))
        .order_by(log_events.c.id)
        .limit(limit)
    )
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
