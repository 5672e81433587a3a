"""Random and Grid strategies, and create_strategy."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from scipy import stats

from forgeml.errors import ValidationException
from forgeml.tuning.base import COMPLETED, FAILED, PENDING, Trial
from forgeml.tuning.space import SearchSpace
from forgeml.tuning.strategies import (
    BayesianStrategy,
    GridStrategy,
    RandomStrategy,
    create_strategy,
)

MIXED = SearchSpace.from_parameter_ranges({
    "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "12", "ScalingType": "Linear"}],
    "ContinuousParameterRanges": [
        {"Name": "lr", "MinValue": "1e-5", "MaxValue": "1", "ScalingType": "Logarithmic"},
        {"Name": "beta", "MinValue": "0", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
    ],
    "CategoricalParameterRanges": [{"Name": "opt", "Values": ["sgd", "adam"]}],
})
GRID = SearchSpace.from_parameter_ranges({"CategoricalParameterRanges": [
    {"Name": "a", "Values": ["1", "2", "3"]},
    {"Name": "b", "Values": ["x", "y"]},
    {"Name": "c", "Values": ["p", "q"]},
]})


def launch(trials: list[Trial], proposals, status: str = PENDING) -> None:
    for p in proposals:
        trials.append(Trial(number=len(trials) + 1, hyperparameters=dict(p.hyperparameters), status=status))


def finish_all(trials: list[Trial], value: float = 1.0) -> None:
    for t in trials:
        if t.status == PENDING:
            t.status, t.objective = COMPLETED, value


def run_sequence(strategy, batches: list[int]) -> list[dict[str, str]]:
    trials: list[Trial] = []
    for count in batches:
        launch(trials, strategy.suggest(trials, count))
        finish_all(trials)
    return [t.hyperparameters for t in trials]


# -- Random ------------------------------------------------------------------------------------------------
def test_random_proposals_honour_ranges_and_formats():
    strategy = RandomStrategy(MIXED, minimize=True, seed=1)
    proposals = strategy.suggest([], 500)
    assert len(proposals) == 500
    for p in proposals:
        assert set(p.hyperparameters) == {"depth", "lr", "beta", "opt"}
        assert p.resource is None
        depth = p.hyperparameters["depth"]
        assert depth == str(int(depth)) and 1 <= int(depth) <= 12
        assert 1e-5 <= float(p.hyperparameters["lr"]) <= 1
        assert 0 <= float(p.hyperparameters["beta"]) <= 0.999
        assert p.hyperparameters["opt"] in ("sgd", "adam")
    logs = np.log10([float(p.hyperparameters["lr"]) for p in proposals])
    assert stats.kstest((logs + 5) / 5, "uniform").pvalue > 0.001  # log-uniform
    beta = np.array([float(p.hyperparameters["beta"]) for p in proposals])
    assert np.mean(beta > 0.9) > 0.5  # reverse log: dense near 1


def test_random_is_deterministic_and_parallelism_invariant():
    first = run_sequence(RandomStrategy(MIXED, minimize=True, seed=7), [1] * 12)
    again = run_sequence(RandomStrategy(MIXED, minimize=True, seed=7), [1] * 12)
    batched = run_sequence(RandomStrategy(MIXED, minimize=True, seed=7), [4, 4, 4])
    other = run_sequence(RandomStrategy(MIXED, minimize=True, seed=8), [1] * 12)
    assert first == again
    assert first == batched  # proposal k comes from its own stream: same job, whatever the batch sizes
    assert first != other


def test_random_without_a_seed_still_works():
    strategy = RandomStrategy(MIXED, minimize=False)
    assert len(strategy.suggest([], 3)) == 3


def test_random_parallel_proposals_differ_from_each_other_and_from_running_trials():
    space = SearchSpace.from_parameter_ranges({"CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "b", "c", "d"]}]})
    strategy = RandomStrategy(space, minimize=True, seed=3)
    trials: list[Trial] = []
    launch(trials, strategy.suggest(trials, 2))
    more = strategy.suggest(trials, 2)
    values = [t.hyperparameters["c"] for t in trials] + [p.hyperparameters["c"] for p in more]
    assert sorted(values) == ["a", "b", "c", "d"]  # 4 slots, 4 values: each exactly once
    launch(trials, more)
    assert strategy.suggest(trials, 1) == []  # every value is running: nothing free to propose
    trials[0].status, trials[0].objective = COMPLETED, 0.5
    (again,) = strategy.suggest(trials, 1)
    assert again.hyperparameters == trials[0].hyperparameters  # a finished assignment may be drawn again


def test_random_tolerates_failed_trials_and_ignores_priors():
    prior = [Trial(-1, {"depth": "3", "lr": "0.1", "beta": "0.5", "opt": "sgd"}, COMPLETED, 0.1)]
    strategy = RandomStrategy(MIXED, minimize=True, seed=2, prior_trials=prior)
    trials: list[Trial] = []
    launch(trials, strategy.suggest(trials, 3), status=FAILED)
    assert len(strategy.suggest(trials, 3)) == 3
    assert run_sequence(RandomStrategy(MIXED, minimize=True, seed=2), [3]) == \
        run_sequence(RandomStrategy(MIXED, minimize=True, seed=2, prior_trials=prior), [3])


# -- Grid ----------------------------------------------------------------------------------------------------
def test_grid_covers_every_combination_exactly_once_then_stops():
    strategy = GridStrategy(GRID, minimize=True, seed=0)
    trials: list[Trial] = []
    for count in (5, 1, 4, 7):
        proposals = strategy.suggest(trials, count)
        launch(trials, proposals)
        finish_all(trials)
    assert len(trials) == 12
    combos = [tuple(t.hyperparameters[n] for n in "abc") for t in trials]
    assert len(set(combos)) == 12 == GRID.grid_size()
    assert strategy.suggest(trials, 3) == []


def test_grid_returns_fewer_than_asked_at_the_end_and_follows_a_stable_order():
    strategy = GridStrategy(GRID, minimize=True, seed=0)
    trials: list[Trial] = []
    launch(trials, strategy.suggest(trials, 10))
    last = strategy.suggest(trials, 10)
    assert len(last) == 2
    assert [p.hyperparameters for p in strategy.suggest([], 12)] == list(GRID.grid())
    assert run_sequence(GridStrategy(GRID, minimize=True, seed=1), [3, 3, 3, 3]) == list(GRID.grid())


def test_grid_does_not_repeat_running_or_failed_combinations():
    strategy = GridStrategy(GRID, minimize=True)
    trials: list[Trial] = []
    launch(trials, strategy.suggest(trials, 3), status=FAILED)
    launch(trials, strategy.suggest(trials, 3))  # running
    rest = strategy.suggest(trials, 20)
    assert len(rest) == 6
    seen = {tuple(t.hyperparameters.values()) for t in trials}
    assert not seen & {tuple(p.hyperparameters.values()) for p in rest}


def test_grid_skips_combinations_the_warm_start_parents_ran():
    parents = [Trial(-1, {"a": "1", "b": "x", "c": "p"}, COMPLETED, 0.3),
               Trial(-2, {"a": "3", "b": "y", "c": "q"}, COMPLETED, 0.2),
               Trial(-3, {"a": "9", "b": "y", "c": "q"}, COMPLETED, 0.2)]  # not in this grid: ignored
    strategy = GridStrategy(GRID, minimize=True, prior_trials=parents)
    proposals = strategy.suggest([], 20)
    assert len(proposals) == 10
    keys = {tuple(p.hyperparameters.values()) for p in proposals}
    assert ("1", "x", "p") not in keys and ("3", "y", "q") not in keys


def test_grid_rejects_numeric_ranges():
    with pytest.raises(ValidationException, match="depth, lr, beta.*only CategoricalParameterRanges"):
        GridStrategy(MIXED, minimize=True)


# -- create_strategy -------------------------------------------------------------------------------------
def test_create_strategy_by_name():
    assert isinstance(create_strategy("Random", MIXED, minimize=True, seed=1, max_jobs=5), RandomStrategy)
    assert isinstance(create_strategy("Bayesian", MIXED, minimize=False, seed=1, max_jobs=5), BayesianStrategy)
    grid = create_strategy("Grid", GRID, minimize=True, seed=None, max_jobs=12, prior_trials=())
    assert isinstance(grid, GridStrategy)
    assert grid.minimize and grid.max_jobs == 12
    with pytest.raises(ValidationException, match="strategy"):
        create_strategy("Annealing", MIXED, minimize=True, seed=1, max_jobs=5)


def test_create_strategy_imports_hyperband_lazily(monkeypatch):
    made = {}

    class FakeHyperband:
        def __init__(self, space, **kwargs):
            made.update(kwargs, space=space)

    module = types.ModuleType("forgeml.tuning.strategies.hyperband")
    module.HyperbandStrategy = FakeHyperband  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "forgeml.tuning.strategies.hyperband", module)
    prior = [Trial(-1, {"depth": "2"}, COMPLETED, 1.0)]
    strategy = create_strategy("Hyperband", MIXED, minimize=True, seed=4, max_jobs=20, prior_trials=prior,
                               hyperband_config={"MinResource": 1, "MaxResource": 27})
    assert isinstance(strategy, FakeHyperband)
    assert made == {"space": MIXED, "minimize": True, "seed": 4, "max_jobs": 20, "min_resource": 1,
                    "max_resource": 27, "prior_trials": prior}
    with pytest.raises(ValidationException, match="MaxResource"):
        create_strategy("Hyperband", MIXED, minimize=True, seed=4, max_jobs=20)
