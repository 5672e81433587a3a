"""TuningJobCompletionCriteria: target value, best objective not improving, convergence."""

from __future__ import annotations

import pytest

from forgeml.errors import ValidationException
from forgeml.tuning.base import COMPLETED, FAILED, PENDING, STOPPED, Trial
from forgeml.tuning.completion import (
    REASON_CONVERGED,
    REASON_NOT_IMPROVING,
    REASON_TARGET,
    CompletionCriteria,
    relative_improvement,
)


def finished(values: list[float | None], *, start: int = 1, status: str = COMPLETED) -> list[Trial]:
    out = []
    for i, v in enumerate(values):
        st = FAILED if v is None else status
        out.append(Trial(number=start + i, hyperparameters={"x": str(start + i)}, status=st, objective=v,
                         intermediate=[] if v is None else [v]))
    return out


def test_no_criteria() -> None:
    for config in (None, {}, {"ConvergenceDetected": {"CompleteOnConvergence": "Disabled"}}):
        criteria = CompletionCriteria.from_request(config, minimize=True)
        assert criteria.check(finished([1.0] * 100)) is None
    assert CompletionCriteria.from_request(None, minimize=True).jobs_not_improving(finished([1.0] * 5)) == 4


def test_validation() -> None:
    with pytest.raises(ValidationException, match="maxNumberOfTrainingJobsNotImproving"):
        CompletionCriteria.from_request({"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 2}},
                                        minimize=True)
    with pytest.raises(ValidationException, match="completeOnConvergence"):
        CompletionCriteria.from_request({"ConvergenceDetected": {"CompleteOnConvergence": "Yes"}}, minimize=True)
    with pytest.raises(ValidationException, match="targetObjectiveMetricValue"):
        CompletionCriteria.from_request({"TargetObjectiveMetricValue": "high"}, minimize=True)


@pytest.mark.parametrize("status", [COMPLETED, STOPPED])
def test_target_minimize(status: str) -> None:
    criteria = CompletionCriteria.from_request({"TargetObjectiveMetricValue": 0.5}, minimize=True)
    trials = finished([0.9, 0.7, 0.51], status=status)
    assert criteria.check(trials) is None
    assert criteria.check(trials + finished([0.5], start=4, status=status)) == REASON_TARGET  # equal reaches it
    assert criteria.check(trials + finished([0.2], start=4, status=status)) == REASON_TARGET


def test_target_maximize_and_running_or_failed_trials_do_not_count() -> None:
    criteria = CompletionCriteria.from_request({"TargetObjectiveMetricValue": 0.95}, minimize=False)
    trials = finished([0.5, 0.94, None])
    assert criteria.check(trials) is None
    # A running trial whose current value beats the target has not finished yet.
    running = Trial(number=9, hyperparameters={}, status=PENDING, objective=None, intermediate=[0.99])
    assert criteria.check(trials + [running]) is None
    assert criteria.check(trials + finished([0.951], start=4)) == REASON_TARGET
    # A low value is not "reached" when maximizing.
    assert criteria.check(finished([0.1, -5.0])) is None


def test_relative_improvement_near_zero() -> None:
    assert relative_improvement(1.0, 0.99, minimize=True) == pytest.approx(0.01)
    assert relative_improvement(0.99, 1.0, minimize=False) == pytest.approx(0.01)
    assert relative_improvement(0.0, 0.0, minimize=True) == 0.0
    # From a best of exactly 0, a tiny negative value is a large relative step but never infinite.
    assert relative_improvement(0.0, -1e-9, minimize=True) == pytest.approx(1.0)
    assert relative_improvement(0.5, -0.5, minimize=True) == pytest.approx(2.0)
    assert relative_improvement(1e-12, 0.9e-12, minimize=True) == pytest.approx(0.1)
    assert relative_improvement(1.0, 1.5, minimize=True) < 0


def test_best_objective_not_improving_triggers_exactly_at_n() -> None:
    config = {"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 3}}
    criteria = CompletionCriteria.from_request(config, minimize=True)
    # 1.0 sets the best, 0.5 improves by 50 % (count 0), then 0.6, 0.5, 0.4999 (< 1 %) do not improve.
    values: list[float | None] = [1.0, 0.5, 0.6, 0.5, 0.4999]
    counts = [criteria.jobs_not_improving(finished(values[:k])) for k in range(1, len(values) + 1)]
    assert counts == [0, 0, 1, 2, 3]
    assert criteria.check(finished(values[:4])) is None
    assert criteria.check(finished(values)) == REASON_NOT_IMPROVING
    # An improvement of >= 1 % resets the count.
    assert criteria.jobs_not_improving(finished([*values, 0.49])) == 0
    assert criteria.check(finished([*values[:4], 0.49])) is None


def test_sub_threshold_improvements_move_the_best_but_still_count() -> None:
    criteria = CompletionCriteria.from_request(
        {"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 4}}, minimize=False)
    # Each 0.5 % gain updates the best; none of them is a 1 % improvement over the best before it.
    values: list[float | None] = [100.0, 100.5, 101.0, 101.5, 102.0]
    assert criteria.jobs_not_improving(finished(values)) == 4
    assert criteria.check(finished(values)) == REASON_NOT_IMPROVING
    # 103.1 is 1.07 % above 102.0: an improvement.
    assert criteria.jobs_not_improving(finished([*values, 103.1])) == 0


def test_not_improving_uses_launch_order_and_skips_failed_and_running() -> None:
    criteria = CompletionCriteria.from_request(
        {"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 3}}, minimize=True)
    trials = finished([1.0, None, 2.0, None, 3.0])
    assert criteria.jobs_not_improving(trials) == 2
    running = Trial(number=6, hyperparameters={}, status=PENDING, intermediate=[0.1])
    assert criteria.check(trials + [running]) is None
    # Given out of order, trials are still read in launch order (number).
    shuffled = list(reversed(finished([5.0, 1.0, 2.0, 3.0])))
    assert criteria.jobs_not_improving(shuffled) == 2
    assert criteria.check(shuffled + finished([4.0], start=5)) == REASON_NOT_IMPROVING


def test_convergence() -> None:
    criteria = CompletionCriteria.from_request({"ConvergenceDetected": {"CompleteOnConvergence": "Enabled"}},
                                               minimize=True)
    # An early best followed by a plateau: with n trials the window is max(10, ceil(0.2 n)) and the
    # test needs n >= 20; the first 20 have the best at trial 5, so trials 11..20 are the window.
    plateau: list[float | None] = [10.0, 8.0, 6.0, 5.0, 1.0] + [2.0 + 0.01 * i for i in range(15)]
    assert criteria.check(finished(plateau[:19])) is None
    assert criteria.check(finished(plateau)) == REASON_CONVERGED
    # Failed trials do not count towards n.
    assert criteria.check(finished(plateau[:19] + [None])) is None
    # An improvement of more than 1 % inside the window: not converged.
    improving = plateau[:15] + [0.95] + [2.0] * 4
    assert criteria.check(finished(improving)) is None
    # ... until ten more trials pass without one.
    assert criteria.check(finished(improving + [2.0] * 5)) is None
    assert criteria.check(finished(improving + [2.0] * 6)) == REASON_CONVERGED
    # An improvement of at most 1 % in the window still counts as converged.
    assert criteria.check(finished(plateau[:15] + [0.991] + [2.0] * 4)) == REASON_CONVERGED


def test_convergence_window_grows_with_the_number_of_trials() -> None:
    criteria = CompletionCriteria.from_request({"ConvergenceDetected": {"CompleteOnConvergence": "Enabled"}},
                                               minimize=False)
    # 100 trials: the window is 20. The best (maximizing) arrived at trial 85: 15 trials ago.
    values: list[float | None] = [0.5] * 84 + [0.9] + [0.5] * 15
    assert criteria.check(finished(values)) is None
    values += [0.5] * 7  # n = 107: window 22, the best is 22 trials back
    assert criteria.check(finished(values)) == REASON_CONVERGED


def test_check_order_of_reasons() -> None:
    config = {"TargetObjectiveMetricValue": 0.1, "BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 3},
              "ConvergenceDetected": {"CompleteOnConvergence": "Enabled"}}
    criteria = CompletionCriteria.from_request(config, minimize=True)
    assert criteria.check(finished([1.0, 2.0, 2.0, 2.0])) == REASON_NOT_IMPROVING
    assert criteria.check(finished([1.0, 2.0, 2.0, 0.1])) == REASON_TARGET
