"""SQL over the ``log_events`` table for CloudWatch Logs-style reads across a log group.

The per-resource stores (training jobs, transform jobs, endpoints) write and tail one resource's
lines; these reads serve the Logs API, which filters a whole group by stream, time window, event
id and text. Timestamps here are epoch seconds, as stored; event ids are the table's ids, which
grow in write order and so serve as cursors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, asc, desc, func, select

from forgeml.store.database import Database
from forgeml.store.tables import log_events


@dataclass(frozen=True)
class EventQuery:
    """Which events of a group to read; every member left None does not narrow the read."""

    group: str
    streams: Sequence[str] | None = None
    stream_prefix: str | None = None
    after_id: int | None = None
    before_id: int | None = None
    start: float | None = None  # inclusive, epoch seconds
    end: float | None = None  # exclusive, epoch seconds
    text: str | None = None  # case-sensitive substring of the message


def stream_summaries(db: Database, group: str, prefix: str, *, by_last_event: bool, descending: bool,
                     offset: int, count: int) -> list[dict[str, Any]]:
    """Streams of ``group`` named ``prefix...``: ``log_stream``, ``first``/``last`` event time, ``size`` in bytes."""
    c = log_events.c
    last = func.max(c.timestamp)
    query = (select(c.log_stream, func.min(c.timestamp).label("first"), last.label("last"),
                    func.sum(func.length(c.message)).label("size"))
             .where(and_(c.log_group == group, c.log_stream.startswith(prefix, autoescape=True)))
             .group_by(c.log_stream))
    order = desc if descending else asc
    query = query.order_by(order(last), order(c.log_stream)) if by_last_event else query.order_by(order(c.log_stream))
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query.offset(offset).limit(count)).mappings()]


def stream_exists(db: Database, group: str, stream: str) -> bool:
    """Whether the stream has at least one event (streams exist only through their events)."""
    c = log_events.c
    with db.read() as conn:
        return conn.execute(select(c.id).where(c.log_group == group, c.log_stream == stream).limit(1)).first() is not None


def read_events(db: Database, query: EventQuery, limit: int, *, newest_first: bool = False) -> list[dict[str, Any]]:
    """Up to ``limit`` events in write order; ``newest_first`` takes them from the end (still returned oldest first)."""
    order = desc if newest_first else asc
    statement = (select(log_events).where(and_(*_conditions(db, query)))
                 .order_by(order(log_events.c.id)).limit(limit))
    with db.read() as conn:
        rows = [dict(r) for r in conn.execute(statement).mappings()]
    return rows[::-1] if newest_first else rows


def _conditions(db: Database, query: EventQuery) -> list[ColumnElement[bool]]:
    c = log_events.c
    conditions: list[ColumnElement[bool]] = [c.log_group == query.group]
    if query.streams is not None:
        conditions.append(c.log_stream.in_(list(query.streams)))
    if query.stream_prefix:
        conditions.append(c.log_stream.startswith(query.stream_prefix, autoescape=True))
    if query.after_id is not None:
        conditions.append(c.id > query.after_id)
    if query.before_id is not None:
        conditions.append(c.id < query.before_id)
    if query.start is not None:
        conditions.append(c.timestamp >= query.start)
    if query.end is not None:
        conditions.append(c.timestamp < query.end)
    if query.text:
        conditions.append(_text_contains(db, query.text))
    return conditions


def _text_contains(db: Database, text: str) -> ColumnElement[bool]:
    """Case-sensitive substring match (SQLite's LIKE ignores case)."""
    message = log_events.c.message
    position = func.instr(message, text) if db.is_sqlite else func.strpos(message, text)
    return position > 0
