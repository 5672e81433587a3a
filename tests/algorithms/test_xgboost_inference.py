"""XGBoost artifacts and inference: load_model round trips, every request content type and Accept
type, selectable output, batch-transform CSV, k-fold ensembles and pickled models."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from forgeml.algorithms import get_algorithm
from forgeml.algorithms.base import InferenceError, UnsupportedContentType
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.xgboost.serve import sniff_delimiter
from forgeml.data.csv_format import write_csv
from forgeml.data.recordio_protobuf import (
    read_records,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)
from forgeml.errors import ClientError

pytestmark = pytest.mark.filterwarnings("ignore:.*Unknown file format")

ALGORITHM = get_algorithm("xgboost")


def train_model(folder: Path, X: np.ndarray, y: np.ndarray, **hyperparameters: str) -> Path:
    (folder / "train").mkdir(parents=True)
    write_csv(folder / "train" / "data.csv", X.astype(np.float32), y.astype(np.float32))
    train_builtin("xgboost", {"num_round": "5", **hyperparameters}, {"train": ChannelData(folder / "train", "text/csv")},
                  folder / "model", folder / "output", stream=io.StringIO())
    return folder / "model"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, np.ndarray]]:
    root = tmp_path_factory.mktemp("models")
    cancer_X, cancer_y = load_breast_cancer(return_X_y=True)
    iris_X, iris_y = load_iris(return_X_y=True)
    diabetes_X, diabetes_y = load_diabetes(return_X_y=True)
    return {
        "binary": (train_model(root / "binary", cancer_X, cancer_y, objective="binary:logistic"), cancer_X[:6]),
        "logitraw": (train_model(root / "logitraw", cancer_X, cancer_y, objective="binary:logitraw"), cancer_X[:6]),
        "softprob": (train_model(root / "softprob", iris_X, iris_y, objective="multi:softprob", num_class="3"), iris_X[::30]),
        "softmax": (train_model(root / "softmax", iris_X, iris_y, objective="multi:softmax", num_class="3"), iris_X[::30]),
        "regression": (train_model(root / "regression", diabetes_X, diabetes_y), diabetes_X[:6]),
        "kfold": (train_model(root / "kfold", iris_X, iris_y, objective="multi:softprob", num_class="3", _kfold="3"),
                  iris_X[::30]),
    }


def booster(model_dir: Path, name: str = "xgboost-model") -> xgb.Booster:
    return xgb.Booster(model_file=str(model_dir / name))


def csv_body(X: np.ndarray, delimiter: str = ",") -> bytes:
    return "\n".join(delimiter.join(repr(float(v)) for v in row) for row in X.astype(np.float32)).encode()


def invoke(model_dir: Path, body: bytes, content_type: str = "text/csv", accept: str = "text/csv") -> tuple[bytes, str]:
    return ALGORITHM.invoke(ALGORITHM.load_model(model_dir), body, content_type, accept)


def test_artifact_loads_in_xgboost_and_round_trips(models: dict) -> None:
    for name in ("binary", "softprob", "regression"):
        model_dir, X = models[name]
        expected = booster(model_dir).predict(xgb.DMatrix(X.astype(np.float32)))
        body, content_type = invoke(model_dir, csv_body(X))
        assert content_type == "text/csv"
        got = np.loadtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2 if expected.ndim == 2 else 1)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_csv_response_shapes(models: dict) -> None:
    body, _ = invoke(models["binary"][0], csv_body(models["binary"][1][:2]))
    lines = body.decode().splitlines()
    assert len(lines) == 2 and body.endswith(b"\n") and all(str(np.float32(line)) == line for line in lines)
    body, _ = invoke(models["softprob"][0], csv_body(models["softprob"][1][:3]))
    rows = [line.split(",") for line in body.decode().splitlines()]
    assert [len(row) for row in rows] == [3, 3, 3]
    assert all(abs(sum(float(v) for v in row) - 1) < 1e-5 for row in rows)


@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", "application/x-recordio-protobuf"])
def test_accept_types(models: dict, accept: str) -> None:
    model_dir, X = models["softprob"]
    expected = booster(model_dir).predict(xgb.DMatrix(X.astype(np.float32)))
    body, content_type = invoke(model_dir, csv_body(X), accept=accept)
    assert content_type == accept
    if accept == "application/json":
        scores = [row["score"] for row in json.loads(body)["predictions"]]
    elif accept == "application/jsonlines":
        scores = [json.loads(line)["score"] for line in body.decode().splitlines()]
    else:
        scores = [list(record.label["score"].float32_tensor.values) for record in read_records(body)]
    np.testing.assert_allclose(np.array(scores), expected, rtol=1e-6)


def test_accept_negotiation(models: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir, X = models["regression"]
    assert invoke(model_dir, csv_body(X), accept="*/*")[1] == "text/csv"
    assert invoke(model_dir, csv_body(X), accept="")[1] == "text/csv"
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "application/json")
    body, content_type = invoke(model_dir, csv_body(X), accept="*/*")
    assert content_type == "application/json" and len(json.loads(body)["predictions"]) == len(X)
    with pytest.raises(UnsupportedContentType, match="text/html"):
        invoke(model_dir, csv_body(X), accept="text/html")


def test_request_content_types(models: dict) -> None:
    model_dir, X = models["regression"]
    expected = booster(model_dir).predict(xgb.DMatrix(X.astype(np.float32)))
    sparse = sp.csr_matrix(X.astype(np.float32))
    libsvm_lines = [" ".join(f"{j}:{float(sparse[i, j])!r}" for j in sparse[i].indices) for i in range(sparse.shape[0])]
    dense_records, sparse_records = io.BytesIO(), io.BytesIO()
    write_numpy_to_dense_tensor(dense_records, X.astype(np.float32))
    write_spmatrix_to_sparse_tensor(sparse_records, sparse)
    requests = [
        (csv_body(X), "text/csv"),
        (csv_body(X, "\t"), "text/csv; charset=utf-8"),
        ("\n".join(libsvm_lines).encode(), "text/libsvm"),  # no label
        ("\n".join("7 " + line for line in libsvm_lines).encode(), "text/x-libsvm"),  # label ignored
        ("\n".join(libsvm_lines).encode(), ""),  # no Content-Type: LibSVM
        (dense_records.getvalue(), "application/x-recordio-protobuf"),
        (sparse_records.getvalue(), "application/x-recordio-protobuf"),
    ]
    for body, content_type in requests:
        answer, _ = invoke(model_dir, body, content_type)
        np.testing.assert_allclose(np.loadtxt(io.StringIO(answer.decode())), expected, rtol=1e-6, err_msg=content_type)


def test_missing_values_and_narrow_sparse_rows(models: dict) -> None:
    model_dir, X = models["regression"]
    model = booster(model_dir)
    row = X[0].astype(np.float32).copy()
    row[[1, 4]] = np.nan
    body = ",".join("" if np.isnan(v) else repr(float(v)) for v in row).encode()
    answer, _ = invoke(model_dir, body)
    assert float(answer) == pytest.approx(float(model.inplace_predict(row[None, :])[0]), rel=1e-6)
    # a LibSVM row that stops early is as wide as the model, its tail missing
    answer, _ = invoke(model_dir, b"0:0.05 2:0.01", "text/libsvm")
    dense = np.full((1, X.shape[1]), np.nan, dtype=np.float32)
    dense[0, 0], dense[0, 2] = 0.05, 0.01
    assert float(answer) == pytest.approx(float(model.inplace_predict(dense)[0]), rel=1e-6)


def test_request_errors(models: dict) -> None:
    model_dir, X = models["regression"]
    with pytest.raises(UnsupportedContentType, match="application/json"):
        invoke(model_dir, b'{"instances": []}', "application/json")
    with pytest.raises(UnsupportedContentType):
        invoke(model_dir, csv_body(X), "application/x-parquet")
    with pytest.raises(InferenceError, match="Feature size of text/csv inference data 3"):
        invoke(model_dir, b"1,2,3")
    with pytest.raises(InferenceError, match="text/csv"):
        invoke(model_dir, b"1,abc,3")
    with pytest.raises(InferenceError, match="text/libsvm"):
        invoke(model_dir, b"1 x:y", "text/libsvm")
    assert invoke(model_dir, b"") == (b"", "text/csv")  # SageMaker answers 204 No Content


def test_sniffed_delimiters() -> None:
    assert sniff_delimiter("1.5,2,3") == ","
    assert sniff_delimiter("1.5\t2\t3") == "\t"
    assert sniff_delimiter("1.5;2;3") == ";"
    assert sniff_delimiter("1.5") == ","


def test_batch_transform_csv(models: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_BATCH", "true")
    model_dir, X = models["softprob"]
    body, _ = invoke(model_dir, csv_body(X[:2]))
    lines = body.decode().splitlines()
    assert body.endswith(b"\n") and len(lines) == 2
    assert all(line.startswith("[") and len(json.loads(line)) == 3 for line in lines)  # str(list) per line


def test_selectable_output_binary(models: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir, X = models["binary"]
    p = booster(model_dir).predict(xgb.DMatrix(X.astype(np.float32)))
    monkeypatch.setenv("SAGEMAKER_INFERENCE_OUTPUT", "predicted_label, probability,probabilities,labels,predicted_score")
    body, _ = invoke(model_dir, csv_body(X), accept="application/json")
    rows = json.loads(body)["predictions"]
    assert list(rows[0]) == ["predicted_label", "labels", "probability", "probabilities", "predicted_score"]
    assert [row["predicted_label"] for row in rows] == [int(v > 0.5) for v in p]
    assert rows[0]["labels"] == [0, 1] and np.isnan(rows[0]["predicted_score"])
    np.testing.assert_allclose([row["probabilities"][1] for row in rows], p, rtol=1e-6)
    body, _ = invoke(model_dir, csv_body(X[:1]), accept="text/csv")
    cells = body.decode().split(",")
    assert cells[0] == str(int(p[0] > 0.5)) and cells[1] == repr(float(p[0]))
    assert body.decode().count('"[') == 2 and cells[-1] == "nan"  # lists quoted, unknown key NaN
    body, _ = invoke(model_dir, csv_body(X[:2]), accept="application/jsonlines")
    assert [json.loads(line)["labels"] for line in body.decode().splitlines()] == [[0, 1], [0, 1]]
    body, _ = invoke(model_dir, csv_body(X[:2]), accept="application/x-recordio-protobuf")
    records = read_records(body)
    assert len(records) == 2 and list(records[0].label["probabilities"].float32_tensor.values) == pytest.approx(
        [1 - p[0], p[0]], rel=1e-6)


def test_selectable_output_multiclass_and_logitraw(models: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGEMAKER_INFERENCE_OUTPUT", "predicted_label,probability,raw_scores,labels")
    model_dir, X = models["softprob"]
    p = booster(model_dir).predict(xgb.DMatrix(X.astype(np.float32)))
    rows = json.loads(invoke(model_dir, csv_body(X), accept="application/json")[0])["predictions"]
    assert [row["predicted_label"] for row in rows] == list(np.argmax(p, axis=1))
    assert rows[0]["labels"] == [0, 1, 2] and rows[0]["probability"] == pytest.approx(float(p[0].max()))
    model_dir, X = models["logitraw"]
    margin = booster(model_dir).predict(xgb.DMatrix(X.astype(np.float32)))
    rows = json.loads(invoke(model_dir, csv_body(X), accept="application/json")[0])["predictions"]
    assert [row["predicted_label"] for row in rows] == [int(m > 0) for m in margin]
    assert np.isnan(rows[0]["probability"])  # logitraw gives no probability
    monkeypatch.setenv("SAGEMAKER_INFERENCE_OUTPUT", "predicted_score,predicted_label")
    model_dir, X = models["regression"]
    rows = json.loads(invoke(model_dir, csv_body(X), accept="application/json")[0])["predictions"]
    expected = booster(model_dir).predict(xgb.DMatrix(X.astype(np.float32)))
    np.testing.assert_allclose([row["predicted_score"] for row in rows], expected, rtol=1e-6)
    assert all(np.isnan(row["predicted_label"]) for row in rows)


def test_selectable_output_needs_a_supported_objective(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = load_diabetes(return_X_y=True)
    poisson = xgb.train({"objective": "count:poisson"}, xgb.DMatrix(X, label=y), 2)
    (tmp_path / "xgboost-model").write_bytes(poisson.save_raw("ubj"))
    monkeypatch.setenv("SAGEMAKER_INFERENCE_OUTPUT", "predicted_score")
    with pytest.raises(InferenceError, match="count:poisson` unsupported for selectable"):
        invoke(tmp_path, csv_body(X[:2]))


def test_kfold_ensemble(models: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir, X = models["kfold"]
    folds = [booster(model_dir, f"xgboost-model-{i}").predict(xgb.DMatrix(X.astype(np.float32))) for i in range(3)]
    answer = json.loads(invoke(model_dir, csv_body(X), accept="application/json")[0])["predictions"]
    np.testing.assert_allclose([row["score"] for row in answer], np.mean(folds, axis=0), rtol=1e-5)
    monkeypatch.setenv("SAGEMAKER_INFERENCE_ENSEMBLE", "false")
    answer = json.loads(invoke(model_dir, csv_body(X), accept="application/json")[0])["predictions"]
    np.testing.assert_allclose([row["score"] for row in answer], folds[0], rtol=1e-6)


def test_softmax_ensemble_votes(tmp_path: Path, models: dict) -> None:
    source, X = models["softmax"]
    X = X.astype(np.float32)
    model = booster(source)
    (tmp_path / "xgboost-model-0").write_bytes((source / "xgboost-model").read_bytes())
    (tmp_path / "xgboost-model-1").write_bytes((source / "xgboost-model").read_bytes())
    shifted = xgb.train({"objective": "multi:softmax", "num_class": 3}, xgb.DMatrix(X, label=np.zeros(len(X))), 2)
    (tmp_path / "xgboost-model-2").write_bytes(shifted.save_raw("ubj"))
    answer = np.loadtxt(io.StringIO(invoke(tmp_path, csv_body(X))[0].decode()))
    np.testing.assert_array_equal(answer, model.predict(xgb.DMatrix(X)))  # two votes beat one


@pytest.mark.parametrize("booster_type", ["gblinear", "dart"])
def test_linear_and_dart_models(tmp_path: Path, booster_type: str) -> None:
    X, y = load_diabetes(return_X_y=True)
    model_dir = train_model(tmp_path, X, y, booster=booster_type)
    expected = booster(model_dir).predict(xgb.DMatrix(X[:5].astype(np.float32)))
    answer = np.loadtxt(io.StringIO(invoke(model_dir, csv_body(X[:5]))[0].decode()))
    np.testing.assert_allclose(answer, expected, rtol=1e-5)


def test_pickled_booster_and_best_iteration(tmp_path: Path) -> None:
    X, y = load_diabetes(return_X_y=True)
    X = X.astype(np.float32)
    trained = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=y), 10)
    trained.set_attr(best_iteration="3")  # what 1.x early stopping left on a pickled booster
    (tmp_path / "xgboost-model").write_bytes(pickle.dumps(trained))
    (tmp_path / ".hidden").write_text("ignored")
    answer = np.loadtxt(io.StringIO(invoke(tmp_path, csv_body(X[:4]))[0].decode()))
    np.testing.assert_allclose(answer, trained.predict(xgb.DMatrix(X[:4]), iteration_range=(0, 4)), rtol=1e-6)


def test_unreadable_model_is_reported(tmp_path: Path) -> None:
    (tmp_path / "xgboost-model").write_bytes(b"not a model")
    with pytest.raises(ClientError, match="cannot be loaded"):
        ALGORITHM.load_model(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ClientError, match="no model file"):
        ALGORITHM.load_model(empty)


def test_single_record_csv_fast_path_matches_the_reader() -> None:
    import numpy as np

    from forgeml.algorithms.xgboost.serve import _parse

    one = _parse(b"1,2.5,-3e-1\n", "text/csv")
    two = _parse(b"1,2.5,-3e-1\n4,5,6\n", "text/csv")
    assert one.dtype == np.float32 and one.shape == (1, 3)
    np.testing.assert_array_equal(one[0], two[0])
    # anything unusual (another delimiter, missing values) still goes through the full reader
    assert _parse(b"1;2.5;-0.3", "text/csv").shape == (1, 3)
    assert np.isnan(_parse(b"1,,3", "text/csv")[0, 1])
