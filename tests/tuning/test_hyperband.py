"""The Hyperband strategy: ASHA-style rungs and brackets, proposals at MaxResource."""

from __future__ import annotations

import math

import pytest

from forgeml.errors import ValidationException
from forgeml.tuning.base import COMPLETED, PENDING, STOPPED, Trial
from forgeml.tuning.space import SearchSpace
from forgeml.tuning.strategies import create_strategy
from forgeml.tuning.strategies.hyperband import MAX_BRACKETS, HyperbandStrategy

RANGES = {
    "IntegerParameterRanges": [{"Name": "depth", "MinValue": "2", "MaxValue": "8"}],
    "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.0001", "MaxValue": "0.1",
                                   "ScalingType": "Logarithmic"}],
    "CategoricalParameterRanges": [{"Name": "opt", "Values": ["sgd", "adam"]}],
}


def space() -> SearchSpace:
    return SearchSpace.from_parameter_ranges(RANGES)


def hyperband(*, minimize: bool = True, min_resource: int = 1, max_resource: int = 27, seed: int = 7,
              **kw: object) -> HyperbandStrategy:
    return HyperbandStrategy(space(), minimize=minimize, seed=seed, max_jobs=50, min_resource=min_resource,
                             max_resource=max_resource, **kw)  # type: ignore[arg-type]


def done(number: int, curve: list[float]) -> Trial:
    return Trial(number=number, hyperparameters={"depth": str(number)}, status=COMPLETED, objective=curve[-1],
                 intermediate=list(curve), resource=len(curve))


def run(strategy: HyperbandStrategy, trial: Trial, curve: list[float], trials: list[Trial]) -> int:
    """Feed ``curve`` to a running trial one epoch at a time; the number of epochs it ran."""
    if trial not in trials:
        trials.append(trial)
    for value in curve:
        trial.intermediate.append(value)
        if strategy.should_stop(trial, trials):
            trial.status = STOPPED
            trial.objective = value
            return len(trial.intermediate)
    trial.status = COMPLETED
    trial.objective = curve[-1]
    return len(trial.intermediate)


def new_trial(number: int) -> Trial:
    return Trial(number=number, hyperparameters={"depth": str(number)}, status=PENDING, resource=27)


def history(n: int, level: float = 0.5) -> list[Trial]:
    return [done(i + 1, [level + 0.01 * i] * 27) for i in range(n)]


def test_rungs_and_brackets() -> None:
    strategy = hyperband(min_resource=1, max_resource=27)
    assert strategy.rungs == (1, 3, 9)  # 27 is MaxResource: no rung there
    assert strategy.n_brackets == 3
    assert hyperband(min_resource=2, max_resource=200).rungs == (2, 6, 18, 54, 162)
    assert hyperband(min_resource=2, max_resource=200).n_brackets == MAX_BRACKETS
    assert hyperband(min_resource=5, max_resource=10).rungs == (5,)
    assert hyperband(min_resource=5, max_resource=10).n_brackets == 1
    assert hyperband(min_resource=1, max_resource=16, eta=2).rungs == (1, 2, 4, 8)
    trials = [new_trial(n) for n in (-2, -1, 1, 2, 3, 4, 5)]  # negative numbers: warm-start parents
    assert [strategy.bracket(t, trials) for t in trials[2:]] == [0, 1, 2, 0, 1]


def test_validation() -> None:
    with pytest.raises(ValidationException, match=r"hyperbandStrategyConfig\.minResource.*greater than or equal to 1"):
        hyperband(min_resource=0)
    with pytest.raises(ValidationException, match=r"maxResource.*greater than MinResource"):
        hyperband(min_resource=5, max_resource=5)
    with pytest.raises(ValidationException, match=r"maxResource.*less than or equal to 20000"):
        hyperband(max_resource=20001)
    with pytest.raises(ValidationException, match="must be an integer"):
        hyperband(min_resource=1.5)
    with pytest.raises(ValidationException, match="hyperbandStrategyConfig"):
        create_strategy("Hyperband", space(), minimize=True, hyperband_config={"MinResource": 1})
    made = create_strategy("Hyperband", space(), minimize=False, seed=1,
                           hyperband_config={"MinResource": 2, "MaxResource": 50})
    assert isinstance(made, HyperbandStrategy) and made.rungs == (2, 6, 18)


