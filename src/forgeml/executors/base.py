"""The executor interface: where and how a job's runner process runs.

The service layer only calls these four methods, so a Ray executor drops in beside the local one
without touching it: ``reserve`` guards the gap between recording a job and its runner starting,
``launch`` starts the runner, ``stop`` asks it to stop now, ``is_alive`` tells a running job from
one whose runner died (which the service then marks Failed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager


class Executor(ABC):
    @abstractmethod
    def reserve(self, job_name: str) -> AbstractContextManager[None]:
        """Mark ``job_name`` as alive until ``launch`` hands it to its runner (or the block fails)."""

    @abstractmethod
    def launch(self, job_name: str) -> None:
        """Start the job's runner; returns at once."""

    @abstractmethod
    def stop(self, job_name: str) -> None:
        """Wake the runner so it sees the stop request now (it also polls the store)."""

    @abstractmethod
    def is_alive(self, job_name: str) -> bool:
        """Whether the job's runner is still running."""
