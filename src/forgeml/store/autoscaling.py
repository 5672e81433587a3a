"""SQL for Application Auto Scaling: scalable targets, their scaling policies and scaling activities.

A target is keyed by (resource_id, scalable_dimension); a policy by that pair and its name. Removing
a target removes its policies in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, desc, func, insert, select, update

from forgeml.store.database import Database
from forgeml.store.tables import scalable_targets, scaling_activities, scaling_policies


def _key(table: Any, resource_id: str, dimension: str) -> ColumnElement[bool]:
    return and_(table.c.resource_id == resource_id, table.c.scalable_dimension == dimension)


def _resource_filter(table: Any, resource_ids: Sequence[str] | None, dimension: str | None,
                     resource_prefix: str | None = None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if resource_ids is not None:
        conditions.append(table.c.resource_id.in_(list(resource_ids)))
    if dimension is not None:
        conditions.append(table.c.scalable_dimension == dimension)
    if resource_prefix is not None:
        conditions.append(func.substr(table.c.resource_id, 1, len(resource_prefix)) == resource_prefix)
    return conditions


# -- scalable targets ---------------------------------------------------------------------------
def put_target(db: Database, resource_id: str, dimension: str, request: dict[str, Any], now: float) -> None:
    """Register a target, or replace a registered one's request and keep its creation time."""
    with db.write() as conn:
        key = _key(scalable_targets, resource_id, dimension)
        if conn.execute(select(scalable_targets.c.resource_id).where(key)).first():
            conn.execute(update(scalable_targets).where(key).values(request=request))
        else:
            conn.execute(insert(scalable_targets).values(resource_id=resource_id, scalable_dimension=dimension,
                                                         creation_time=now, request=request))


def get_target(db: Database, resource_id: str, dimension: str) -> dict[str, Any] | None:
    with db.read() as conn:
        query = select(scalable_targets).where(_key(scalable_targets, resource_id, dimension))
        row = conn.execute(query).mappings().first()
        return dict(row) if row else None


def list_targets(db: Database, *, resource_ids: Sequence[str] | None = None, dimension: str | None = None,
                 resource_prefix: str | None = None, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    query = select(scalable_targets)
    conditions = _resource_filter(scalable_targets, resource_ids, dimension, resource_prefix)
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(scalable_targets.c.resource_id, scalable_targets.c.scalable_dimension).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def delete_target(db: Database, resource_id: str, dimension: str) -> bool:
    """Deregister a target and delete its scaling policies; False if it was not registered."""
    with db.write() as conn:
        conn.execute(delete(scaling_policies).where(_key(scaling_policies, resource_id, dimension)))
        removed = conn.execute(delete(scalable_targets).where(_key(scalable_targets, resource_id, dimension)))
        return bool(removed.rowcount)


# -- scaling policies ---------------------------------------------------------------------------
def put_policy(db: Database, resource_id: str, dimension: str, name: str, arn: str, request: dict[str, Any],
               now: float) -> str:
    """Create a policy, or replace an existing one's request; the policy's ARN (an existing one keeps its own)."""
    with db.write() as conn:
        key = and_(_key(scaling_policies, resource_id, dimension), scaling_policies.c.policy_name == name)
        existing = conn.execute(select(scaling_policies.c.arn).where(key)).scalar()
        if existing is not None:
            conn.execute(update(scaling_policies).where(key).values(request=request))
            return str(existing)
        conn.execute(insert(scaling_policies).values(resource_id=resource_id, scalable_dimension=dimension,
                                                     policy_name=name, arn=arn, creation_time=now, request=request))
        return arn


def list_policies(db: Database, *, resource_ids: Sequence[str] | None = None, dimension: str | None = None,
                  names: Sequence[str] | None = None, resource_prefix: str | None = None, offset: int = 0,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """Policies in creation order (so a target's first policy comes first)."""
    query = select(scaling_policies)
    conditions = _resource_filter(scaling_policies, resource_ids, dimension, resource_prefix)
    if names is not None:
        conditions.append(scaling_policies.c.policy_name.in_(list(names)))
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(scaling_policies.c.creation_time, scaling_policies.c.policy_name).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def delete_policy(db: Database, resource_id: str, dimension: str, name: str) -> bool:
    with db.write() as conn:
        key = and_(_key(scaling_policies, resource_id, dimension), scaling_policies.c.policy_name == name)
        return bool(conn.execute(delete(scaling_policies).where(key)).rowcount)


# -- scaling activities -------------------------------------------------------------------------
def add_activity(db: Database, row: dict[str, Any]) -> None:
    with db.write() as conn:
        conn.execute(insert(scaling_activities).values(**row))


def list_activities(db: Database, *, resource_id: str | None = None, dimension: str | None = None, offset: int = 0,
                    limit: int | None = None) -> list[dict[str, Any]]:
    """Activities newest first."""
    query = select(scaling_activities)
    conditions = _resource_filter(scaling_activities, [resource_id] if resource_id is not None else None, dimension)
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(desc(scaling_activities.c.id)).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
