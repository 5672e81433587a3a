"""Metadata store: every resource is a row with a state machine (SQLite by default, any SQLAlchemy URL)."""

from forgeml.store.database import Database

__all__ = ["Database"]
