"""Early stopping of training jobs for non-Hyperband tuning jobs (``TrainingJobEarlyStoppingType``).

``Off`` never stops anything. ``Auto`` is SageMaker's median stopping rule, as the Developer Guide
("How Early Stopping Works") describes it: after each epoch, take the current trial's objective
value; for every other trial (completed or still running) that reported at least that many epochs,
compute the running average of its objective up to that same epoch; take the median of those
running averages; stop the current trial if its value is worse than that median (higher when
minimizing, lower when maximizing).

AWS does not document two guards every practical median rule needs (UNVERIFIED, our choices):

* ``MIN_OTHER_TRIALS`` = 3: the median of one or two curves is mostly noise, so nothing is stopped
  until at least three other trials have reached the current epoch (Ray Tune's
  ``MedianStoppingRule`` defaults to 3 as well; Optuna's ``MedianPruner`` waits for 5 trials).
* ``GRACE_EPOCHS`` = 2: the first two epochs are never judged (first-epoch values are dominated
  by warm-up and initialisation), so the earliest stop happens after epoch 3.

"Other trials" are, as the Developer Guide says, the completed and the running ones: a stopped
trial (by this rule, by the user, or by the tuning job) and a failed one are left out, even where
they reached the epoch. Non-finite values (NaN, +-inf): another trial whose prefix holds one is
left out of the median; a current value that is NaN is treated as worse than any median (a
diverged run), once the guards above are met.
"""

from __future__ import annotations

import math

from forgeml.errors import ValidationException
from forgeml.tuning.base import COMPLETED, PENDING, StoppingRule, Trial

MIN_OTHER_TRIALS = 3
GRACE_EPOCHS = 2


class MedianStoppingRule(StoppingRule):
    """SageMaker's ``TrainingJobEarlyStoppingType=Auto``."""

    def __init__(self, *, minimize: bool, min_other_trials: int = MIN_OTHER_TRIALS,
                 grace_epochs: int = GRACE_EPOCHS) -> None:
        super().__init__(minimize=minimize)
        self.min_other_trials = max(1, min_other_trials)
        self.grace_epochs = max(0, grace_epochs)

    def median_at(self, epoch: int, trial: Trial, trials: list[Trial]) -> float | None:
        """The median over the other trials of their running averages up to ``epoch`` (1-based),
        or None while fewer than ``min_other_trials`` other trials have reached that epoch."""
        averages = []
        for other in trials:
            if other is trial or other.number == trial.number or len(other.intermediate) < epoch \
                    or other.status not in (COMPLETED, PENDING):
                continue
            prefix = other.intermediate[:epoch]
            if all(math.isfinite(v) for v in prefix):
                averages.append(math.fsum(prefix) / epoch)
        if len(averages) < self.min_other_trials:
            return None
        averages.sort()
        middle = len(averages) // 2
        if len(averages) % 2:
            return averages[middle]
        return (averages[middle - 1] + averages[middle]) / 2.0

    def should_stop(self, trial: Trial, trials: list[Trial]) -> bool:
        epoch = len(trial.intermediate)
        if epoch <= self.grace_epochs:
            return False
        median = self.median_at(epoch, trial, trials)
        if median is None:
            return False
        current = trial.intermediate[-1]
        if math.isnan(current):
            return True
        return current > median if self.minimize else current < median


def create_stopping_rule(early_stopping_type: str | None, minimize: bool) -> StoppingRule | None:
    """The rule for ``TrainingJobEarlyStoppingType``: None for ``Off`` (the default)."""
    if early_stopping_type in (None, "Off"):
        return None
    if early_stopping_type == "Auto":
        return MedianStoppingRule(minimize=minimize)
    raise ValidationException(
        f"1 validation error detected: Value '{early_stopping_type}' at "
        "'hyperParameterTuningJobConfig.trainingJobEarlyStoppingType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Off, Auto]")
