"""Factorization Machines: hyperparameters, training on RecordIO (File and Pipe), metrics, artifact, inference."""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from forgeml.algorithms.base import InferenceError, UnsupportedContentType
from forgeml.algorithms.common import mxnet_ndarray
from forgeml.algorithms.common.artifact import MODEL_FILE
from forgeml.algorithms.factorization_machines.model import forward
from forgeml.algorithms.factorization_machines.train import gradients
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.hyperparameters import HyperparameterError
from forgeml.algorithms.registry import get_algorithm
from forgeml.data.csv_format import write_csv
from forgeml.data.recordio_protobuf import (
    read_records,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)
from forgeml.errors import ClientError
from forgeml.runtime.pipe import PipeFeeder

ALGO = get_algorithm("factorization-machines")
RECORDIO = "application/x-recordio-protobuf"
N_USERS, N_ITEMS = 60, 40
FEATURE_DIM = N_USERS + N_ITEMS


def recommendation_data(n: int, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """One-hot user + one-hot item, rating = user·item interaction + biases: a job for an FM."""
    truth = np.random.default_rng(7)
    users_f = truth.normal(size=(N_USERS, 3))
    items_f = truth.normal(size=(N_ITEMS, 3))
    bias_u = truth.normal(scale=0.5, size=N_USERS)
    rng = np.random.default_rng(seed)
    u = rng.integers(0, N_USERS, n)
    i = rng.integers(0, N_ITEMS, n)
    y = (users_f[u] * items_f[i]).sum(axis=1) + bias_u[u] + 0.05 * rng.normal(size=n)
    cols = np.stack([u, N_USERS + i], axis=1).ravel()
    x = sp.csr_matrix((np.ones(2 * n, dtype=np.float32), cols, np.arange(0, 2 * n + 1, 2)), shape=(n, FEATURE_DIM))
    return x, y.astype(np.float32)


def write_sparse(folder: Path, x: sp.csr_matrix, y: np.ndarray | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "part-0.pbr", "wb") as handle:
        write_spmatrix_to_sparse_tensor(handle, x, y)
    return folder


def write_dense(folder: Path, x: np.ndarray, y: np.ndarray | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "part-0.pbr", "wb") as handle:
        write_numpy_to_dense_tensor(handle, np.asarray(x, dtype=np.float32), y)
    return folder


REGRESSOR = {
    "feature_dim": str(FEATURE_DIM),
    "num_factors": "8",
    "predictor_type": "regressor",
    "epochs": "12",
    "mini_batch_size": "200",
    "bias_lr": "0.05",
    "linear_lr": "0.05",
    "factors_lr": "0.05",
    "factors_init_sigma": "0.1",
    "factors_wd": "0.0001",
    "linear_wd": "0.0001",
}


def run(tmp: Path, hp: dict[str, str], channels: dict[str, ChannelData]) -> tuple[str, Path]:
    stream = io.StringIO()
    model_dir = tmp / "model"
    train_builtin("factorization-machines", hp, channels, model_dir, stream=stream)
    return stream.getvalue(), model_dir


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("fm_reg")
    x, y = recommendation_data(6000, seed=1)
    xt, yt = recommendation_data(1500, seed=2)
    log, model_dir = run(
        tmp,
        REGRESSOR,
        {"train": ChannelData(write_sparse(tmp / "train", x, y)), "test": ChannelData(write_sparse(tmp / "test", xt, yt))},
    )
    return {"log": log, "model_dir": model_dir, "x_test": xt, "y_test": yt, "tmp": tmp}


def binary_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12)).astype(np.float32)
    logit = 1.5 * x[:, 0] - x[:, 1] + 2.0 * x[:, 2] * x[:, 3]
    return x, (logit > 0).astype(np.float32)


BINARY = {
    "feature_dim": "12",
    "num_factors": "4",
    "predictor_type": "binary_classifier",
    "epochs": "8",
    "mini_batch_size": "100",
    "linear_lr": "0.02",
    "factors_lr": "0.02",
    "factors_init_sigma": "0.1",
}


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("fm_bin")
    x, y = binary_data(4000, seed=3)
    xt, yt = binary_data(1000, seed=4)
    log, model_dir = run(
        tmp,
        BINARY,
        {"train": ChannelData(write_dense(tmp / "train", x, y)), "test": ChannelData(write_dense(tmp / "test", xt, yt))},
    )
    return {"log": log, "model_dir": model_dir, "x_test": xt, "y_test": yt}


