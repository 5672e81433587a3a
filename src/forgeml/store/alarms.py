"""SQL for CloudWatch metric alarms (PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState).

CloudWatch alarms have no creation time, only ``AlarmConfigurationUpdatedTimestamp``: the table's
``creation_time`` column holds that, the time of the last PutMetricAlarm of the name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, select, update

from forgeml.store.database import Database
from forgeml.store.tables import metric_alarms


def put_alarm(db: Database, name: str, arn: str, request: dict[str, Any], now: float,
              initial_state: str, initial_reason: str) -> None:
    """Insert a new alarm, or replace an existing one's configuration and keep its state."""
    with db.write() as conn:
        exists = conn.execute(select(metric_alarms.c.name).where(metric_alarms.c.name == name)).first()
        if exists:
            conn.execute(update(metric_alarms).where(metric_alarms.c.name == name)
                         .values(arn=arn, request=request, creation_time=now))
        else:
            conn.execute(insert(metric_alarms).values(name=name, arn=arn, request=request, creation_time=now,
                                                      state=initial_state, state_reason=initial_reason,
                                                      state_updated=now))


def get_alarm(db: Database, name: str) -> dict[str, Any] | None:
    with db.read() as conn:
        row = conn.execute(select(metric_alarms).where(metric_alarms.c.name == name)).mappings().first()
        return dict(row) if row else None


def _conditions(names: Sequence[str] | None, prefix: str | None, state: str | None) -> list[ColumnElement[bool]]:
    c = metric_alarms.c
    conditions: list[ColumnElement[bool]] = []
    if names is not None:
        conditions.append(c.name.in_(list(names)))
    if prefix:
        conditions.append(func.substr(c.name, 1, len(prefix)) == prefix)
    if state:
        conditions.append(c.state == state)
    return conditions


def list_alarms(db: Database, *, names: Sequence[str] | None = None, prefix: str | None = None,
                state: str | None = None, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """Alarms in name order (as DescribeAlarms lists them); every one from ``offset`` when ``limit`` is None."""
    query = select(metric_alarms)
    conditions = _conditions(names, prefix, state)
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(metric_alarms.c.name).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def delete_alarms(db: Database, names: Sequence[str]) -> int:
    with db.write() as conn:
        return int(conn.execute(delete(metric_alarms).where(metric_alarms.c.name.in_(list(names)))).rowcount)


def set_state(db: Database, name: str, state: str, reason: str, now: float, *, only_if_changed: bool = False) -> bool:
    """Write an alarm's state; with ``only_if_changed``, only when StateValue differs. True if written."""
    condition = metric_alarms.c.name == name
    if only_if_changed:
        condition = and_(condition, metric_alarms.c.state != state)
    with db.write() as conn:
        result = conn.execute(update(metric_alarms).where(condition)
                              .values(state=state, state_reason=reason, state_updated=now))
        return bool(result.rowcount)
