"""The executor interface: where and how a job's runner process runs.

The service layer only calls these four methods, so a Ray executor drops in beside the local one
without touching it: ``reserve`` guards the gap between recording a job and its runner starting,
``launch`` starts the runner, ``stop`` asks it to stop now, ``is_alive`` tells a running job from
one whose runner died (which the service then marks Failed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager

TRAINING = "training"
TUNING = "tuning"
ENDPOINT = "endpoint"
TRANSFORM = "transform"


class Executor(ABC):
    """``kind`` names what runs: a training job's runner, a tuning job's controller, an endpoint's host
    or a transform job's runner."""

    @abstractmethod
    def reserve(self, name: str, kind: str = TRAINING) -> AbstractContextManager[None]:
        """Mark ``name`` as alive until ``launch`` hands it to its runner (or the block fails)."""

    @abstractmethod
    def launch(self, name: str, kind: str = TRAINING) -> None:
        """Start the runner; returns at once."""

    @abstractmethod
    def stop(self, name: str, kind: str = TRAINING) -> None:
        """Wake the runner so it sees the stop request now (it also polls the store)."""

    @abstractmethod
    def is_alive(self, name: str, kind: str = TRAINING) -> bool:
        """Whether the runner is still running."""