def metric_values(log: str, name: str) -> list[float]:
    definition = next(d for d in ALGO.metric_definitions if d["Name"] == name)
    return [float(m.group(1)) for m in re.finditer(definition["Regex"], log)]


# -- hyperparameters ------------------------------------------------------------------------------


def test_defaults_match_sagemaker() -> None:
    values = ALGO.validate_hyperparameters({"feature_dim": "10", "num_factors": "4", "predictor_type": "regressor"})
    assert values["epochs"] == 1
    assert values["mini_batch_size"] == 1000
    assert (values["bias_lr"], values["linear_lr"], values["factors_lr"]) == (0.1, 0.001, 0.0001)
    assert (values["bias_wd"], values["linear_wd"], values["factors_wd"]) == (0.01, 0.001, 0.00001)
    assert (values["bias_init_sigma"], values["linear_init_sigma"], values["factors_init_sigma"]) == (0.01, 0.01, 0.001)
    assert values["factors_init_method"] == "normal"
    assert values["clip_gradient"] is None and values["eps"] is None and values["rescale_grad"] is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"num_factor": "4"}, "num_factor"),
        ({"epochs": "abc"}, "epochs"),
        ({"epochs": "0"}, "epochs"),
        ({"mini_batch_size": "1.5"}, "mini_batch_size"),
        ({"predictor_type": "multiclass_classifier"}, "predictor_type"),
        ({"bias_lr": "-0.1"}, "bias_lr"),
        ({"factors_init_sigma": "-1"}, "factors_init_sigma"),
        ({"linear_init_method": "xavier"}, "linear_init_method"),
        ({"clip_gradient": "0"}, "clip_gradient"),
        ({"bias_init_method": "uniform"}, "bias_init_scale"),
        ({"factors_init_method": "constant"}, "factors_init_value"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(change: dict[str, str], named: str) -> None:
    raw = {"feature_dim": "10", "num_factors": "4", "predictor_type": "regressor", **change}
    with pytest.raises(HyperparameterError, match=named):
        ALGO.validate_hyperparameters(raw)


def test_missing_required_hyperparameter() -> None:
    with pytest.raises(HyperparameterError, match="num_factors"):
        ALGO.validate_hyperparameters({"feature_dim": "10", "predictor_type": "regressor"})


def test_init_parameters_for_other_methods_are_accepted_unused() -> None:
    values = ALGO.validate_hyperparameters(
        {
            "feature_dim": "10",
            "num_factors": "4",
            "predictor_type": "regressor",
            "bias_init_method": "uniform",
            "bias_init_scale": "0.1",
            "bias_init_sigma": "0.05",
            "bias_init_value": "2.0",
        }
    )
    assert values["bias_init_scale"] == 0.1 and values["bias_init_value"] == 2.0


# -- the model ------------------------------------------------------------------------------------


def test_forward_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    w0, w, v = np.array([0.3], np.float32), rng.normal(size=6).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    naive = [
        w0[0] + x[r] @ w + sum(v[i] @ v[j] * x[r, i] * x[r, j] for i in range(6) for j in range(i + 1, 6))
        for r in range(5)
    ]
    np.testing.assert_allclose(forward(x, w0, w, v)[0], naive, rtol=1e-4)
    np.testing.assert_allclose(forward(sp.csr_matrix(x), w0, w, v)[0], naive, rtol=1e-4)


@pytest.mark.parametrize("classifier", [False, True])
def test_gradients_match_finite_differences(classifier: bool) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 5))
    y = (rng.random(7) > 0.5).astype(np.float64) if classifier else rng.normal(size=7)
    w0, w, v = np.array([0.1]), rng.normal(size=5), rng.normal(size=(5, 2)) * 0.5

    def loss(w0_: np.ndarray, w_: np.ndarray, v_: np.ndarray) -> float:
        raw = forward(x, w0_, w_, v_)[0]
        if classifier:
            return float(np.sum(np.logaddexp(0, raw) - y * raw))
        return float(0.5 * np.sum((raw - y) ** 2))

    _, g0, gw, gv = gradients(x, y, w0, w, v, classifier)
    step = 1e-6
    assert g0[0] == pytest.approx((loss(w0 + step, w, v) - loss(w0 - step, w, v)) / (2 * step), rel=1e-3)
    bumped = np.zeros_like(w)
    bumped[2] = step
    assert gw[2] == pytest.approx((loss(w0, w + bumped, v) - loss(w0, w - bumped, v)) / (2 * step), rel=1e-3)
    bump_v = np.zeros_like(v)
    bump_v[3, 1] = step
    assert gv[3, 1] == pytest.approx((loss(w0, w, v + bump_v) - loss(w0, w, v - bump_v)) / (2 * step), rel=1e-3)


