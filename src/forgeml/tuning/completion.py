"""``TuningJobCompletionCriteria``: when a tuning job may end before its training-job budget is spent.

* ``TargetObjectiveMetricValue``: reached as soon as a finished trial's objective is at least as
  good as the target (<= when minimizing, >= when maximizing). "Finished" means Completed or
  Stopped with an objective value: a trial stopped early still reported a genuine objective value
  and SageMaker may pick it as the best training job (UNVERIFIED whether AWS counts stopped jobs
  here; we do).
* ``BestObjectiveNotImproving.MaxNumberOfTrainingJobsNotImproving = N``: walk the finished trials
  that have an objective in launch order (trial number); the first sets the best; every later one
  either improves the best by at least 1 % (relative, see ``relative_improvement``) and resets the
  count to 0, or adds 1 to it. The best always becomes the true best, also after a sub-1 %
  improvement (which still counts as "not improving"). The criterion is met when the count reaches
  N. Failed trials (no objective) and still-running ones are skipped: they neither improve nor
  count (UNVERIFIED; AWS documents the count as jobs "evaluated against an objective function").
  ``jobs_not_improving`` gives the count for ``NumberOfTrainingJobsObjectiveNotImproving``.
* ``ConvergenceDetected.CompleteOnConvergence = Enabled``: AWS does not publish its test. Ours:
  with n finished trials that have an objective, a trailing window of
  w = max(10, ceil(0.2 * n)) trials, and n >= ``CONVERGENCE_MIN_TRIALS`` (20) and n >= 2 * w,
  the tuning job has converged when the best objective of all n trials is not better by more
  than 1 % (relative) than the best of the first n - w trials: the last fifth of the search (at
  least ten trials) found nothing that moved the best by more than 1 %, and at least half the
  trials formed the reference. The window grows with n, so a long search needs a longer plateau.

Relative improvement of a new value ``v`` over the best ``b`` (both raw metric values):
``(b - v) / max(|b|, |v|)`` when minimizing, ``(v - b) / max(|b|, |v|)`` when maximizing, and 0
when both are 0. Dividing by the larger magnitude keeps the ratio finite near 0 (it is at most 2,
reached when the sign flips) where ``/ |b|`` would explode for a best of 0 or 1e-12; for values
of one sign it is the usual relative change measured against the larger of the two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from forgeml.errors import ValidationException
from forgeml.tuning.base import COMPLETED, STOPPED, Trial

IMPROVEMENT_THRESHOLD = 0.01
CONVERGENCE_MIN_TRIALS = 20
CONVERGENCE_MIN_WINDOW = 10
CONVERGENCE_WINDOW_FRACTION = 0.2

REASON_TARGET = "TargetObjectiveMetricValue reached"
REASON_NOT_IMPROVING = "BestObjectiveNotImproving"
REASON_CONVERGED = "ConvergenceDetected"

_MEMBER = "hyperParameterTuningJobConfig.tuningJobCompletionCriteria"


def _invalid(value: object, member: str, rule: str) -> ValidationException:
    return ValidationException(f"1 validation error detected: Value '{value}' at '{_MEMBER}.{member}' failed to "
                               f"satisfy constraint: Member must {rule}")


def relative_improvement(best: float, value: float, minimize: bool) -> float:
    """How much ``value`` improves on ``best``, relative (negative when it is worse)."""
    gain = best - value if minimize else value - best
    scale = max(abs(best), abs(value))
    if scale == 0.0:
        return 0.0
    if math.isinf(scale):
        return math.inf if gain > 0 else (-math.inf if gain < 0 else 0.0)
    return gain / scale


def _is_better(a: float, b: float, minimize: bool) -> bool:
    return a < b if minimize else a > b


def _scored(trials: Iterable[Trial]) -> list[float]:
    """The objective values of the finished trials that have a usable one, in launch order."""
    scored = sorted((t for t in trials if t.status in (COMPLETED, STOPPED) and t.objective is not None
                     and not math.isnan(t.objective)), key=lambda t: t.number)
    return [float(t.objective) for t in scored if t.objective is not None]


@dataclass(frozen=True)
class CompletionCriteria:
    minimize: bool
    target: float | None = None
    max_jobs_not_improving: int | None = None
    complete_on_convergence: bool = False

    @classmethod
    def from_request(cls, config: dict[str, Any] | None, minimize: bool) -> CompletionCriteria:
        config = config or {}
        target = config.get("TargetObjectiveMetricValue")
        if target is not None:
            try:
                target = float(target)
            except (TypeError, ValueError):
                raise _invalid(target, "targetObjectiveMetricValue", "be a number") from None
            if math.isnan(target):
                raise _invalid("NaN", "targetObjectiveMetricValue", "be a number")
        not_improving = (config.get("BestObjectiveNotImproving") or {}).get("MaxNumberOfTrainingJobsNotImproving")
        if not_improving is not None and (isinstance(not_improving, bool) or not isinstance(not_improving, int)
                                          or not_improving < 3):
            raise _invalid(not_improving, "bestObjectiveNotImproving.maxNumberOfTrainingJobsNotImproving",
                           "have value greater than or equal to 3")
        convergence = (config.get("ConvergenceDetected") or {}).get("CompleteOnConvergence", "Disabled")
        if convergence not in ("Disabled", "Enabled"):
            raise _invalid(convergence, "convergenceDetected.completeOnConvergence",
                           "satisfy enum value set: [Disabled, Enabled]")
        return cls(minimize=minimize, target=target, max_jobs_not_improving=not_improving,
                   complete_on_convergence=convergence == "Enabled")

    # -- the criteria -----------------------------------------------------------------------------
    def target_reached(self, trials: Iterable[Trial]) -> bool:
        if self.target is None:
            return False
        target = self.target
        return any(v == target or _is_better(v, target, self.minimize) for v in _scored(trials))

    def jobs_not_improving(self, trials: Iterable[Trial]) -> int:
        """Finished trials since the last one that improved the best objective by >= 1 %."""
        best: float | None = None
        count = 0
        for value in _scored(trials):
            if best is None:
                best = value
                continue
            if relative_improvement(best, value, self.minimize) >= IMPROVEMENT_THRESHOLD:
                count = 0
            else:
                count += 1
            if _is_better(value, best, self.minimize):
                best = value
        return count

    def converged(self, trials: Iterable[Trial]) -> bool:
        values = _scored(trials)
        n = len(values)
        window = max(CONVERGENCE_MIN_WINDOW, math.ceil(CONVERGENCE_WINDOW_FRACTION * n))
        if n < CONVERGENCE_MIN_TRIALS or n < 2 * window:
            return False
        pick = min if self.minimize else max
        reference = pick(values[: n - window])
        overall = pick(values)
        return relative_improvement(reference, overall, self.minimize) <= IMPROVEMENT_THRESHOLD

    def check(self, trials: Iterable[Trial]) -> str | None:
        """Why the tuning job should complete now (one of the ``REASON_*`` strings), or None."""
        trials = list(trials)
        if self.target_reached(trials):
            return REASON_TARGET
        if self.max_jobs_not_improving is not None and \
                self.jobs_not_improving(trials) >= self.max_jobs_not_improving:
            return REASON_NOT_IMPROVING
        if self.complete_on_convergence and self.converged(trials):
            return REASON_CONVERGED
        return None