def test_proposals_carry_max_resource_honour_ranges_and_are_reproducible() -> None:
    strategy = hyperband(max_resource=81)
    proposals = strategy.suggest([], 40)
    assert len(proposals) == 40
    for p in proposals:
        assert p.resource == 81
        assert set(p.hyperparameters) == {"depth", "lr", "opt"}
        assert 2 <= int(p.hyperparameters["depth"]) <= 8
        assert 1e-4 <= float(p.hyperparameters["lr"]) <= 0.1
        assert p.hyperparameters["opt"] in ("sgd", "adam")
    # Log scaling: about a third of the draws fall in each decade of [1e-4, 1e-1].
    low = sum(float(p.hyperparameters["lr"]) < 1e-3 for p in proposals)
    assert 5 <= low <= 22
    assert len({(p.hyperparameters["lr"], p.hyperparameters["depth"]) for p in proposals}) == 40
    # Deterministic given the seed and the trials so far; another seed differs.
    assert hyperband(max_resource=81).suggest([], 40) == proposals
    assert hyperband(max_resource=81, seed=8).suggest([], 40) != proposals
    trials = [Trial(number=1, hyperparameters=proposals[0].hyperparameters)]
    assert hyperband(max_resource=81).suggest(trials, 3) == strategy.suggest(trials, 3)
    assert strategy.suggest(trials, 3) != proposals[:3]
    # Proposal k is the same whether it was asked for in a batch or alone.
    assert strategy.suggest(trials, 2) == proposals[1:3]


def test_proposals_never_repeat_a_running_trial() -> None:
    tiny = SearchSpace.from_parameter_ranges({"CategoricalParameterRanges": [{"Name": "k", "Values": ["a", "b"]}]})
    strategy = HyperbandStrategy(tiny, minimize=True, seed=0, min_resource=1, max_resource=9)
    running_a = Trial(number=1, hyperparameters={"k": "a"}, status=PENDING)
    assert [p.hyperparameters for p in strategy.suggest([running_a], 2)] == [{"k": "b"}]
    running_b = Trial(number=2, hyperparameters={"k": "b"}, status=PENDING)
    assert strategy.suggest([running_a, running_b], 1) == []
    # A finished assignment may be repeated once nothing new is left.
    finished_a = Trial(number=1, hyperparameters={"k": "a"}, status=COMPLETED, objective=1.0)
    assert [p.hyperparameters for p in strategy.suggest([finished_a, running_b], 1)] == [{"k": "a"}]
    # New assignments are preferred over finished ones (warm-start parents included).
    parent = Trial(number=-1, hyperparameters={"k": "b"}, status=COMPLETED, objective=1.0)
    warm = HyperbandStrategy(tiny, minimize=True, seed=0, min_resource=1, max_resource=9, prior_trials=[parent])
    assert [p.hyperparameters for p in warm.suggest([], 1)] == [{"k": "a"}]


def test_stops_a_clearly_bad_trial_at_the_first_rung_and_lets_a_good_one_run_to_max_resource() -> None:
    strategy = hyperband()
    trials = history(6)  # positions 0..5; the next trial (number 7) is in bracket 0
    bad = new_trial(7)
    assert strategy.bracket(bad, trials + [bad]) == 0
    assert run(strategy, bad, [5.0] * 27, trials) == 1
    good = new_trial(8)
    assert run(strategy, good, [0.4 - 0.01 * e for e in range(27)], trials) == 27
    assert good.status == COMPLETED


def test_a_trial_that_falls_behind_is_stopped_at_the_next_rung() -> None:
    strategy = hyperband()
    trials = history(6)
    # Good at epochs 1-2, clearly worse from epoch 3: promoted at rung 1, stopped at rung 3.
    fading = new_trial(7)
    assert run(strategy, fading, [0.1, 0.1] + [3.0] * 25, trials) == 3
    # Mediocre: better than most at rung 1 and 3, worse than most at rung 9.
    late = new_trial(8)
    assert run(strategy, late, [0.4] * 8 + [0.56] * 19, trials) == 9


def test_top_one_over_eta_with_maximize() -> None:
    strategy = hyperband(minimize=False)
    trials = [done(i + 1, [0.1 * (i + 1)] * 27) for i in range(8)]  # accuracies 0.1 .. 0.8
    # 9 values at the rung with the new one: the top 3 go on. 0.75 ranks 2nd (only 0.8 is better).
    second = new_trial(10)
    trials.append(new_trial(9))  # a running trial that has not reached rung 1 yet does not count
    assert strategy.bracket(second, trials + [second]) == 0
    assert run(strategy, second, [0.75] * 27, list(trials)) == 27
    # 0.65 ranks 3rd of 9: promoted. 0.55 ranks 4th: stopped.
    assert strategy.promoted(Trial(number=11, hyperparameters={}, intermediate=[0.65]), 1, trials)
    assert not strategy.promoted(Trial(number=11, hyperparameters={}, intermediate=[0.55]), 1, trials)
    # As losses, the same numbers flip.
    assert not hyperband(minimize=True).promoted(Trial(number=11, hyperparameters={}, intermediate=[0.75]), 1,
                                                 trials)