# -- training and metrics -------------------------------------------------------------------------


def test_regressor_learns_the_interactions(regression_run: dict) -> None:
    rmse = metric_values(regression_run["log"], "test:rmse")
    assert len(rmse) == 1
    spread = float(np.std(regression_run["y_test"]))
    assert rmse[0] < 0.35 * spread  # a linear model (ridge) reaches about 0.93 * spread here
    epochs = metric_values(regression_run["log"], "train:rmse:epoch")
    assert len(epochs) == 12 and epochs[-1] < epochs[0]
    assert "#test_score (algo-1) : ('rmse', " in regression_run["log"]


def test_binary_classifier_metrics(binary_run: dict) -> None:
    log = binary_run["log"]
    assert metric_values(log, "test:binary_classification_accuracy")[0] > 0.85
    assert metric_values(log, "test:binary_f_beta")[0] > 0.85
    assert metric_values(log, "test:binary_classification_cross_entropy")[0] < 0.4
    assert len(metric_values(log, "train:binary_classification_accuracy:epoch")) == 8
    assert "#quality_metric: host=algo-1, test binary_f_1.000 <score>=" in log


def test_every_metric_definition_matches_a_training_line(regression_run: dict, binary_run: dict) -> None:
    combined = regression_run["log"] + binary_run["log"]
    for definition in ALGO.metric_definitions:
        assert re.search(definition["Regex"], combined), definition["Name"]
    assert len(metric_values(binary_run["log"], "train:binary_f_beta:batch")) == 8  # batch 0 of each epoch
    assert metric_values(regression_run["log"], "train:progress")[-1] == 100.0


def test_configuration_is_logged(regression_run: dict) -> None:
    assert "Final configuration: " in regression_run["log"]
    final = json.loads(regression_run["log"].split("Final configuration: ")[1].splitlines()[0])
    assert final["num_factors"] == 8 and final["predictor_type"] == "regressor"


def test_pipe_mode_trains_the_same_model(tmp_path: Path) -> None:
    x, y = recommendation_data(1000, seed=5)
    folder = write_sparse(tmp_path / "data", x, y)
    hp = {**REGRESSOR, "epochs": "3"}
    _, file_dir = run(tmp_path / "file", hp, {"train": ChannelData(folder)})
    feeder = PipeFeeder("train", tmp_path / "pipes", [str(folder / "part-0.pbr")], partial(open, mode="rb"))
    feeder.start()
    try:
        log, pipe_dir = run(tmp_path / "pipe", hp, {"train": ChannelData(tmp_path / "pipes" / "train", RECORDIO, "Pipe")})
    finally:
        feeder.close()
    assert len(metric_values(log, "train:rmse:epoch")) == 3
    file_model, pipe_model = ALGO.load_model(file_dir), ALGO.load_model(pipe_dir)
    np.testing.assert_array_equal(file_model.v, pipe_model.v)
    np.testing.assert_array_equal(file_model.w, pipe_model.w)


def test_constant_init_and_zero_learning_rate_are_honoured(tmp_path: Path) -> None:
    x, y = recommendation_data(500, seed=6)
    hp = {
        **REGRESSOR,
        "epochs": "2",
        "factors_init_method": "constant",
        "factors_init_value": "0.25",
        "factors_lr": "0",
        "linear_init_method": "uniform",
        "linear_init_scale": "0.5",
    }
    _, model_dir = run(tmp_path, hp, {"train": ChannelData(write_sparse(tmp_path / "train", x, y))})
    model = ALGO.load_model(model_dir)
    assert np.all(model.v == np.float32(0.25))
    assert not np.allclose(model.w, 0.0)


