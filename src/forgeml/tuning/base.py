"""The two interfaces of tuning, kept apart as in Ray Tune and Optuna.

A **Strategy** (search algorithm) decides *what* to try next: given every trial so far (finished
and still running), it proposes hyperparameter assignments. A **StoppingRule** (scheduler) decides
*when to stop* a running trial early, from the objective values it reports each epoch. The tuning
service owns the loop: it asks the strategy for proposals when a slot is free, launches training
jobs, feeds back their intermediate and final objective values, and asks the stopping rules about
each running trial.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from forgeml.tuning.space import SearchSpace

PENDING = "Pending"  # launched, still running
COMPLETED = "Completed"
FAILED = "Failed"
STOPPED = "Stopped"


@dataclass
class Trial:
    """One training job of a tuning job, as the strategies see it.

    ``hyperparameters`` holds only the tuned ones, as strings (what the training job received).
    ``objective`` is the final objective value (the metric's last value), ``intermediate`` its
    per-epoch series; both are the raw metric values, whatever the objective's direction.
    ``resource`` is the resource hyperparameter's value the trial was given (Hyperband).
    """

    number: int
    hyperparameters: dict[str, str]
    status: str = PENDING
    objective: float | None = None
    intermediate: list[float] = field(default_factory=list)
    resource: int | None = None

    @property
    def finished(self) -> bool:
        return self.status != PENDING


@dataclass(frozen=True)
class Proposal:
    """A trial to launch: tuned hyperparameters, plus the resource value for Hyperband trials."""

    hyperparameters: dict[str, str]
    resource: int | None = None


class Strategy(ABC):
    """Proposes hyperparameter assignments inside a SearchSpace."""

    def __init__(self, space: SearchSpace, *, minimize: bool, seed: int | None = None,
                 max_jobs: int | None = None) -> None:
        self.space = space
        self.minimize = minimize
        self.seed = seed
        self.max_jobs = max_jobs

    @abstractmethod
    def suggest(self, trials: list[Trial], count: int) -> list[Proposal]:
        """Up to ``count`` proposals. ``trials`` includes running ones (status Pending); a proposal
        must not repeat a running trial's assignment. Fewer than ``count`` means the strategy has
        nothing more to propose (Grid, once every combination was tried)."""

    def should_stop(self, trial: Trial, trials: list[Trial]) -> bool:
        """Strategies with their own stopping schedule (Hyperband) override this."""
        return False


class StoppingRule(ABC):
    """Decides whether a running trial should stop now, from intermediate objective values."""

    def __init__(self, *, minimize: bool) -> None:
        self.minimize = minimize

    @abstractmethod
    def should_stop(self, trial: Trial, trials: list[Trial]) -> bool:
        """``trial`` is running and has just reported ``trial.intermediate[-1]``."""