def test_never_stops_before_min_resource() -> None:
    strategy = hyperband(min_resource=4, max_resource=36)  # rungs 4, 12
    trials = [done(i + 1, [0.5] * 36) for i in range(6)]
    bad = new_trial(7)
    trials.append(bad)
    for _ in range(3):
        bad.intermediate.append(100.0)
        assert not strategy.should_stop(bad, trials)
    bad.intermediate.append(100.0)
    assert strategy.should_stop(bad, trials)


def test_never_stops_at_max_resource_and_a_lone_trial_is_never_stopped() -> None:
    strategy = hyperband(min_resource=1, max_resource=3)  # one rung (1)
    trials = history(6)
    bad = new_trial(7)
    trials.append(bad)
    bad.intermediate.extend([0.1, 9.0, 9.0])  # fine at rung 1, awful at 3 = MaxResource
    assert not strategy.should_stop(bad, trials)
    # Fewer than eta trials at a rung: no decision.
    fresh = hyperband(min_resource=1, max_resource=3)  # a single bracket
    first, second = new_trial(1), new_trial(2)
    first.intermediate.append(0.1)
    second.intermediate.append(50.0)
    assert not fresh.should_stop(second, [first, second])
    third = new_trial(4)
    third.intermediate.append(60.0)
    assert fresh.should_stop(third, [first, second, new_trial(3), third])


def test_brackets_protect_their_trials_until_their_first_rung() -> None:
    strategy = hyperband()
    trials = history(7)  # the next trial (number 8, position 7) is in bracket 1
    protected = new_trial(8)
    assert strategy.bracket(protected, trials + [protected]) == 1
    assert run(strategy, protected, [5.0] * 27, trials) == 3  # not judged at epoch 1, stopped at 3
    deeper = new_trial(9)  # bracket 2: first judged at epoch 9
    assert strategy.bracket(deeper, trials + [deeper]) == 2
    assert run(strategy, deeper, [5.0] * 27, trials) == 9


def test_rungs_skipped_between_calls_are_all_judged_and_each_rung_is_judged_once() -> None:
    strategy = hyperband()
    trials = history(6)
    jumper = new_trial(7)
    trials.append(jumper)
    jumper.intermediate.extend([0.1] * 2 + [0.505] * 8)  # best at rung 1, 2nd of 7 at rungs 3 and 9
    assert not strategy.should_stop(jumper, trials)
    slow = new_trial(10)
    slow.intermediate.extend([0.1] * 8 + [5.0] * 2)  # fine at rungs 1 and 3, bad at rung 9
    assert strategy.should_stop(slow, trials + [slow])
    # Promoted at rung 1 once: trials that arrive later at rung 1 with better values do not
    # reopen that decision.
    trials.extend([new_trial(8), new_trial(9)])
    keep = new_trial(11)
    trials.append(keep)
    assert strategy.bracket(keep, trials) == 0
    keep.intermediate.append(0.45)  # 2nd of 8 at rung 1
    assert not strategy.should_stop(keep, trials)
    trials.extend(done(20 + i, [0.0] * 27) for i in range(6))
    keep.intermediate.append(0.45)  # now 8th of 14 at rung 1, but rung 1 was decided
    assert not strategy.should_stop(keep, trials)
    assert not hyperband().promoted(keep, 1, trials)


def test_nan_at_a_rung_is_stopped() -> None:
    strategy = hyperband()
    trials = history(6)
    broken = new_trial(7)
    assert run(strategy, broken, [math.nan] * 27, trials) == 1


def test_asha_run_spends_far_fewer_epochs_and_keeps_the_best() -> None:
    """A small tuning loop: quality depends on lr; curves approach it as 1/epoch."""
    strategy = hyperband(max_resource=27, seed=3)
    trials: list[Trial] = []

    def quality(hp: dict[str, str]) -> float:
        return abs(math.log10(float(hp["lr"])) + 2.0) + 0.05 * int(hp["depth"])  # best at lr=1e-2

    epochs = 0
    for number in range(1, 41):
        proposal = strategy.suggest(trials, 1)[0]
        trial = Trial(number=number, hyperparameters=proposal.hyperparameters, resource=proposal.resource)
        q = quality(proposal.hyperparameters)
        epochs += run(strategy, trial, [q + 1.0 / e for e in range(1, 28)], trials)
    assert epochs < 0.6 * 40 * 27
    best = min(trials, key=lambda t: quality(t.hyperparameters))
    assert best.status == COMPLETED and len(best.intermediate) == 27
    for t in trials:
        if t.status == STOPPED:
            assert len(t.intermediate) in strategy.rungs
