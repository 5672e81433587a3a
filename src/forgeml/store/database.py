"""Engine creation, SQLite tuning for several processes, and schema versioning."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select, update
from sqlalchemy.engine import make_url

from forgeml.store import tables

SCHEMA_VERSION = 1

# version -> upgrade step run inside one transaction. Version 1 is the initial create_all.
# A new version appends a step here (ALTER TABLE ... ADD COLUMN, a new table, a data fix), so an
# upgraded install keeps every record it had.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}


class Database:
    """One engine per process, with separate read and write transactions.

    SQLite runs in WAL mode (readers never block the writer) and write transactions start with
    ``BEGIN IMMEDIATE``, which takes the write lock up front: two processes that both read and then
    write can otherwise deadlock on lock upgrade, which ``busy_timeout`` does not resolve.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._lock_path: Path | None = None
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            database = parsed.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                self._lock_path = Path(database + ".schema-lock")
            kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            self._configure_sqlite(self.engine)
        self._pid = os.getpid()
        self._ensure_schema()

    @staticmethod
    def _configure_sqlite(engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event decide how each transaction starts.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            mode = "IMMEDIATE" if conn.get_execution_options().get("forgeml_write") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

    def after_fork(self) -> None:
        """Drop connections inherited from a parent process (they must not be shared)."""
        if os.getpid() != self._pid:
            self.engine.dispose(close=False)
            self._pid = os.getpid()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        self.after_fork()
        with self.engine.connect().execution_options(forgeml_write=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        self.after_fork()
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        """Serialise schema creation between processes that open a fresh SQLite file at once."""
        if self._lock_path is None:
            yield
            return
        with open(self._lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _ensure_schema(self) -> None:
        with self._schema_lock():
            tables.metadata.create_all(self.engine, checkfirst=True)
            with self.write() as conn:
                current = conn.execute(select(tables.schema_version.c.version)).scalar()
                if current is None:
                    conn.execute(insert(tables.schema_version).values(id=1, version=SCHEMA_VERSION))
                    return
                if current > SCHEMA_VERSION:
                    raise RuntimeError(
                        f"the metadata store at {self.url} has schema version {current}, newer than "
                        f"this forgeml ({SCHEMA_VERSION}); upgrade forgeml"
                    )
                for version in range(current + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[version](conn)
                if current < SCHEMA_VERSION:
                    conn.execute(update(tables.schema_version).values(version=SCHEMA_VERSION))

    def schema_version(self) -> int:
        with self.read() as conn:
            return int(conn.execute(select(tables.schema_version.c.version)).scalar_one())
