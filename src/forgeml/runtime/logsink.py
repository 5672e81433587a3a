"""Job output to the log store, in batches: a chatty job must not cost one transaction per line."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from forgeml.runtime.metrics import MetricExtractor
from forgeml.store import training_jobs as repo
from forgeml.store.database import Database

LineListener = Callable[[str], None]


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
        self.tail: list[str] = []  # the last lines, for a FailureReason when the process dies silently
        self.listeners: list[LineListener] = []

    def add(self, stream: str, line: str) -> None:
        now = time.time()
        line = line.rstrip("\n")
        with self._lock:
            self._lines.append((stream, now, line))
            self._points.extend(self.extractor.scan(line, now))
            self.tail = (self.tail + [line])[-30:]
            full = len(self._lines) >= self.max_pending
        for listener in self.listeners:
            listener(line)
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, points = self._lines, self._points
            self._lines, self._points = [], []
        by_stream: dict[str, list[tuple[float, str]]] = {}
        for stream, stamp, line in lines:
            by_stream.setdefault(stream, []).append((stamp, line))
        for stream, events in by_stream.items():
            repo.append_logs(self.db, stream, events)
        repo.append_metrics(self.db, self.job_name, points)