def test_clip_and_rescale_change_the_updates(tmp_path: Path) -> None:
    x, y = recommendation_data(600, seed=8)
    folder = write_sparse(tmp_path / "train", x, y)
    base = {**REGRESSOR, "epochs": "1"}
    _, plain = run(tmp_path / "a", base, {"train": ChannelData(folder)})
    _, clipped = run(tmp_path / "b", {**base, "clip_gradient": "1e-4", "rescale_grad": "1.0", "eps": "0.5"}, {"train": ChannelData(folder)})
    assert not np.allclose(ALGO.load_model(plain).w, ALGO.load_model(clipped).w)


# -- data errors ----------------------------------------------------------------------------------


def test_feature_dim_mismatch_is_a_client_error(tmp_path: Path) -> None:
    x, y = binary_data(200, seed=9)
    with pytest.raises(ClientError, match="feature_dim=13 but the train channel has 12 features"):
        run(tmp_path, {**BINARY, "feature_dim": "13"}, {"train": ChannelData(write_dense(tmp_path / "train", x, y))})


def test_missing_labels_are_a_client_error(tmp_path: Path) -> None:
    x, _ = binary_data(200, seed=9)
    with pytest.raises(ClientError, match="without a label"):
        run(tmp_path, BINARY, {"train": ChannelData(write_dense(tmp_path / "train", x, None))})


def test_binary_labels_must_be_zero_or_one(tmp_path: Path) -> None:
    x, y = binary_data(200, seed=9)
    with pytest.raises(ClientError, match="labels 0 or 1.*label 2"):
        run(tmp_path, BINARY, {"train": ChannelData(write_dense(tmp_path / "train", x, y * 2))})


def test_missing_feature_values_are_a_client_error(tmp_path: Path) -> None:
    x, y = binary_data(50, seed=9)
    x[3, 2] = np.nan
    with pytest.raises(ClientError, match="missing"):
        run(tmp_path, BINARY, {"train": ChannelData(write_dense(tmp_path / "train", x, y))})


def test_csv_training_data_is_refused(tmp_path: Path) -> None:
    x, y = binary_data(50, seed=9)
    (tmp_path / "train").mkdir()
    with open(tmp_path / "train" / "d.csv", "wb") as handle:
        write_csv(handle, x, y)
    with pytest.raises(ClientError, match="does not accept"):
        run(tmp_path, BINARY, {"train": ChannelData(tmp_path / "train", "text/csv")})


# -- artifact -------------------------------------------------------------------------------------


def test_artifact_layout_is_the_mxnet_module_zip(regression_run: dict) -> None:
    with zipfile.ZipFile(regression_run["model_dir"] / MODEL_FILE) as archive:
        assert sorted(archive.namelist()) == ["meta.json", "params", "symbol.json"]
        params = mxnet_ndarray.loads(archive.read("params"))
        meta = json.loads(archive.read("meta.json"))
        symbol = json.loads(archive.read("symbol.json"))
    assert params["arg:v"].shape == (FEATURE_DIM, 8)
    assert params["arg:w1_weight"].shape == (FEATURE_DIM, 1)
    assert params["arg:w0_weight"].shape == (1,)
    assert meta["training_parameters"]["feature_dim"] == FEATURE_DIM
    names = {node["name"] for node in symbol["nodes"] if node["op"] == "null"}
    assert names == {"data", "w0_weight", "w1_weight", "v", "out_label"}


def test_ndarray_file_bytes_follow_mxnet_layout() -> None:
    payload = mxnet_ndarray.dumps({"arg:x": np.array([[1.0, 2.0]], dtype=np.float32)})
    header = struct.pack("<QQQ", 0x112, 0, 1) + struct.pack("<Iii", 0xF993FAC9, 0, 2) + struct.pack("<2q", 1, 2)
    header += struct.pack("<iii", 1, 0, 0) + np.array([1.0, 2.0], dtype="<f4").tobytes()
    assert payload == header + struct.pack("<Q", 1) + struct.pack("<Q", 5) + b"arg:x"
    back = mxnet_ndarray.loads(payload)
    np.testing.assert_array_equal(back["arg:x"], [[1.0, 2.0]])
    mixed = mxnet_ndarray.loads(mxnet_ndarray.dumps({"a": np.arange(3, dtype=np.int32), "b": np.ones(2)}))
    assert mixed["a"].dtype == np.int32 and mixed["b"].dtype == np.float64


