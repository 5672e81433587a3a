"""SQL for training jobs: the only module that reads or writes their tables.

Both the control plane (create, describe, list, stop) and the job runner (status transitions,
logs, metrics) go through these functions, so every state change is one small transaction.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, desc, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from forgeml.store.database import Database
from forgeml.store.listing import list_rows
from forgeml.store.tables import log_events, metric_points, status_transitions, training_jobs

ACTIVE_STATUSES = ("InProgress", "Stopping")
TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")
LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class DuplicateJob(Exception):
    """A training job of that name exists already."""


def insert_job(db: Database, row: dict[str, Any], first_transition: tuple[str, str]) -> None:
    """Insert a new job with its first status transition; DuplicateJob if the name is taken."""
    try:
        with db.write() as conn:
            conn.execute(insert(training_jobs).values(**row))
            conn.execute(
                insert(status_transitions).values(
                    job_name=row["name"], status=first_transition[0], message=first_transition[1],
                    start_time=row["creation_time"],
                )
            )
    except IntegrityError as exc:
        raise DuplicateJob(row["name"]) from exc


def get_job(db: Database, name: str) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(training_jobs).where(training_jobs.c.name == name)).mappings().first()
        return dict(row) if row else None


def get_transitions(db: Database, name: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(status_transitions).where(status_transitions.c.job_name == name).order_by(status_transitions.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def transition(
    db: Database,
    name: str,
    status: str,
    secondary: str,
    message: str,
    *,
    only_if_status: Sequence[str] | None = None,
    **fields: Any,
) -> bool:
    """Move a job to (status, secondary) with a new transition entry, in one transaction.

    ``only_if_status`` makes the move conditional (returns False when the job is elsewhere), which
    is how the runner and the control plane avoid overwriting each other's final state.
    """
    now = round(time.time(), 6)
    with db.write() as conn:
        condition = training_jobs.c.name == name
        if only_if_status is not None:
            condition = and_(condition, training_jobs.c.status.in_(list(only_if_status)))
        result = conn.execute(
            update(training_jobs)
            .where(condition)
            .values(status=status, secondary_status=secondary, last_modified_time=now, **fields)
        )
        if result.rowcount == 0:
            return False
        last = conn.execute(
            select(status_transitions.c.id, status_transitions.c.status, status_transitions.c.message)
            .where(status_transitions.c.job_name == name)
            .order_by(desc(status_transitions.c.id))
            .limit(1)
        ).first()
        if last is not None and (last.status, last.message) == (secondary, message):
            return True
        if last is not None:
            conn.execute(update(status_transitions).where(status_transitions.c.id == last.id).values(end_time=now))
        end = now if status in TERMINAL_STATUSES else None
        conn.execute(
            insert(status_transitions).values(job_name=name, status=secondary, message=message, start_time=now, end_time=end)
        )
        return True


def update_fields(db: Database, name: str, **fields: Any) -> None:
    with db.write() as conn:
        conn.execute(update(training_jobs).where(training_jobs.c.name == name).values(last_modified_time=time.time(), **fields))


def request_stop(db: Database, name: str) -> bool:
    """Mark an active job Stopping; False if it is not active any more."""
    return transition(
        db, name, "Stopping", "Stopping", "Stopping the training job",
        only_if_status=("InProgress",), stop_requested=True,
    )


def stop_requested(db: Database, name: str) -> bool:
    with db.read() as conn:
        return bool(conn.execute(select(training_jobs.c.stop_requested).where(training_jobs.c.name == name)).scalar())


def list_jobs(
    db: Database,
    *,
    name_contains: str | None = None,
    status: str | None = None,
    created_after: float | None = None,
    created_before: float | None = None,
    modified_after: float | None = None,
    modified_before: float | None = None,
    tuning_job_name: str | None = None,
    sort_by: str = "CreationTime",
    ascending: bool = False,
    offset: int = 0,
    limit: int = 10,
) -> list[dict[str, Any]]:
    extra = [training_jobs.c.tuning_job_name == tuning_job_name] if tuning_job_name is not None else []
    return list_rows(db, training_jobs, name_contains=name_contains, status=status, created_after=created_after,
                     created_before=created_before, modified_after=modified_after, modified_before=modified_before,
                     extra=extra, sort_by=sort_by, ascending=ascending, offset=offset, limit=limit)


def append_output(db: Database, job_name: str, lines: Sequence[tuple[str, float, str]],
                  points: Sequence[tuple[str, float, float]]) -> None:
    """A batch of a job's log lines (stream, time, message) and metric points, in one transaction."""
    if not lines and not points:
        return
    with db.write() as conn:
        if lines:
            conn.execute(insert(log_events), [{"log_group": LOG_GROUP, "log_stream": stream, "timestamp": stamp,
                                               "message": message} for stream, stamp, message in lines])
        if points:
            conn.execute(insert(metric_points), [{"job_name": job_name, "metric_name": name, "value": value,
                                                  "timestamp": stamp} for name, value, stamp in points])


def metric_series(db: Database, name: str, metric: str | None = None) -> list[dict[str, Any]]:
    query = select(metric_points).where(metric_points.c.job_name == name)
    if metric is not None:
        query = query.where(metric_points.c.metric_name == metric)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query.order_by(metric_points.c.id)).mappings()]


def final_metrics(db: Database, name: str) -> list[dict[str, Any]]:
    """The latest value of each metric (SageMaker's FinalMetricDataList)."""
    latest = (
        select(func.max(metric_points.c.id).label("id"))
        .where(metric_points.c.job_name == name)
        .group_by(metric_points.c.metric_name)
        .subquery()
    )
    query = select(metric_points).join(latest, metric_points.c.id == latest.c.id).order_by(metric_points.c.metric_name)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def log_streams(db: Database, prefix: str) -> list[dict[str, Any]]:
    query = (
        select(
            log_events.c.log_stream,
            func.min(log_events.c.timestamp).label("first"),
            func.max(log_events.c.timestamp).label("last"),
            func.count().label("count"),
        )
        .where(and_(log_events.c.log_group == LOG_GROUP, log_events.c.log_stream.startswith(prefix, autoescape=True)))
        .group_by(log_events.c.log_stream)
        .order_by(log_events.c.log_stream)
    )
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def read_logs(db: Database, stream_prefix: str, after_id: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
    """Log events of every stream starting with ``stream_prefix``, in write order, after an id."""
    query = (
        select(log_events)
        .where(
            and_(
                log_events.c.log_group == LOG_GROUP,
                log_events.c.log_stream.startswith(stream_prefix, autoescape=True),
                log_events.c.id > after_id,
            )
        )
        .order_by(log_events.c.id)
        .limit(limit)
    )
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
