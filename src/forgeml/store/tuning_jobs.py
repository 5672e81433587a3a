"""SQL for tuning jobs and their trials (the training jobs a tuning job launched)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from forgeml.store.database import Database
from forgeml.store.tables import tuning_jobs, tuning_trials

ACTIVE = ("InProgress", "Stopping")
TERMINAL = ("Completed", "Failed", "Stopped")


class DuplicateTuningJob(Exception):
    """A tuning job of that name exists already."""


def insert_tuning_job(db: Database, row: dict[str, Any]) -> None:
    try:
        with db.write() as conn:
            conn.execute(insert(tuning_jobs).values(**row))
    except IntegrityError as exc:
        raise DuplicateTuningJob(row["name"]) from exc


def get_tuning_job(db: Database, name: str) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(tuning_jobs).where(tuning_jobs.c.name == name)).mappings().first()
        return dict(row) if row else None


def set_status(db: Database, name: str, status: str, *, only_if: Sequence[str] | None = None, **fields: Any) -> bool:
    condition = tuning_jobs.c.name == name
    if only_if is not None:
        condition = and_(condition, tuning_jobs.c.status.in_(list(only_if)))
    with db.write() as conn:
        result = conn.execute(update(tuning_jobs).where(condition)
                              .values(status=status, last_modified_time=time.time(), **fields))
        return bool(result.rowcount)


def update_fields(db: Database, name: str, **fields: Any) -> None:
    with db.write() as conn:
        conn.execute(update(tuning_jobs).where(tuning_jobs.c.name == name).values(last_modified_time=time.time(), **fields))


def add_trial(db: Database, row: dict[str, Any]) -> None:
    with db.write() as conn:
        conn.execute(insert(tuning_trials).values(**row))


def trials(db: Database, tuning_job_name: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(select(tuning_trials).where(tuning_trials.c.tuning_job_name == tuning_job_name)
                            .order_by(tuning_trials.c.number)).mappings()
        return [dict(r) for r in rows]


def set_trial_objective(db: Database, training_job_name: str, status: str, value: float | None) -> None:
    with db.write() as conn:
        conn.execute(update(tuning_trials).where(tuning_trials.c.training_job_name == training_job_name)
                     .values(objective_status=status, objective_value=value))
