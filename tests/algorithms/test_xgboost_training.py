"""XGBoost training through the job harness: content types, input modes, log lines and metrics,
early stopping, checkpoints, k-fold mode, save-on-SIGTERM and the job's error reporting."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import scipy.sparse as sp
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
)

from forgeml.algorithms import get_algorithm
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.xgboost.custom_metrics import evaluate
from forgeml.data.csv_format import write_csv
from forgeml.data.libsvm import write_libsvm
from forgeml.data.parquet import write_parquet
from forgeml.data.recordio_protobuf import write_numpy_to_dense_tensor, write_spmatrix_to_sparse_tensor
from forgeml.errors import ClientError
from forgeml.runtime.pipe import PipeFeeder

# ``xgboost-model`` has no extension, as on SageMaker; XGBoost says it guesses UBJSON (correctly)
pytestmark = pytest.mark.filterwarnings("ignore:.*Unknown file format")

ALGORITHM = get_algorithm("xgboost")
SRC = Path(__file__).resolve().parents[2] / "src"
EVAL_LINE = re.compile(r"^\[(\d+)\](#011[a-z]+-[a-z0-9@._-]+:-?[0-9.]+(?:e[-+]?\d+)?)+$")


def open_binary(path: str) -> IO[bytes]:
    return open(path, "rb")  # noqa: SIM115 - PipeFeeder closes what its opener returns


def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return X.astype(np.float32), y.astype(np.float32)


def write(folder: Path, fmt: str, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> str:
    """Write one file of ``fmt`` into ``folder``; returns the channel content type."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        columns = X if weights is None else np.column_stack([weights, X])
        write_csv(folder / "data.csv", columns.astype(np.float32), y)
        return "text/csv"
    if fmt == "libsvm":
        write_libsvm(folder / "data.libsvm", sp.csr_matrix(X), y, weights)
        return "text/libsvm"
    if fmt == "parquet":
        write_parquet(folder / "data.parquet", X, y)
        return "application/x-parquet"
    with open(folder / "data.pbr", "wb") as handle:
        if fmt == "recordio-sparse":
            write_spmatrix_to_sparse_tensor(handle, sp.csr_matrix(X), y)
        else:
            write_numpy_to_dense_tensor(handle, X, y)
    return "application/x-recordio-protobuf"


def run(tmp: Path, hyperparameters: dict[str, str], channels: dict[str, ChannelData], **kw: object) -> str:
    stream = io.StringIO()
    train_builtin("xgboost", hyperparameters, channels, tmp / "model", tmp / "output", stream=stream, **kw)
    return stream.getvalue()


def eval_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("[") and "#011" in line]


def split_channels(tmp: Path, fmt: str, X: np.ndarray, y: np.ndarray, cut: int) -> dict[str, ChannelData]:
    train_type = write(tmp / "train", fmt, X[:cut], y[:cut])
    validation_type = write(tmp / "validation", fmt, X[cut:], y[cut:])
    return {
        "train": ChannelData(tmp / "train", train_type),
        "validation": ChannelData(tmp / "validation", validation_type),
    }


@pytest.mark.parametrize("fmt", ["csv", "libsvm", "parquet", "recordio-dense", "recordio-sparse"])
def test_every_training_content_type(tmp_path: Path, fmt: str) -> None:
    X, y = breast_cancer()
    log = run(tmp_path, {"num_round": "8", "objective": "binary:logistic", "eval_metric": "error,auc"},
              split_channels(tmp_path, fmt, X, y, 400))
    lines = eval_lines(log)
    assert len(lines) == 8 and all(EVAL_LINE.match(line) for line in lines)
    assert lines[0].startswith("[0]#011train-error:") and "#011validation-auc:" in lines[0]
    final_auc = ALGORITHM.match_metric("validation:auc", lines[-1])
    assert final_auc is not None and final_auc > 0.95
    booster = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model"))
    assert booster.num_boosted_rounds() == 8 and booster.num_features() == X.shape[1]


def test_libsvm_is_the_default_content_type(tmp_path: Path) -> None:
    X, y = breast_cancer()
    write(tmp_path / "train", "libsvm", X, y)
    log = run(tmp_path, {"num_round": "3"}, {"train": ChannelData(tmp_path / "train")})
    assert [line.split("#011")[0] for line in eval_lines(log)] == ["[0]", "[1]", "[2]"]
    assert "train-rmse" in eval_lines(log)[0]


