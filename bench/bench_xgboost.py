"""forgeml's XGBoost algorithm beside calling ``xgboost.train`` directly, on the same data.

Target (from the issue): forgeml's overhead over ``xgboost.train`` with the same parameters is at
most 10%, at equal quality. Each case is timed end to end as a user would run it:

* ours:   ``train_builtin`` (a job's training: read the channel files, build the matrices, train
          with the per-round evaluation lines, save ``xgboost-model``);
* anchor: read the same files the usual direct way (pandas for CSV, scikit-learn for LibSVM),
          ``xgboost.DMatrix``, ``xgboost.train`` with the same parameters and watchlist, printing
          its evaluation lines (``verbose_eval``), ``save_model``.

The last case times only the training call, both sides on one and the same DMatrix, which
isolates what forgeml adds per round (evaluation lines, custom metrics, callbacks).
Quality is the final validation metric each side reports. Run: ``python bench/bench_xgboost.py``.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xgboost as xgb
from sklearn.datasets import load_svmlight_file, make_classification, make_regression

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from forgeml.algorithms.harness import ChannelData, train_builtin  # noqa: E402
from forgeml.algorithms.registry import get_algorithm  # noqa: E402
from forgeml.algorithms.xgboost import config  # noqa: E402
from forgeml.algorithms.xgboost.callbacks import EvalLinePrinter  # noqa: E402
from forgeml.algorithms.xgboost.train import fit  # noqa: E402
from forgeml.data.csv_format import write_csv  # noqa: E402
from forgeml.data.libsvm import write_libsvm  # noqa: E402

RUNS = 5
THREADS = 1  # one thread: OpenMP spin-waits inflate timings on a shared machine
ALGORITHM = get_algorithm("xgboost")


@dataclass
class Timing:
    wall: float
    cpu: float
    quality: float


def race(ours_work: Callable[[], float], anchor_work: Callable[[], float]) -> tuple[Timing, Timing]:
    """RUNS interleaved calls of each side after a warm-up (load from other processes hits both alike)."""
    samples: dict[str, list[tuple[float, float, float]]] = {"ours": [], "anchor": []}
    ours_work(), anchor_work()  # warm-up: imports, first-call allocations
    for _ in range(RUNS):
        for side, work in (("ours", ours_work), ("anchor", anchor_work)):
            wall, cpu = time.perf_counter(), time.process_time()
            quality = work()
            samples[side].append((time.perf_counter() - wall, time.process_time() - cpu, quality))
    result = [
        Timing(statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs), runs[-1][2])
        for runs in (samples["ours"], samples["anchor"])
    ]
    return result[0], result[1]


def last_metric(log: str, name: str) -> float:
    values = [ALGORITHM.match_metric(name, line) for line in log.splitlines()]
    found = [v for v in values if v is not None]
    return found[-1]


def ours(folder: Path, hyperparameters: dict[str, str], content_type: str, metric: str) -> Callable[[], float]:
    def work() -> float:
        stream = io.StringIO()
        channels = {
            "train": ChannelData(folder / "train", content_type),
            "validation": ChannelData(folder / "validation", content_type),
        }
        train_builtin("xgboost", hyperparameters, channels, folder / "model-ours", stream=stream)
        return last_metric(stream.getvalue(), f"validation:{metric}")

    return work


def anchor(
    folder: Path, params: dict, rounds: int, reader: Callable[[Path], tuple], metric: str,
    custom: Callable | None = None,
) -> Callable[[], float]:
    def work() -> float:
        X_train, y_train = reader(folder / "train")
        X_val, y_val = reader(folder / "validation")
        dtrain, dval = xgb.DMatrix(X_train, label=y_train), xgb.DMatrix(X_val, label=y_val)
        result: dict = {}
        with contextlib.redirect_stdout(io.StringIO()):
            booster = xgb.train(params, dtrain, rounds, evals=[(dtrain, "train"), (dval, "validation")],
                                evals_result=result, custom_metric=custom, verbose_eval=True)
        booster.save_model(str(folder / "anchor.ubj"))
        return float(result["validation"][metric][-1])

    return work


def read_csv_pandas(folder: Path) -> tuple:
    frame = pd.read_csv(folder / "data.csv", header=None, dtype=np.float32)
    values = frame.to_numpy()
    return values[:, 1:], values[:, 0]


def read_libsvm_sklearn(folder: Path) -> tuple:
    X, y = load_svmlight_file(str(folder / "data.libsvm"), zero_based=True)
    return X, y


def accuracy_metric(predictions: np.ndarray, dmatrix: xgb.DMatrix) -> tuple[str, float]:
    """What a direct user writes for the container's ``accuracy`` metric."""
    from sklearn.metrics import accuracy_score

    return "accuracy", float(accuracy_score(dmatrix.get_label(), np.argmax(predictions, axis=1)))


def write_split(folder: Path, X: np.ndarray, y: np.ndarray, fmt: str, cut: int) -> None:
    for name, rows in (("train", slice(0, cut)), ("validation", slice(cut, None))):
        (folder / name).mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            write_csv(folder / name / "data.csv", X[rows], y[rows])
        else:
            write_libsvm(folder / name / "data.libsvm", sp.csr_matrix(X[rows]), y[rows])


