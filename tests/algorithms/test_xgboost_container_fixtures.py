"""XGBoost on the SageMaker XGBoost container's own test resources (skipped without /work/shared):
the abalone splits, its small CSV/LibSVM/Parquet/RecordIO files, and a real SageMaker artifact."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb

from forgeml.algorithms import get_algorithm
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.data.libsvm import read_libsvm

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FIXTURES = SHARED / "data" / "xgboost-container"
ALGORITHM = get_algorithm("xgboost")

pytestmark = pytest.mark.filterwarnings("ignore:.*Unknown file format")


@pytest.fixture(autouse=True)
def _need_fixtures() -> None:
    if not FIXTURES.is_dir():
        pytest.skip("the shared XGBoost container fixtures are not available")


def run(tmp: Path, hyperparameters: dict[str, str], channels: dict[str, ChannelData]) -> list[str]:
    stream = io.StringIO()
    train_builtin("xgboost", hyperparameters, channels, tmp / "model", tmp / "output", stream=stream)
    return [line for line in stream.getvalue().splitlines() if line.startswith("[") and "#011" in line]


def abalone(name: str) -> dict[str, ChannelData]:
    data = FIXTURES / name / "data"
    return {"train": ChannelData(data / "train"), "validation": ChannelData(data / "validation")}


def test_abalone_regression(tmp_path: Path) -> None:
    lines = run(tmp_path, {"num_round": "20", "max_depth": "5", "eta": "0.2", "subsample": "0.7",
                           "min_child_weight": "6", "objective": "reg:squarederror"}, abalone("abalone"))
    assert len(lines) == 20
    rmse = ALGORITHM.match_metric("validation:rmse", lines[-1])
    assert rmse is not None and rmse < 2.6  # the label's standard deviation is 3.3


def test_abalone_binary_with_early_stopping(tmp_path: Path) -> None:
    lines = run(tmp_path, {"num_round": "50", "objective": "binary:logistic", "eval_metric": "auc",
                           "early_stopping_rounds": "5", "scale_pos_weight": "10"}, abalone("abalone-binary"))
    auc = ALGORITHM.match_metric("validation:auc", lines[-1])
    assert auc is not None and auc > 0.8


def test_abalone_multiclass(tmp_path: Path) -> None:
    # its validation file has a truncated last feature on line 481 (``8:``), which forgeml's LibSVM
    # reader refuses; the two train files serve as train and validation instead
    data = FIXTURES / "abalone-multiclass" / "data" / "train"
    for name, part in (("train", "abalone.train_0"), ("validation", "abalone.train_1")):
        (tmp_path / name).mkdir()
        shutil.copy(data / part, tmp_path / name / part)
    labels = read_libsvm(data / "abalone.train_0").labels
    assert labels is not None
    lines = run(tmp_path, {"num_round": "10", "objective": "multi:softmax", "num_class": str(int(labels.max()) + 1),
                           "eval_metric": "merror,accuracy"},
                {"train": ChannelData(tmp_path / "train"), "validation": ChannelData(tmp_path / "validation")})
    merror = ALGORITHM.match_metric("validation:merror", lines[-1])
    accuracy = ALGORITHM.match_metric("validation:accuracy", lines[-1])
    assert merror is not None and accuracy is not None and merror == pytest.approx(1 - accuracy, abs=1e-4)


@pytest.mark.parametrize(
    ("path", "content_type", "extra"),
    [
        ("csv/train.csv", "text/csv", {}),
        ("csv/multiple_files", "csv", {}),
        ("csv/train.csv.weights", "text/csv", {"csv_weights": "1"}),
        ("libsvm/train.libsvm", "libsvm", {}),
        ("libsvm/train.libsvm.weights", "text/x-libsvm", {}),
        ("parquet/train.parquet", "application/x-parquet", {}),
        ("parquet/multiple_files", "parquet", {}),
        ("recordio_protobuf/train.pb", "application/x-recordio-protobuf", {}),
        ("recordio_protobuf/sparse/train.pb", "recordio-protobuf", {}),
        ("recordio_protobuf/sparse_edge_cases", "application/x-recordio-protobuf", {}),
    ],
)
def test_container_data_files(tmp_path: Path, path: str, content_type: str, extra: dict[str, str]) -> None:
    source = FIXTURES / "data" / path
    train = tmp_path / "train"
    if source.is_dir():
        shutil.copytree(source, train)
    else:
        train.mkdir()
        shutil.copy(source, train / source.name)
    lines = run(tmp_path, {"num_round": "3", **extra}, {"train": ChannelData(train, content_type)})
    assert [line.split("#011")[0] for line in lines] == ["[0]", "[1]", "[2]"]
    assert ALGORITHM.match_metric("train:rmse", lines[-1]) is not None


def test_real_sagemaker_artifact_loads_and_serves() -> None:
    model_dir = FIXTURES / "abalone" / "models" / "libsvm_pickled"
    model = ALGORITHM.load_model(model_dir)
    validation = read_libsvm(FIXTURES / "abalone" / "data" / "validation" / "abalone.validation")
    # the artifact's 8 features are the data's LibSVM indices 1..8
    X = validation.features.toarray()[:, 1:]
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in X).encode()
    answer, content_type = ALGORITHM.invoke(model, body, "text/csv", "text/csv")
    predictions = np.loadtxt(io.StringIO(answer.decode()))
    reference = xgb.Booster(model_file=str(model_dir / "xgboost-model"))
    np.testing.assert_allclose(predictions, reference.predict(xgb.DMatrix(X)), rtol=1e-6)
    assert validation.labels is not None
    assert float(np.sqrt(np.mean((predictions - validation.labels) ** 2))) < 2.5
