"""Grid search: every combination of the categorical values, each exactly once."""

from __future__ import annotations

from collections.abc import Sequence

from forgeml.errors import ValidationException
from forgeml.tuning.base import Proposal, Strategy, Trial
from forgeml.tuning.space import SearchSpace


class GridStrategy(Strategy):
    """Walks :meth:`SearchSpace.grid` in its stable order (the last range varies fastest), skipping
    combinations already tried by this job, whatever their outcome (a failed combination is not
    retried: each combination runs exactly once), and combinations the warm-start parents
    (``prior_trials``) already ran. Returns fewer proposals than asked once the grid is exhausted.

    The order is not shuffled (SageMaker does not document its order, UNVERIFIED); Grid jobs run the
    whole grid anyway (MaxNumberOfTrainingJobs must equal the grid size), so the order matters only
    when a completion criterion ends the job early.

    Parents are skipped whatever the warm-start type: the strategy is not told the type. For
    ``IdenticalDataAndAlgorithm`` that is right (the parent's result stands); for
    ``TransferLearning`` a service that wants to re-run the parents' combinations on the new data
    should pass no ``prior_trials`` to Grid.
    """

    def __init__(self, space: SearchSpace, *, minimize: bool, seed: int | None = None,
                 max_jobs: int | None = None, prior_trials: Sequence[Trial] = ()) -> None:
        super().__init__(space, minimize=minimize, seed=seed, max_jobs=max_jobs)
        numeric = [r.name for r in space.ranges if r.is_numeric]
        if numeric:
            raise ValidationException(
                f"1 validation error detected: Value '{', '.join(numeric)}' at "
                "'hyperParameterTuningJobConfig.parameterRanges' failed to satisfy constraint: Member must "
                "contain only CategoricalParameterRanges when Strategy is Grid")
        self._parent_keys = {space.key(t.hyperparameters) for t in prior_trials}

    def suggest(self, trials: list[Trial], count: int) -> list[Proposal]:
        done = self._parent_keys | {self.space.key(t.hyperparameters) for t in trials}
        out: list[Proposal] = []
        if count <= 0:
            return out
        for assignment in self.space.grid():
            if self.space.key(assignment) in done:
                continue
            out.append(Proposal(assignment))
            if len(out) >= count:
                break
        return out
