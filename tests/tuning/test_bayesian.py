"""The Bayesian strategy (GP + EI) and its GP building blocks."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from forgeml.tuning.base import COMPLETED, FAILED, PENDING, Trial
from forgeml.tuning.space import SearchSpace
from forgeml.tuning.strategies import BayesianStrategy, RandomStrategy
from forgeml.tuning.strategies.bayesian import warp_objective
from forgeml.tuning.strategies.gp import (
    GaussianProcess,
    fit_hyperparameters,
    log_expected_improvement,
    log_expected_improvement_with_gradient,
    log_h,
    negative_log_posterior,
)


def continuous(*names_bounds: tuple[str, float, float]) -> SearchSpace:
    return SearchSpace.from_parameter_ranges({"ContinuousParameterRanges": [
        {"Name": n, "MinValue": str(lo), "MaxValue": str(hi), "ScalingType": "Linear"} for n, lo, hi in names_bounds]})


BRANIN_SPACE = continuous(("x1", -5, 10), ("x2", 0, 15))
BRANIN_MIN = 0.397887
HARTMANN_SPACE = continuous(*[(f"x{i}", 0, 1) for i in range(6)])
HARTMANN_MIN = -3.32237
_A = np.array([1.0, 1.2, 3.0, 3.2])
_H = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                      [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def branin(h: dict[str, str]) -> float:
    x1, x2 = float(h["x1"]), float(h["x2"])
    b, c, t = 5.1 / (4 * np.pi ** 2), 5 / np.pi, 1 / (8 * np.pi)
    return float((x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10)


def hartmann6(h: dict[str, str]) -> float:
    x = np.array([float(h[f"x{i}"]) for i in range(6)])
    return float(-np.sum(_A * np.exp(-np.sum(_H * (x - _P) ** 2, axis=1))))


def run(strategy, f, n_trials: int, batch: int = 1, fail=lambda h: False) -> list[Trial]:
    """A tuning loop: ask for ``batch`` proposals while slots are free, then finish them all."""
    trials: list[Trial] = []
    while len(trials) < n_trials:
        proposals = strategy.suggest(trials, min(batch, n_trials - len(trials)))
        assert proposals
        for p in proposals:
            trials.append(Trial(len(trials) + 1, dict(p.hyperparameters)))
        for t in trials:
            if t.status == PENDING:
                if fail(t.hyperparameters):
                    t.status = FAILED
                else:
                    t.status, t.objective = COMPLETED, f(t.hyperparameters)
    return trials


def best(trials: list[Trial], minimize: bool = True) -> float:
    values = [t.objective for t in trials if t.objective is not None]
    return min(values) if minimize else max(values)


def completed(space: SearchSpace, f, n: int, seed: int = 0) -> list[Trial]:
    return [Trial(i + 1, a, COMPLETED, f(a)) for i, a in enumerate(space.sample(np.random.default_rng(seed), n))]


# -- quality ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("space, f, optimum, absolute", [(BRANIN_SPACE, branin, BRANIN_MIN, 0.2),
                                                         (HARTMANN_SPACE, hartmann6, HARTMANN_MIN, 0.7)])
def test_bayesian_beats_random_at_30_trials(space, f, optimum, absolute):
    regret = {"bayes": [], "random": []}
    for seed in range(5):
        regret["bayes"].append(best(run(BayesianStrategy(space, minimize=True, seed=seed, max_jobs=30), f, 30)) - optimum)
        regret["random"].append(best(run(RandomStrategy(space, minimize=True, seed=seed), f, 30)) - optimum)
    bayes, rand = np.median(regret["bayes"]), np.median(regret["random"])
    # Measured: Branin 0.0008 vs 1.09, Hartmann-6 0.04-0.2 vs 2.1 (median regret over 5 seeds).
    assert bayes < 0.25 * rand, regret
    assert bayes < absolute, regret


def test_parallel_batches_still_beat_random():
    bayes = [best(run(BayesianStrategy(BRANIN_SPACE, minimize=True, seed=s, max_jobs=24), branin, 24, batch=4))
             for s in range(3)]
    rand = [best(run(RandomStrategy(BRANIN_SPACE, minimize=True, seed=s), branin, 24, batch=4)) for s in range(3)]
    assert np.median(bayes) - BRANIN_MIN < 0.5 * (np.median(rand) - BRANIN_MIN)
    assert np.median(bayes) - BRANIN_MIN < 0.5


def test_maximising_works_like_minimising_the_negation():
    negated = [best(run(BayesianStrategy(BRANIN_SPACE, minimize=False, seed=s, max_jobs=25),
                        lambda h: -branin(h), 25), minimize=False) for s in range(3)]
    assert -np.median(negated) - BRANIN_MIN < 0.3
    # The same seed gives the same search whichever way the objective is written.
    a = run(BayesianStrategy(BRANIN_SPACE, minimize=False, seed=9, max_jobs=12), lambda h: -branin(h), 12)
    b = run(BayesianStrategy(BRANIN_SPACE, minimize=True, seed=9, max_jobs=12), branin, 12)
    assert [t.hyperparameters for t in a] == [t.hyperparameters for t in b]


def test_mixed_space_finds_the_right_category_and_scale():
    space = SearchSpace.from_parameter_ranges({
        "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "12"}],
        "ContinuousParameterRanges": [
            {"Name": "lr", "MinValue": "1e-6", "MaxValue": "1", "ScalingType": "Logarithmic"},
            {"Name": "beta", "MinValue": "0", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"}],
        "CategoricalParameterRanges": [{"Name": "opt", "Values": ["sgd", "adam", "rmsprop"]}],
    })

    def loss(h: dict[str, str]) -> float:
        return ((np.log10(float(h["lr"])) + 3) ** 2 + 4.0 * (h["opt"] != "adam") + abs(int(h["depth"]) - 7) / 4
                + 3 * (np.log10(1 - float(h["beta"])) + 2) ** 2 / 9)

    trials = run(BayesianStrategy(space, minimize=True, seed=0, max_jobs=30), loss, 30)
    for t in trials:
        h = t.hyperparameters
        assert h["depth"] == str(int(h["depth"])) and 1 <= int(h["depth"]) <= 12
        assert 1e-6 <= float(h["lr"]) <= 1 and 0 <= float(h["beta"]) <= 0.999 and h["opt"] in ("sgd", "adam", "rmsprop")
    winner = min(trials, key=lambda t: t.objective)
    assert winner.hyperparameters["opt"] == "adam"
    assert winner.objective < 1.0
    assert sum(t.hyperparameters["opt"] == "adam" for t in trials[15:]) >= 8  # exploits once it knows


# -- parallel proposals, failures, determinism -----------------------------------------------------------
def test_parallel_proposals_differ_from_each_other_and_from_running_trials():
    strategy = BayesianStrategy(BRANIN_SPACE, minimize=True, seed=1, max_jobs=50)
    trials = completed(BRANIN_SPACE, branin, 12)
    running = strategy.suggest(trials, 3)
    for p in running:
        trials.append(Trial(len(trials) + 1, dict(p.hyperparameters)))
    batch = strategy.suggest(trials, 5)
    assert len(batch) == 5
    points = np.array([BRANIN_SPACE.encode(p.hyperparameters) for p in running + batch])
    distances = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))[np.triu_indices(8, 1)]
    assert distances.min() > 1e-3  # the kriging believer spreads them out, not only "not identical"
    keys = {BRANIN_SPACE.key(p.hyperparameters) for p in running + batch}
    assert len(keys) == 8


def test_small_discrete_space_is_covered_without_repeats_and_never_repeats_running_trials():
    space = SearchSpace.from_parameter_ranges({
        "IntegerParameterRanges": [{"Name": "k", "MinValue": "1", "MaxValue": "4"}],
        "CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "b"]}]})
    strategy = BayesianStrategy(space, minimize=True, seed=0, max_jobs=20)
    trials = run(strategy, lambda h: int(h["k"]) + (h["c"] == "b"), 8, batch=2)
    assert len({space.key(t.hyperparameters) for t in trials}) == 8  # the whole space, once each
    running = strategy.suggest(trials, 3)  # the space is exhausted: repeats of finished ones are fine
    assert len({space.key(p.hyperparameters) for p in running}) == 3
    for p in running:
        trials.append(Trial(len(trials) + 1, dict(p.hyperparameters)))
    more = strategy.suggest(trials, 10)
    running_keys = {space.key(p.hyperparameters) for p in running}
    assert len(more) == 5 and not running_keys & {space.key(p.hyperparameters) for p in more}


def test_failed_trials_are_tolerated_and_never_proposed_again():
    space = SearchSpace.from_parameter_ranges({
        "IntegerParameterRanges": [{"Name": "k", "MinValue": "1", "MaxValue": "30"}],
        "CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "b"]}]})

    def fails(h):  # a region of the space crashes, as big batch sizes run out of memory
        return int(h["k"]) > 20

    trials = run(BayesianStrategy(space, minimize=True, seed=3, max_jobs=25),
                 lambda h: (int(h["k"]) - 12) ** 2 + (h["c"] == "b"), 25, fail=fails)
    failed = [t for t in trials if t.status == FAILED]
    assert failed and all(t.objective is None for t in failed)
    assert len({space.key(t.hyperparameters) for t in trials}) == 25
    assert best(trials) <= 1


def test_a_region_where_trials_crash_is_left_alone():
    def crashes(h):
        return float(h["x1"]) > 5  # a third of the box; two of Branin's three minima stay outside it

    runs = [run(BayesianStrategy(BRANIN_SPACE, minimize=True, seed=s, max_jobs=30), branin, 30, fail=crashes)
            for s in range(3)]
    failures = [sum(t.status == FAILED for t in trials) for trials in runs]
    # Measured 9-15 crashes of 30 and a median regret of 0.002; without the failure model 21-28 and 8.9.
    assert np.median(failures) <= 18, failures
    assert np.median([best(trials) for trials in runs]) - BRANIN_MIN < 0.3


def test_all_failed_or_non_finite_objectives_do_not_break_it():
    strategy = BayesianStrategy(BRANIN_SPACE, minimize=True, seed=0, max_jobs=20)
    trials = run(strategy, branin, 6, fail=lambda h: True)
    assert all(t.status == FAILED for t in trials)
    assert len(strategy.suggest(trials, 2)) == 2
    values = iter([float("nan"), float("inf"), 5.0, 1e300, 3.0, float("-inf")] + [None] * 100)

    def weird(h):
        v = next(values)
        return branin(h) if v is None else v

    trials = run(BayesianStrategy(BRANIN_SPACE, minimize=True, seed=0, max_jobs=20), weird, 15)
    assert len(trials) == 15


def test_same_seed_same_proposals():
    a = run(BayesianStrategy(HARTMANN_SPACE, minimize=True, seed=5, max_jobs=15), hartmann6, 15, batch=2)
    b = run(BayesianStrategy(HARTMANN_SPACE, minimize=True, seed=5, max_jobs=15), hartmann6, 15, batch=2)
    c = run(BayesianStrategy(HARTMANN_SPACE, minimize=True, seed=6, max_jobs=15), hartmann6, 15, batch=2)
    assert [t.hyperparameters for t in a] == [t.hyperparameters for t in b]
    assert [t.hyperparameters for t in a] != [t.hyperparameters for t in c]


def test_initial_design_is_a_latin_hypercube():
    space = continuous(("x", 0, 1), ("y", 0, 1), ("z", 0, 1))
    strategy = BayesianStrategy(space, minimize=True, seed=2, max_jobs=100)
    assert strategy.n_init == 4  # min(max(3, d + 1), 10)
    design = strategy.suggest([], 4)
    for name in ("x", "y", "z"):
        strata = sorted(int(float(p.hyperparameters[name]) * 4) for p in design)
        assert strata == [0, 1, 2, 3]
    assert BayesianStrategy(space, minimize=True, seed=2, max_jobs=6).n_init == 2  # small budgets explore less
    assert BayesianStrategy(HARTMANN_SPACE, minimize=True, seed=2).n_init == 7


def test_proposal_time_with_200_observations_is_sane():
    space = SearchSpace.from_parameter_ranges({
        "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "12"}],
        "ContinuousParameterRanges": [{"Name": f"x{i}", "MinValue": "0", "MaxValue": "1"} for i in range(4)],
        "CategoricalParameterRanges": [{"Name": "opt", "Values": ["sgd", "adam", "rmsprop"]}],
    })
    trials = completed(space, lambda h: sum(float(h[f"x{i}"]) for i in range(4)) + int(h["depth"]) / 12, 200)
    strategy = BayesianStrategy(space, minimize=True, seed=0, max_jobs=300)
    start = time.perf_counter()
    proposals = strategy.suggest(trials, 1)
    assert time.perf_counter() - start < 2.0  # a loose sanity bound; the real figure is ~15-30 ms
    assert len(proposals) == 1
    for p in proposals:
        trials.append(Trial(len(trials) + 1, dict(p.hyperparameters)))
    start = time.perf_counter()
    assert len(strategy.suggest(trials, 4)) == 4
    assert time.perf_counter() - start < 2.0


# -- warm start ------------------------------------------------------------------------------------------
def bowl(h: dict[str, str]) -> float:
    return (float(h["x"]) - 0.3) ** 2 + (float(h["y"]) - 0.7) ** 2


BOWL_SPACE = continuous(("x", 0, 1), ("y", 0, 1))


def test_warm_start_uses_parent_observations_from_the_first_proposal():
    parents = [Trial(-i - 1, t.hyperparameters, COMPLETED, t.objective) for i, t in
               enumerate(completed(BOWL_SPACE, bowl, 15, seed=4))]
    warm = BayesianStrategy(BOWL_SPACE, minimize=True, seed=0, max_jobs=10, prior_trials=parents)
    assert warm.prior_observations == 15 and warm.n_init == 0
    first = warm.suggest([], 3)
    # The first goes to the parents' optimum; the believer may send the others exploring.
    assert bowl(first[0].hyperparameters) < 0.01, [p.hyperparameters for p in first]
    assert sum(bowl(p.hyperparameters) < 0.01 for p in first) >= 2
    parent_keys = {BOWL_SPACE.key(t.hyperparameters) for t in parents}
    assert not parent_keys & {BOWL_SPACE.key(p.hyperparameters) for p in first}
    cold = BayesianStrategy(BOWL_SPACE, minimize=True, seed=0, max_jobs=10)
    assert cold.n_init == 3 and cold.suggest([], 1) != first[:1]


def test_warm_start_on_branin_starts_better_than_cold():
    parents = [Trial(-i - 1, t.hyperparameters, COMPLETED, t.objective)
               for i, t in enumerate(run(BayesianStrategy(BRANIN_SPACE, minimize=True, seed=11, max_jobs=20), branin, 20))]
    warm = [best(run(BayesianStrategy(BRANIN_SPACE, minimize=True, seed=s, max_jobs=5, prior_trials=parents), branin, 5))
            for s in range(3)]
    cold = [best(run(BayesianStrategy(BRANIN_SPACE, minimize=True, seed=s, max_jobs=5), branin, 5)) for s in range(3)]
    # Measured regrets: warm about 0.02 (one seed explores and ends at 0.58), cold 1.6 to 6.7.
    assert np.median(warm) - BRANIN_MIN < 0.1
    assert np.median(warm) - BRANIN_MIN < 0.2 * (np.median(cold) - BRANIN_MIN)


def test_transfer_learning_parents_are_mapped_into_the_new_space():
    space = SearchSpace.from_parameter_ranges({
        "ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"},
                                      {"Name": "lr", "MinValue": "1e-4", "MaxValue": "1e-1", "ScalingType": "Logarithmic"}],
        "CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "b"]}]})
    parents = [
        Trial(-1, {"x": "0.5", "lr": "0.01", "c": "a"}, COMPLETED, 1.0),  # fits
        Trial(-2, {"x": "0.5", "lr": "0.01", "c": "a", "old": "7"}, COMPLETED, 1.0),  # extra parameter: ignored
        Trial(-3, {"x": "0.5", "c": "b"}, COMPLETED, 2.0),  # lr was not tuned: filled with the middle
        Trial(-4, {"x": "1.005", "lr": "0.01", "c": "a"}, COMPLETED, 1.5),  # just outside: clipped
        Trial(-5, {"x": "3", "lr": "0.01", "c": "a"}, COMPLETED, 1.5),  # far outside: dropped
        Trial(-6, {"x": "0.5", "lr": "0.01", "c": "z"}, COMPLETED, 1.5),  # unknown category: dropped
        Trial(-7, {"x": "0.5", "lr": "0.01", "c": "a"}, FAILED, None),  # no objective: dropped
        Trial(-8, {"x": "oops", "lr": "0.01", "c": "a"}, COMPLETED, 1.0),  # unparsable: dropped
    ]
    strategy = BayesianStrategy(space, minimize=True, seed=0, max_jobs=10, prior_trials=parents)
    assert strategy.prior_observations == 4
    assert len(strategy.suggest([], 3)) == 3


# -- the GP and the acquisition ---------------------------------------------------------------------------
def _data(n=25, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, dim))
    y = np.sin(6 * x[:, 0]) + x[:, 1] ** 2 + 0.01 * rng.standard_normal(n)
    return x, (y - y.mean()) / y.std(), rng


def test_marginal_likelihood_gradient_matches_finite_differences():
    x, y, rng = _data()
    theta = rng.normal(size=x.shape[1] + 2) * 0.5
    _, grad = negative_log_posterior(theta, x, y)
    numeric = approx_fprime(theta, lambda t: negative_log_posterior(t, x, y)[0], 1e-6)
    assert np.allclose(grad, numeric, rtol=1e-4, atol=1e-4)


def test_fitted_gp_interpolates_and_learns_relevance():
    x, y, rng = _data(n=40)
    hyper = fit_hyperparameters(x, y, rng)
    gp = GaussianProcess(x, y, hyper)
    mean, var = gp.predict(x)
    assert np.abs(mean - y).max() < 0.1 and np.all(var < 0.05)
    assert hyper.lengthscales[2] > 3 * hyper.lengthscales[0]  # x_2 does not matter, x_0 matters most
    _, far_var = gp.predict(np.full((1, 3), 5.0))
    assert far_var[0] == pytest.approx(hyper.signal, rel=1e-3)


def test_log_ei_gradient_matches_finite_differences():
    x, y, rng = _data()
    gp = GaussianProcess(x, y, fit_hyperparameters(x, y, rng))
    best_value = float(y.min())
    points = rng.uniform(size=(4, 3))
    values, grads = log_expected_improvement_with_gradient(gp, points, best_value)
    assert np.allclose(values, log_expected_improvement(*gp.predict(points), best_value))
    for point, grad in zip(points, grads, strict=True):
        numeric = approx_fprime(point, lambda p: log_expected_improvement_with_gradient(gp, p[None], best_value)[0][0], 1e-7)
        assert np.allclose(grad, numeric, rtol=1e-3, atol=1e-3 * max(1.0, np.abs(numeric).max()))


def test_log_h_is_finite_and_monotone_far_below_the_incumbent():
    z = np.array([-1e4, -1e3, -200.0, -50.0, -10.0, -1.0001, -1.0, -0.5, 0.0, 2.0, 8.0])
    value, cdf_ratio, pdf_ratio = log_h(z)
    assert np.all(np.isfinite(value)) and np.all(np.diff(value) > 0)
    exact = np.log(z[5:] * __import__("scipy").special.ndtr(z[5:]) + np.exp(-z[5:] ** 2 / 2) / np.sqrt(2 * np.pi))
    assert np.allclose(value[5:], exact)
    assert np.all(np.isfinite(cdf_ratio)) and np.all(np.isfinite(pdf_ratio))


def test_objective_warp_keeps_order_and_tames_outliers():
    y = np.array([0.10, 0.12, 0.15, 0.2, 0.3, 1e10, float("nan"), float("inf")])
    z = warp_objective(y)
    assert np.all(np.isfinite(z))
    assert np.all(np.diff(z[:6]) > 0)
    assert z[6] == z[7] and z[6] > z[5]  # NaN and inf: the worst
    assert (z[1] - z[0]) / (z[5] - z[0]) > 0.002  # plain standardising would make this ~1e-12
    assert np.allclose(warp_objective(np.array([1.0, 2.0, 3.0])), [-1.2247, 0.0, 1.2247], atol=1e-4)
    assert np.all(warp_objective(np.array([5.0, 5.0])) == 0)
    assert len(warp_objective(np.array([]))) == 0
