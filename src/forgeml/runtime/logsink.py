"""Job output to the log store, in batches: a chatty job must not cost one transaction per line."""

from __future__ import annotations

import threading
import time

from forgeml.runtime.metrics import MetricExtractor
from forgeml.store import training_jobs as repo
from forgeml.store.database import Database


class LogSink:
    """Collects lines from the job's processes; ``flush`` writes them (and their metrics) at once."""

    def __init__(self, db: Database, job_name: str, extractor: MetricExtractor, *, max_pending: int = 500) -> None:
        self.db = db
        self.job_name = job_name
        self.extractor = extractor
        self.max_pending = max_pending
        self._lines: list[tuple[str, float, str]] = []
        self._points: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def add(self, stream: str, line: str) -> None:
        now = time.time()
        line = line.rstrip("\n")
        with self._lock:
            self._lines.append((stream, now, line))
            self._points.extend(self.extractor.scan(line, now))
            full = len(self._lines) >= self.max_pending
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, points = self._lines, self._points
            self._lines, self._points = [], []
        repo.append_output(self.db, self.job_name, lines, points)