def same_matrix_case() -> tuple[Timing, Timing]:
    """Only the training call, both sides on the same DMatrix."""
    hyperparameters = {"num_round": "100", "objective": "binary:logistic", "eval_metric": "logloss,auc",
                       "max_depth": "6", "nthread": str(THREADS)}
    plan = config.plan(ALGORITHM.validate_hyperparameters(hyperparameters), THREADS)
    X, y = make_classification(30_000, 30, n_informative=12, random_state=7)
    dtrain = xgb.DMatrix(X[:25_000].astype(np.float32), label=y[:25_000])
    dval = xgb.DMatrix(X[25_000:].astype(np.float32), label=y[25_000:])

    def ours_fit() -> float:
        booster = fit(plan, dtrain, dval, [EvalLinePrinter(io.StringIO())], plan.num_round)
        return _auc(booster, dval)

    def anchor_fit() -> float:
        with contextlib.redirect_stdout(io.StringIO()):
            booster = xgb.train(plan.params, dtrain, plan.num_round, evals=[(dtrain, "train"), (dval, "validation")],
                                verbose_eval=True)
        return _auc(booster, dval)

    return race(ours_fit, anchor_fit)


def _auc(booster: xgb.Booster, dmatrix: xgb.DMatrix) -> float:
    return float(booster.eval(dmatrix, "validation").split("validation-auc:")[1])


def main() -> None:
    warnings.simplefilter("ignore")
    rows: list[tuple[str, Timing, Timing, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        X, y = make_classification(50_000, 30, n_informative=12, random_state=0)
        write_split(root / "binary", X.astype(np.float32), y.astype(np.float32), "csv", 40_000)
        hp = {"num_round": "60", "objective": "binary:logistic", "eval_metric": "logloss,auc", "max_depth": "6",
              "eta": "0.3", "nthread": str(THREADS)}
        params = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "max_depth": 6, "eta": 0.3,
                  "nthread": THREADS}
        o, a = race(ours(root / "binary", hp, "text/csv", "auc"), anchor(root / "binary", params, 60, read_csv_pandas, "auc"))
        rows.append(("binary, CSV files, 50k x 30, 60 rounds", o, a, "validation:auc"))

        X, y = make_regression(40_000, 40, n_informative=20, noise=5.0, random_state=1)
        X[np.abs(X) < 0.7] = 0.0  # sparse-ish, as LibSVM data usually is
        write_split(root / "regression", X.astype(np.float32), y.astype(np.float32), "libsvm", 32_000)
        hp = {"num_round": "60", "max_depth": "5", "eta": "0.2", "nthread": str(THREADS)}
        params = {"max_depth": 5, "eta": 0.2, "nthread": THREADS}
        o, a = race(ours(root / "regression", hp, "text/libsvm", "rmse"),
                    anchor(root / "regression", params, 60, read_libsvm_sklearn, "rmse"))
        rows.append(("regression, LibSVM files, 40k x 40, 60 rounds", o, a, "validation:rmse"))

        X, y = make_classification(20_000, 20, n_informative=10, n_classes=4, random_state=2)
        write_split(root / "multiclass", X.astype(np.float32), y.astype(np.float32), "csv", 16_000)
        hp = {"num_round": "30", "objective": "multi:softprob", "num_class": "4", "eval_metric": "mlogloss,accuracy",
              "max_depth": "5", "nthread": str(THREADS)}
        params = {"objective": "multi:softprob", "num_class": 4, "eval_metric": ["mlogloss"], "max_depth": 5,
                  "nthread": THREADS}
        o, a = race(ours(root / "multiclass", hp, "text/csv", "accuracy"),
                    anchor(root / "multiclass", params, 30, read_csv_pandas, "accuracy", accuracy_metric))
        rows.append(("multiclass + accuracy metric, CSV, 20k x 20, 30 rounds", o, a, "validation:accuracy"))

        o, a = same_matrix_case()
        rows.append(("train call only, same DMatrix, 25k x 30, 100 rounds", o, a, "validation:auc"))

    header = ("case", "ours time s", "anchor time s", "ratio", "ours quality", "anchor quality", "target")
    table = [header]
    for case, o, a, metric in rows:
        table.append((
            case, f"{o.cpu:.3f}", f"{a.cpu:.3f}", f"{o.cpu / a.cpu:.2f}",
            f"{metric}={o.quality:.5f}", f"{a.quality:.5f}", "ratio <= 1.10, quality equal",
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for index, row in enumerate(table):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("-+-".join("-" * width for width in widths))
    print(f"\ntime = CPU seconds of the process (all threads), median of {RUNS} interleaved runs; "
          f"xgboost {xgb.__version__}, nthread={THREADS}.")
    print("Wall-clock medians (noisy on a shared machine):")
    for case, o, a, _ in rows:
        print(f"  {case}: ours {o.wall:.3f} s, anchor {a.wall:.3f} s, ratio {o.wall / a.wall:.2f}")


if __name__ == "__main__":
    main()