def test_matches_xgboost_train_on_the_same_data(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    X, y = X.astype(np.float32), y.astype(np.float32)
    hp = {"num_round": "15", "max_depth": "3", "eta": "0.2", "seed": "3", "subsample": "0.9"}
    log = run(tmp_path, hp, split_channels(tmp_path, "csv", X, y, 350))
    ours = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model"))
    params = {"max_depth": 3, "eta": 0.2, "seed": 3, "subsample": 0.9, "nthread": 2}
    reference = xgb.train(params, xgb.QuantileDMatrix(X[:350], y[:350]), 15)
    np.testing.assert_allclose(ours.inplace_predict(X[350:]), reference.inplace_predict(X[350:]), rtol=1e-5)
    rmse = float(np.sqrt(np.mean((reference.inplace_predict(X[350:]) - y[350:]) ** 2)))
    assert ALGORITHM.match_metric("validation:rmse", eval_lines(log)[-1]) == pytest.approx(rmse, abs=1e-4)


def test_every_metric_regex_matches_per_round(tmp_path: Path) -> None:
    X, y = breast_cancer()
    metrics = "auc,aucpr,error,logloss,accuracy,f1,f1_binary,f1_macro,precision,recall,balanced_accuracy,mse,rmse,mae,r2"
    log = run(tmp_path, {"num_round": "4", "objective": "binary:logistic", "eval_metric": metrics},
              split_channels(tmp_path, "csv", X, y, 400))
    lines = eval_lines(log)
    for split in ("train", "validation"):
        for metric in metrics.split(","):
            values = [ALGORITHM.match_metric(f"{split}:{metric}", line) for line in lines]
            assert all(v is not None for v in values), f"{split}:{metric} missing from some rounds"
    # the container appends its own (custom) metrics after XGBoost's, per dataset
    names = [part.split(":")[0] for part in lines[0].split("#011")[1:]]
    assert names[:4] == ["train-auc", "train-aucpr", "train-error", "train-logloss"]
    assert names.index("train-accuracy") < names.index("validation-auc")


@pytest.mark.parametrize(
    ("objective", "extra", "metrics"),
    [
        ("multi:softmax", {"num_class": "3"}, "mlogloss,merror,accuracy,f1"),
        ("multi:softprob", {"num_class": "3"}, "mlogloss,merror,balanced_accuracy"),
        ("reg:squarederror", {}, "rmse,mae,mse,r2"),
        ("count:poisson", {}, "poisson-nloglik"),
        ("rank:pairwise", {}, "ndcg,map"),
        ("reg:gamma", {}, "gamma-nloglik,gamma-deviance"),
    ],
)
def test_metrics_of_other_objectives(tmp_path: Path, objective: str, extra: dict, metrics: str) -> None:
    X, y = load_iris(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    X, y = X[order].astype(np.float32), y[order].astype(np.float32)
    if objective == "reg:gamma":
        y = y + 1
    if objective.startswith("rank:"):
        y = (y == 2).astype(np.float32)  # XGBoost 3's map needs binary relevance
    log = run(tmp_path, {"num_round": "3", "objective": objective, "eval_metric": metrics, **extra},
              split_channels(tmp_path, "csv", X, y, 100))
    for metric in metrics.split(","):
        assert ALGORITHM.match_metric(f"validation:{metric}", eval_lines(log)[-1]) is not None, metric


def test_custom_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 200).astype(np.float32)
    probabilities = rng.dirichlet(np.ones(3), 200).astype(np.float32)
    predicted = probabilities.argmax(axis=1)
    names = ["accuracy", "balanced_accuracy", "f1", "f1_macro", "precision_macro", "precision_micro",
             "recall_macro", "recall_micro"]
    got = dict(evaluate(names, truth, probabilities, "multi:softprob"))
    assert got["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert got["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(truth, predicted))
    assert got["f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert got["precision_micro"] == pytest.approx(precision_score(truth, predicted, average="micro"))
    assert got["precision_macro"] == pytest.approx(precision_score(truth, predicted, average="macro", zero_division=0))
    assert got["recall_macro"] == pytest.approx(recall_score(truth, predicted, average="macro"))
    binary_truth = rng.integers(0, 2, 300).astype(np.float32)
    p = rng.random(300).astype(np.float32)
    got = dict(evaluate(["f1_binary", "precision", "recall", "accuracy"], binary_truth, p, "binary:logistic"))
    labels = (p > 0.5).astype(int)
    assert got["f1_binary"] == pytest.approx(f1_score(binary_truth, labels))
    assert got["precision"] == pytest.approx(precision_score(binary_truth, labels))
    assert got["recall"] == pytest.approx(recall_score(binary_truth, labels))
    values = rng.normal(size=100).astype(np.float32)
    truth_values = values + rng.normal(size=100).astype(np.float32)
    got = dict(evaluate(["r2", "mae", "rmse"], truth_values, values, "reg:squarederror"))
    assert got["r2"] == pytest.approx(r2_score(truth_values, values), rel=1e-5)
    assert got["mae"] == pytest.approx(mean_absolute_error(truth_values, values), rel=1e-5)
    with pytest.raises(ClientError, match="precision_macro"):
        evaluate(["precision"], truth, probabilities, "multi:softprob")


def test_early_stopping_keeps_the_best_round(tmp_path: Path) -> None:
    X, y = breast_cancer()
    log = run(tmp_path, {"num_round": "200", "objective": "binary:logistic", "eval_metric": "auc,logloss",
                         "early_stopping_rounds": "3", "eta": "0.5"}, split_channels(tmp_path, "csv", X, y, 400))
    lines = eval_lines(log)
    assert len(lines) < 200
    losses = [ALGORITHM.match_metric("validation:logloss", line) for line in lines]
    best = int(np.argmin(losses))
    assert len(lines) == best + 4  # three rounds without improvement after the best one
    booster = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model"))
    assert booster.num_boosted_rounds() == best + 1
    assert f"Best iteration: [{best}]" in log


def test_early_stopping_without_validation_is_reported(tmp_path: Path) -> None:
    X, y = breast_cancer()
    write(tmp_path / "train", "csv", X, y)
    log = run(tmp_path, {"num_round": "5", "early_stopping_rounds": "2"},
              {"train": ChannelData(tmp_path / "train", "text/csv")})
    assert "no validation channel" in log and len(eval_lines(log)) == 5


def test_csv_weights_column(tmp_path: Path) -> None:
    X, y = breast_cancer()
    weights = np.where(y > 0, 5.0, 1.0).astype(np.float32)
    write(tmp_path / "train", "csv", X, y, weights)
    run(tmp_path, {"num_round": "5", "csv_weights": "1", "objective": "binary:logistic", "seed": "1"},
        {"train": ChannelData(tmp_path / "train", "text/csv")})
    ours = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model"))
    assert ours.num_features() == X.shape[1]
    reference = xgb.train({"objective": "binary:logistic", "seed": 1, "nthread": 2},
                          xgb.QuantileDMatrix(X, y, weight=weights), 5)
    np.testing.assert_allclose(ours.inplace_predict(X), reference.inplace_predict(X), rtol=1e-5)


def test_libsvm_instance_weights(tmp_path: Path) -> None:
    X, y = breast_cancer()
    weights = np.where(y > 0, 3.0, 1.0).astype(np.float32)
    write(tmp_path / "train", "libsvm", X, y, weights)
    run(tmp_path, {"num_round": "4", "objective": "binary:logistic"}, {"train": ChannelData(tmp_path / "train")})
    ours = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model"))
    reference = xgb.train({"objective": "binary:logistic", "nthread": 2}, xgb.QuantileDMatrix(sp.csr_matrix(X), y, weight=weights), 4)
    np.testing.assert_allclose(ours.inplace_predict(sp.csr_matrix(X)), reference.inplace_predict(sp.csr_matrix(X)), rtol=1e-5)


@pytest.mark.parametrize("fmt", ["csv", "recordio-dense", "parquet"])
def test_pipe_mode(tmp_path: Path, fmt: str) -> None:
    X, y = breast_cancer()
    content_type = write(tmp_path / "src", fmt, X, y)
    files = sorted(str(p) for p in (tmp_path / "src").iterdir())
    feeders = [PipeFeeder(channel=name, folder=tmp_path / "pipes", objects=files, opener=open_binary)
               for name in ("train", "validation")]
    for feeder in feeders:
        feeder.start()
    try:
        log = run(tmp_path, {"num_round": "3", "objective": "binary:logistic"}, {
            "train": ChannelData(tmp_path / "pipes" / "train", content_type, "Pipe"),
            "validation": ChannelData(tmp_path / "pipes" / "validation", content_type, "Pipe"),
        })
    finally:
        for feeder in feeders:
            feeder.close()
    assert len(eval_lines(log)) == 3 and f"Train matrix has {len(y)} rows and {X.shape[1]} columns" in log


def test_pipe_mode_refuses_libsvm(tmp_path: Path) -> None:
    X, y = breast_cancer()
    write(tmp_path / "src", "libsvm", X, y)
    with pytest.raises(ClientError, match="Pipe mode not supported for LibSVM"):
        run(tmp_path, {"num_round": "2"}, {"train": ChannelData(tmp_path / "pipes" / "train", "text/libsvm", "Pipe")})


def test_checkpoints_and_resume(tmp_path: Path) -> None:
    X, y = breast_cancer()
    channels = split_channels(tmp_path, "csv", X, y, 400)
    checkpoints = tmp_path / "checkpoints"
    run(tmp_path, {"num_round": "8", "objective": "binary:logistic"}, channels, checkpoint_dir=checkpoints)
    kept = sorted(int(p.name.split(".")[1]) for p in checkpoints.iterdir())
    assert kept == [3, 4, 5, 6, 7]  # the five newest, like the container
    full = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model"))
    # a restarted job (e.g. managed spot) resumes after the newest checkpoint
    (checkpoints / "xgboost-checkpoint.7").unlink()
    log = run(tmp_path, {"num_round": "8", "objective": "binary:logistic"}, channels, checkpoint_dir=checkpoints)
    assert "Resuming from iteration 7" in log
    assert [line.split("#011")[0] for line in eval_lines(log)] == ["[7]"]
    resumed = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model"))
    assert resumed.num_boosted_rounds() == 8
    np.testing.assert_allclose(resumed.inplace_predict(X), full.inplace_predict(X), rtol=1e-5)


def test_kfold_mode(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)
    log = run(tmp_path, {"num_round": "4", "objective": "multi:softprob", "num_class": "3", "_kfold": "3",
                         "_num_cv_round": "2", "eval_metric": "merror"},
              split_channels(tmp_path, "csv", X.astype(np.float32), y.astype(np.float32), 100))
    models = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert models == [f"xgboost-model-{i}" for i in range(6)]
    assert "Run 2-round of 3-fold cross validation with 150 rows" in log
    assert log.count("The metrics of round") == 2 and "The overall metrics of 2-round cross validation" in log
    cv_lines = [line for line in eval_lines(log) if line.startswith("[4]")]
    assert len(cv_lines) == 3 and cv_lines[0].split("#011")[1].startswith("train-merror:")
    assert ALGORITHM.match_metric("validation:merror", cv_lines[-1]) is not None
    table = np.loadtxt(tmp_path / "output" / "predictions.csv", delimiter=",")
    assert table.shape == (150, 3)  # label, mean probability, voted class
    np.testing.assert_array_equal(table[:, 0], np.concatenate([y[:100], y[100:]]))
    assert np.mean(table[:, 2] == table[:, 0]) > 0.85


def test_dart_and_gblinear_boosters(tmp_path: Path) -> None:
    X, y = breast_cancer()
    for booster, extra in (("dart", {"rate_drop": "0.1"}), ("gblinear", {"updater": "coord_descent"})):
        log = run(tmp_path, {"num_round": "6", "booster": booster, "objective": "binary:logistic",
                             "early_stopping_rounds": "2", **extra}, split_channels(tmp_path / booster, "csv", X, y, 400))
        assert ALGORITHM.match_metric("validation:logloss", eval_lines(log)[-1]) is not None


def test_survival_aft_uses_labels_as_exact_times(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    log = run(tmp_path, {"num_round": "3", "objective": "survival:aft", "eval_metric": "aft-nloglik"},
              split_channels(tmp_path, "csv", X.astype(np.float32), y.astype(np.float32), 300))
    assert ALGORITHM.match_metric("validation:aft-nloglik", eval_lines(log)[-1]) is not None


def test_xgboost_warnings_reach_the_log(tmp_path: Path) -> None:
    X, y = breast_cancer()
    write(tmp_path / "train", "csv", X, y)
    log = run(tmp_path, {"num_round": "2", "objective": "reg:linear"}, {"train": ChannelData(tmp_path / "train", "text/csv")})
    assert re.search(r"WARNING .*reg:linear is now deprecated", log)


@pytest.mark.parametrize(
    ("hyperparameters", "data", "message"),
    [
        ({"objective": "multi:softmax", "num_class": "2"}, "iris", "label must be in \\[0, num_class\\)"),
        ({"objective": "binary:logistic"}, "diabetes", "label must be in \\[0,1\\]"),
        ({"csv_weights": "1"}, "one-column", "csv_weights=1"),
        ({"objective": "reg:gamma"}, "cancer", "^label must be positive for gamma regression"),
        ({"max_bin": "1"}, "cancer", "max_bin"),
        ({"process_type": "update", "updater": "refresh"}, "cancer", "No more tree left for updating"),
        ({}, "unlabelled", "without labels"),
        ({}, "empty", "empty"),
    ],
)
def test_data_errors_are_client_errors(tmp_path: Path, hyperparameters: dict, data: str, message: str) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    if data == "iris":
        X, y = load_iris(return_X_y=True)
        write(folder, "csv", X.astype(np.float32), y.astype(np.float32))
    elif data == "diabetes":
        X, y = load_diabetes(return_X_y=True)
        write(folder, "csv", X.astype(np.float32), y.astype(np.float32))
    elif data == "cancer":
        write(folder, "csv", *breast_cancer())
    elif data == "one-column":
        (folder / "data.csv").write_text("1,0.5\n0,0.25\n")
    elif data == "unlabelled":
        with open(folder / "data.pbr", "wb") as handle:
            write_numpy_to_dense_tensor(handle, np.ones((5, 3), dtype=np.float32))
    content_type = "application/x-recordio-protobuf" if data == "unlabelled" else "text/csv"
    with pytest.raises(ClientError, match=message):
        run(tmp_path, {"num_round": "2", **hyperparameters}, {"train": ChannelData(folder, content_type)})


def test_feature_count_mismatch_between_channels(tmp_path: Path) -> None:
    X, y = breast_cancer()
    write(tmp_path / "train", "csv", X, y)
    write(tmp_path / "validation", "csv", X[:, :5], y)
    with pytest.raises(ClientError, match="validation channel has 5 features but the train channel has 30"):
        run(tmp_path, {"num_round": "2"}, {"train": ChannelData(tmp_path / "train", "text/csv"),
                                           "validation": ChannelData(tmp_path / "validation", "text/csv")})


def test_csv_label_size_other_than_one_is_refused(tmp_path: Path) -> None:
    X, y = breast_cancer()
    write(tmp_path / "train", "csv", X, y)
    with pytest.raises(ClientError, match="label_size=1"):
        run(tmp_path, {"num_round": "2"}, {"train": ChannelData(tmp_path / "train", "text/csv;label_size=0")})


def test_gpu_request_without_gpu_fails_clearly(tmp_path: Path) -> None:
    from forgeml.algorithms.xgboost.gpu import gpu_available

    if gpu_available(0):
        pytest.skip("a GPU is present: the failure path cannot be exercised")
    X, y = breast_cancer()
    write(tmp_path / "train", "csv", X, y)
    with pytest.raises(ClientError, match="no GPU"):
        run(tmp_path, {"num_round": "2", "tree_method": "gpu_hist"}, {"train": ChannelData(tmp_path / "train", "text/csv")})


def test_save_model_on_termination(tmp_path: Path) -> None:
    X, y = breast_cancer()
    write(tmp_path / "train", "csv", np.tile(X, (20, 1)), np.tile(y, 20))
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from forgeml.algorithms.harness import ChannelData, train_builtin
        tmp = Path({str(tmp_path)!r})
        train_builtin("xgboost", {{"num_round": "100000", "save_model_on_termination": "true", "max_depth": "8"}},
                      {{"train": ChannelData(tmp / "train", "text/csv")}}, tmp / "model", stream=sys.stdout)
        print("TRAIN RETURNED", flush=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(SRC), "SM_NUM_CPUS": "1"}
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    for line in process.stdout:
        if line.startswith("[3]#011") or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "TRAIN RETURNED" in rest
    booster = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model"))
    assert 3 < booster.num_boosted_rounds() < 100000