def test_artifact_round_trip_gives_the_same_predictions(regression_run: dict) -> None:
    model = ALGO.load_model(regression_run["model_dir"])
    x = regression_run["x_test"][:20]
    expected = model.predict(x)
    body, content_type = ALGO.invoke(model, _sparse_json(x), "application/json", "application/json")
    assert content_type == "application/json"
    scores = [p["score"] for p in json.loads(body)["predictions"]]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    rmse = float(np.sqrt(np.mean((model.predict(regression_run["x_test"]) - regression_run["y_test"]) ** 2)))
    assert rmse == pytest.approx(metric_values(regression_run["log"], "test:rmse")[0], rel=1e-4)


# -- inference ------------------------------------------------------------------------------------


def _sparse_json(x: sp.csr_matrix) -> bytes:
    instances = [
        {"data": {"features": {"keys": row.indices.tolist(), "shape": [FEATURE_DIM], "values": row.data.tolist()}}}
        for row in x
    ]
    return json.dumps({"instances": instances}).encode()


def test_binary_json_response_shape(binary_run: dict) -> None:
    model = ALGO.load_model(binary_run["model_dir"])
    x = binary_run["x_test"][:5]
    body, _ = ALGO.invoke(model, json.dumps({"instances": [{"features": r.tolist()} for r in x]}).encode(), "application/json", "application/json")
    predictions = json.loads(body)["predictions"]
    assert [set(p) for p in predictions] == [{"score", "predicted_label"}] * 5
    for p in predictions:
        assert p["predicted_label"] == int(p["score"] >= 0.5)


def test_jsonlines_request_and_response(binary_run: dict) -> None:
    model = ALGO.load_model(binary_run["model_dir"])
    x = binary_run["x_test"][:3]
    lines = "\n".join(json.dumps({"data": {"features": {"values": r.tolist()}}}) for r in x).encode()
    body, content_type = ALGO.invoke(model, lines, "application/jsonlines", "application/jsonlines")
    rows = [json.loads(line) for line in body.decode().splitlines()]
    assert content_type == "application/jsonlines" and len(rows) == 3
    np.testing.assert_allclose([r["score"] for r in rows], model.predict(x), rtol=1e-6)


def test_recordio_request_and_response(regression_run: dict) -> None:
    model = ALGO.load_model(regression_run["model_dir"])
    x = regression_run["x_test"][:4]
    request = io.BytesIO()
    write_spmatrix_to_sparse_tensor(request, x)
    body, content_type = ALGO.invoke(model, request.getvalue(), RECORDIO, RECORDIO)
    assert content_type == RECORDIO
    records = read_records(io.BytesIO(body))
    scores = [r.label["score"].float32_tensor.values[0] for r in records]
    np.testing.assert_allclose(scores, model.predict(x), rtol=1e-5)


def test_binary_recordio_response_has_predicted_label(binary_run: dict) -> None:
    model = ALGO.load_model(binary_run["model_dir"])
    request = io.BytesIO()
    write_numpy_to_dense_tensor(request, binary_run["x_test"][:3])
    body, _ = ALGO.invoke(model, request.getvalue(), RECORDIO, "application/json")
    assert len(json.loads(body)["predictions"]) == 3
    body, _ = ALGO.invoke(model, request.getvalue(), RECORDIO, RECORDIO)
    labels = [r.label["predicted_label"].float32_tensor.values[0] for r in read_records(io.BytesIO(body))]
    assert set(labels) <= {0.0, 1.0}


def test_csv_requests_and_accepts_are_unsupported(binary_run: dict) -> None:
    model = ALGO.load_model(binary_run["model_dir"])
    with pytest.raises(UnsupportedContentType):
        ALGO.invoke(model, b"1,2,3", "text/csv", "application/json")
    with pytest.raises(UnsupportedContentType):
        ALGO.invoke(model, b'{"instances": [{"features": [1]}]}', "application/json", "text/csv")


def test_wrong_width_is_an_inference_error(binary_run: dict) -> None:
    model = ALGO.load_model(binary_run["model_dir"])
    with pytest.raises(InferenceError, match="feature_dim=12"):
        ALGO.invoke(model, b'{"instances": [{"features": [1.0, 2.0]}]}', "application/json", "application/json")
