"""The median early-stopping rule (TrainingJobEarlyStoppingType=Auto)."""

from __future__ import annotations

import math

import pytest

from forgeml.errors import ValidationException
from forgeml.tuning.base import COMPLETED, FAILED, PENDING, STOPPED, Trial
from forgeml.tuning.stopping import GRACE_EPOCHS, MIN_OTHER_TRIALS, MedianStoppingRule, create_stopping_rule


def trial(number: int, values: list[float], status: str = COMPLETED) -> Trial:
    return Trial(number=number, hyperparameters={"x": str(number)}, status=status,
                 objective=values[-1] if status == COMPLETED and values else None, intermediate=list(values))


# Three finished loss curves, all decreasing: running averages at epoch 4 are 0.85, 0.75, 0.65.
LOSS_CURVES = [[1.0, 0.9, 0.8, 0.7, 0.6], [0.9, 0.8, 0.7, 0.6, 0.5], [0.8, 0.7, 0.6, 0.5, 0.4]]


def others(curves: list[list[float]] = LOSS_CURVES) -> list[Trial]:
    return [trial(i + 1, c) for i, c in enumerate(curves)]


def test_create_stopping_rule() -> None:
    assert create_stopping_rule("Off", minimize=True) is None
    assert create_stopping_rule(None, minimize=True) is None
    rule = create_stopping_rule("Auto", minimize=False)
    assert isinstance(rule, MedianStoppingRule) and rule.minimize is False
    with pytest.raises(ValidationException, match="trainingJobEarlyStoppingType"):
        create_stopping_rule("Sometimes", minimize=True)


def test_stops_a_clearly_bad_trial_and_keeps_a_good_one_when_minimizing() -> None:
    rule = MedianStoppingRule(minimize=True)
    history = others()
    bad = trial(10, [2.0, 2.0, 2.0, 2.0], PENDING)
    good = trial(11, [0.9, 0.7, 0.5, 0.3], PENDING)
    assert rule.should_stop(bad, history + [bad])
    assert not rule.should_stop(good, history + [good])


def test_compares_against_the_median_of_running_averages_not_of_current_values() -> None:
    rule = MedianStoppingRule(minimize=True)
    history = others()
    # At epoch 4 the others' current values are 0.7, 0.6, 0.5 (median 0.6), but their running
    # averages are 0.85, 0.75, 0.65 (median 0.75): 0.7 is worse than 0.6 yet better than 0.75.
    assert rule.median_at(4, trial(99, [0.0] * 4), history) == pytest.approx(0.75)
    assert not rule.should_stop(trial(10, [1.0, 1.0, 1.0, 0.7], PENDING), history)
    assert rule.should_stop(trial(11, [1.0, 1.0, 1.0, 0.76], PENDING), history)
    # Equal to the median is not worse.
    assert not rule.should_stop(trial(12, [1.0, 1.0, 1.0, 0.75], PENDING), history)


def test_even_number_of_others_takes_the_middle_pair_mean() -> None:
    rule = MedianStoppingRule(minimize=True)
    history = others(LOSS_CURVES + [[0.7, 0.6, 0.5, 0.4]])  # averages 0.85 0.75 0.65 0.55
    assert rule.median_at(4, trial(99, [0.0] * 4), history) == pytest.approx(0.70)


def test_respects_maximize() -> None:
    rule = MedianStoppingRule(minimize=False)
    accuracy = [[0.5, 0.6, 0.7, 0.8], [0.6, 0.7, 0.8, 0.9], [0.4, 0.5, 0.6, 0.7]]  # averages .65 .75 .55
    history = others(accuracy)
    low = trial(10, [0.3, 0.3, 0.3, 0.3], PENDING)
    high = trial(11, [0.7, 0.8, 0.9, 0.95], PENDING)
    assert rule.should_stop(low, history + [low])
    assert not rule.should_stop(high, history + [high])
    # The same numbers read as losses flip the decisions.
    loss_rule = MedianStoppingRule(minimize=True)
    assert not loss_rule.should_stop(low, history + [low])
    assert loss_rule.should_stop(high, history + [high])


def test_needs_enough_other_trials_at_that_epoch() -> None:
    rule = MedianStoppingRule(minimize=True)
    bad = trial(10, [5.0, 5.0, 5.0, 5.0], PENDING)
    assert MIN_OTHER_TRIALS == 3
    # Two other trials: not enough.
    assert not rule.should_stop(bad, others(LOSS_CURVES[:2]) + [bad])
    # Three others, but one only reached epoch 3: still not enough at epoch 4.
    short = others(LOSS_CURVES[:2]) + [trial(3, [0.1, 0.1, 0.1], PENDING)]
    assert not rule.should_stop(bad, short + [bad])
    # Three others that reached epoch 4 (running ones count too).
    running = others(LOSS_CURVES[:2]) + [trial(3, [0.1, 0.1, 0.1, 0.1], PENDING)]
    assert rule.should_stop(bad, running + [bad])
    # A bigger minimum is honoured.
    assert not MedianStoppingRule(minimize=True, min_other_trials=4).should_stop(bad, running + [bad])


def test_never_stops_during_the_grace_epochs() -> None:
    rule = MedianStoppingRule(minimize=True)
    history = others()
    assert GRACE_EPOCHS == 2
    for epochs in range(1, GRACE_EPOCHS + 1):
        bad = trial(10, [100.0] * epochs, PENDING)
        assert not rule.should_stop(bad, history + [bad])
    bad = trial(10, [100.0] * (GRACE_EPOCHS + 1), PENDING)
    assert rule.should_stop(bad, history + [bad])
    assert MedianStoppingRule(minimize=True, grace_epochs=0).should_stop(trial(10, [100.0], PENDING), history)


def test_the_trial_itself_stopped_failed_and_broken_curves_are_left_out() -> None:
    rule = MedianStoppingRule(minimize=True)
    bad = trial(10, [3.0, 3.0, 3.0, 3.0], PENDING)
    # The trial itself in the list does not count as one of the "others".
    assert not rule.should_stop(bad, others(LOSS_CURVES[:2]) + [bad])
    # A curve with a NaN in its prefix is left out (so only two usable others remain).
    broken = Trial(number=3, hyperparameters={}, status=PENDING, intermediate=[0.1, math.nan, 0.1, 0.1])
    assert not rule.should_stop(bad, others(LOSS_CURVES[:2]) + [broken, bad])
    # Only completed and running trials count: stopped and failed ones are left out.
    for status in (STOPPED, FAILED):
        gone = Trial(number=3, hyperparameters={}, status=status, intermediate=[0.1, 0.1, 0.1, 0.1])
        assert not rule.should_stop(bad, others(LOSS_CURVES[:2]) + [gone, bad])
    clean = Trial(number=3, hyperparameters={}, status=PENDING, intermediate=[0.1, 0.1, 0.1, 0.1])
    assert rule.should_stop(bad, others(LOSS_CURVES[:2]) + [clean, bad])


def test_a_nan_value_is_stopped_once_the_guards_are_met() -> None:
    rule = MedianStoppingRule(minimize=True)
    diverged = trial(10, [1.0, 1.0, 1.0, math.nan], PENDING)
    assert rule.should_stop(diverged, others() + [diverged])
    assert not rule.should_stop(diverged, others(LOSS_CURVES[:1]) + [diverged])
