"""The local executor: each job's runner is a detached process on this machine.

Liveness is a file lock per job that the runner holds for its whole life: the creating process
takes it before the job's record exists and hands the open descriptor to the runner, so there is no
moment when a live job looks dead, and a killed runner releases it at once. Concurrency is a pool
of slot locks shared by every process using the same FORGEML_HOME: a runner that finds no free slot
waits, which queues jobs beyond the pool size without a central scheduler.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from forgeml.executors import zygote
from forgeml.executors.base import ENDPOINT, TRAINING, TRANSFORM, TUNING, Executor
from forgeml.store import tables

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

LOCK_FD_VARIABLE = "FORGEML_JOB_LOCK_FD"
#: where each kind of runner records its process id
RUNNER_TABLES = {TRAINING: tables.training_jobs, TUNING: tables.tuning_jobs, ENDPOINT: tables.endpoints,
                 TRANSFORM: tables.transform_jobs}


class LocalExecutor(Executor):
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.config = platform.config
        self._reserved: dict[str, int] = {}
        self.use_zygote = os.environ.get("FORGEML_ZYGOTE", "1") != "0"

    def _lock_path(self, name: str, kind: str) -> Path:
        folder = self.config.locks_dir / kind
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}.lock"

    @contextmanager
    def reserve(self, name: str, kind: str = TRAINING) -> Iterator[None]:
        job_name = f"{kind}/{name}"
        fd = os.open(self._lock_path(name, kind), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise
        self._reserved[job_name] = fd
        try:
            yield
        finally:
            self._reserved.pop(job_name, None)
            os.close(fd)  # the runner, if launched, holds its own copy of the lock

    def launch(self, name: str, kind: str = TRAINING) -> None:
        fd = self._reserved[f"{kind}/{name}"]
        log_dir = self.config.jobs_dir / name if kind == TRAINING else self.config.home / kind / name
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.config.to_env()}
        if self.use_zygote:
            if zygote.request_launch(kind, name, fd, env, log_dir / "runner.log") is not None:
                return
            zygote.start_in_background()  # for the next job; this one starts the slow way
        with open(log_dir / "runner.log", "ab") as log:
            subprocess.Popen(
                [sys.executable, "-m", "forgeml.executors.local_worker", kind, name],
                env={**env, LOCK_FD_VARIABLE: str(fd)}, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(fd,), start_new_session=True, close_fds=True,
            )

    def stop(self, name: str, kind: str = TRAINING) -> None:
        pid = self._runner_pid(name, kind)
        if pid and self.is_alive(name, kind):
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGUSR1)

    def _runner_pid(self, name: str, kind: str) -> int | None:
        table = RUNNER_TABLES[kind]
        with self.platform.db.read() as conn:
            pid = conn.execute(select(table.c.runner_pid).where(table.c.name == name)).scalar()
        return int(pid) if pid else None

    def is_alive(self, name: str, kind: str = TRAINING) -> bool:
        if f"{kind}/{name}" in self._reserved:
            return True
        path = self._lock_path(name, kind)
        if not path.exists():
            return False
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing also releases a lock we took
        return False


@contextmanager
def job_slot(locks_dir: Path, size: int, should_give_up: Callable[[], bool], poll: float = 0.05) -> Iterator[bool]:
    """Hold one of ``size`` slot locks for the job's lifetime; yields False if told to give up first."""
    folder = locks_dir / "slots"
    folder.mkdir(parents=True, exist_ok=True)
    fd = -1
    while fd < 0:
        for index in range(size):
            candidate = os.open(folder / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(candidate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(candidate)
                continue
            fd = candidate
            break
        if fd < 0:
            if should_give_up():
                yield False
                return
            time.sleep(poll)
    try:
        yield True
    finally:
        os.close(fd)
