"""Random Cut Forest: the forest itself, hyperparameters, training (CSV/RecordIO, File/Pipe), test metrics, serving."""

from __future__ import annotations

import io
import json
import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from forgeml.algorithms.base import InferenceError, UnsupportedContentType
from forgeml.algorithms.common import mxnet_ndarray
from forgeml.algorithms.common.artifact import MODEL_FILE
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.hyperparameters import HyperparameterError
from forgeml.algorithms.random_cut_forest.forest import LEAF, Forest, build_forest
from forgeml.algorithms.random_cut_forest.sampling import Reservoir
from forgeml.algorithms.registry import get_algorithm
from forgeml.data.csv_format import write_csv
from forgeml.data.recordio_protobuf import (
    read_records,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)
from forgeml.errors import ClientError
from forgeml.runtime.pipe import PipeFeeder

ALGO = get_algorithm("randomcutforest")
RECORDIO = "application/x-recordio-protobuf"
CSV0 = "text/csv;label_size=0"
CSV1 = "text/csv;label_size=1"


def normal_data(n: int, seed: int, dim: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def labelled_test(n: int, seed: int, anomalies: int = 15) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = normal_data(n, seed)
    labels = np.zeros(n, dtype=np.float32)
    chosen = rng.choice(n, anomalies, replace=False)
    x[chosen] += rng.choice([-1.0, 1.0], size=(anomalies, x.shape[1])) * rng.uniform(5, 8, size=(anomalies, x.shape[1]))
    labels[chosen] = 1.0
    return x, labels


def write_csv_file(folder: Path, x: np.ndarray, y: np.ndarray | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "data.csv", "wb") as handle:
        write_csv(handle, x, y)
    return folder


def run(tmp: Path, hp: dict[str, str], channels: dict[str, ChannelData]) -> tuple[str, Path]:
    stream = io.StringIO()
    model_dir = tmp / "model"
    train_builtin("randomcutforest", hp, channels, model_dir, stream=stream)
    return stream.getvalue(), model_dir


HP = {"feature_dim": "4", "num_trees": "50", "num_samples_per_tree": "128"}


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("rcf_csv")
    x_test, y_test = labelled_test(1500, seed=2)
    log, model_dir = run(
        tmp,
        HP,
        {
            "train": ChannelData(write_csv_file(tmp / "train", normal_data(8000, seed=1)), CSV0),
            "test": ChannelData(write_csv_file(tmp / "test", x_test, y_test), CSV1),
        },
    )
    return {"log": log, "model_dir": model_dir, "x_test": x_test, "y_test": y_test}


def metric(log: str, name: str) -> list[float]:
    definition = next(d for d in ALGO.metric_definitions if d["Name"] == name)
    return [float(m.group(1)) for m in re.finditer(definition["Regex"], log)]


# -- the forest -----------------------------------------------------------------------------------


def _monte_carlo_codisp(forest: Forest, x: np.ndarray, rng: np.random.Generator) -> float:
    """CoDisp of x after one random insertion (Guha et al.'s algorithm), drawn explicitly."""
    node, path = int(forest.roots[0]), []
    while True:
        lo, hi = forest.lower[node].astype(float), forest.upper[node].astype(float)
        box_lo, box_hi = np.minimum(lo, x), np.maximum(hi, x)
        spans = box_hi - box_lo
        if spans.sum() > 0:
            dim = min(int(np.searchsorted(np.cumsum(spans), rng.random() * spans.sum(), side="right")), x.size - 1)
            cut = box_lo[dim] + rng.random() * spans[dim]
            if x[dim] <= cut < lo[dim] or hi[dim] <= cut < x[dim]:
                ratios, child, size = [float(forest.mass[node])], node, forest.mass[node] + 1
                for ancestor in reversed(path):
                    ratios.append((forest.mass[ancestor] - forest.mass[child]) / size)
                    child, size = ancestor, forest.mass[ancestor] + 1
                return max(ratios)
        path.append(node)
        if forest.cut_dim[node] == LEAF:
            ratios, child, size = [], node, forest.mass[node] + 1
            for ancestor in reversed(path[:-1]):
                ratios.append((forest.mass[ancestor] - forest.mass[child]) / size)
                child, size = ancestor, forest.mass[ancestor] + 1
            return max(ratios)
        go_left = x[forest.cut_dim[node]] <= forest.cut_value[node]
        node = int(forest.left[node] if go_left else forest.right[node])


def test_score_is_the_expected_codisp_of_an_insertion() -> None:
    rng = np.random.default_rng(3)
    sample = rng.normal(size=(12, 2)).astype(np.float32)
    forest = build_forest(sample, 1, 12, rng)
    draws = np.random.default_rng(9)
    for point in (np.array([0.1, 0.2], np.float32), np.array([3.0, 3.0], np.float32), sample[4]):
        simulated = np.mean([_monte_carlo_codisp(forest, point.astype(float), draws) for _ in range(6000)])
        assert forest.score(point[None])[0] == pytest.approx(simulated, rel=0.04)


def test_trees_are_consistent_random_cut_trees() -> None:
    rng = np.random.default_rng(0)
    sample = normal_data(50 * 64, seed=5)
    sample[:10] = sample[10]  # duplicates share a leaf
    forest = build_forest(sample, 50, 64, rng)
    assert forest.num_trees == 50 and forest.samples_per_tree == 64
    internal = np.flatnonzero(forest.cut_dim != LEAF)
    left, right = forest.left[internal], forest.right[internal]
    np.testing.assert_array_equal(forest.mass[internal], forest.mass[left] + forest.mass[right])
    assert np.all(forest.lower[left] >= forest.lower[internal]) and np.all(forest.upper[right] <= forest.upper[internal])
    dims = forest.cut_dim[internal]
    cuts = forest.cut_value[internal]
    lows = forest.lower[internal, dims].astype(float)
    highs = forest.upper[internal, dims].astype(float)
    assert np.all((cuts >= lows) & (cuts < highs))  # every cut separates its box
    assert np.all(forest.upper[left, dims] <= cuts) and np.all(forest.lower[right, dims] > cuts)
    leaves = forest.cut_dim == LEAF
    assert np.all(forest.lower[leaves] == forest.upper[leaves])
    assert forest.mass[leaves].sum() == 50 * 64 and forest.mass[leaves].max() >= 10


def test_outliers_score_higher_than_inliers() -> None:
    rng = np.random.default_rng(1)
    forest = build_forest(normal_data(100 * 64, seed=6), 100, 64, rng)
    scores = forest.score(np.array([[0, 0, 0, 0], [6, -6, 6, -6]], dtype=np.float32))
    assert scores[1] > 5 * scores[0]


def test_reservoir_is_a_uniform_sample_without_replacement() -> None:
    reservoir = Reservoir(1000, 1, np.random.default_rng(0))
    for start in range(0, 20000, 700):
        reservoir.add(np.arange(start, min(start + 700, 20000), dtype=np.float32)[:, None])
    sample = reservoir.sample()[:, 0]
    assert reservoir.seen == 20000 and sample.shape == (1000,) and np.unique(sample).size == 1000
    assert abs(sample.mean() - 10000) < 600  # the mean of a uniform sample, within ~3.5 standard errors
    small = Reservoir(1000, 2, np.random.default_rng(0))
    small.add(sp.csr_matrix(np.eye(5, 2, dtype=np.float32)))
    assert small.sample().shape == (5, 2)


# -- hyperparameters ------------------------------------------------------------------------------


def test_defaults() -> None:
    values = ALGO.validate_hyperparameters({"feature_dim": "3"})
    assert values["num_trees"] == 100 and values["num_samples_per_tree"] == 256
    assert values["eval_metrics"] == ["accuracy", "precision_recall_fscore"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"num_tree": "60"}, "num_tree"),
        ({"num_trees": "many"}, "num_trees"),
        ({"num_trees": "49"}, "num_trees"),
        ({"num_samples_per_tree": "2049"}, "num_samples_per_tree"),
        ({"feature_dim": "10001"}, "feature_dim"),
        ({"eval_metrics": '["auc"]'}, "eval_metrics"),
        ({"epochs": "2"}, "epochs"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(change: dict[str, str], named: str) -> None:
    with pytest.raises(HyperparameterError, match=named):
        ALGO.validate_hyperparameters({"feature_dim": "3", **change})


def test_missing_feature_dim() -> None:
    with pytest.raises(HyperparameterError, match="feature_dim"):
        ALGO.validate_hyperparameters({"num_trees": "50"})


def test_eval_metrics_forms() -> None:
    assert ALGO.validate_hyperparameters({"feature_dim": "3", "eval_metrics": '["accuracy"]'})["eval_metrics"] == ["accuracy"]
    comma = ALGO.validate_hyperparameters({"feature_dim": "3", "eval_metrics": "precision_recall_fscore,accuracy"})
    assert comma["eval_metrics"] == ["precision_recall_fscore", "accuracy"]


# -- training -------------------------------------------------------------------------------------


def test_csv_training_scores_the_labelled_test_channel(csv_run: dict) -> None:
    log = csv_run["log"]
    f1 = metric(log, "test:f1")
    assert len(f1) == 1 and f1[0] > 0.8
    assert "#quality_metric: host=algo-1, test accuracy <score>=" in log
    assert "#quality_metric: host=algo-1, test negative_f1 <score>=" in log
    assert "#test_score (algo-1) : ('f1', " in log
    assert "ForestInfo{num_trees: 50, num_samples_in_forest: 6400, num_samples_per_tree: 128" in log


def test_every_metric_definition_matches(csv_run: dict) -> None:
    for definition in ALGO.metric_definitions:
        assert re.search(definition["Regex"], csv_run["log"]), definition["Name"]
    assert "#progress_metric: host=algo-1, completed 100 % epochs" in csv_run["log"]
    assert metric(csv_run["log"], "train:throughput")[0] > 0


def test_eval_metrics_selects_the_logged_metrics(tmp_path: Path) -> None:
    x_test, y_test = labelled_test(300, seed=4)
    log, _ = run(
        tmp_path,
        {**HP, "eval_metrics": '["accuracy"]'},
        {
            "train": ChannelData(write_csv_file(tmp_path / "train", normal_data(2000, seed=3)), CSV0),
            "test": ChannelData(write_csv_file(tmp_path / "test", x_test, y_test), CSV1),
        },
    )
    assert "test accuracy <score>=" in log and metric(log, "test:f1") == []


def test_small_channels_shrink_the_per_tree_sample(tmp_path: Path) -> None:
    log, model_dir = run(tmp_path, HP, {"train": ChannelData(write_csv_file(tmp_path / "train", normal_data(420, 5)), CSV0)})
    assert "num_samples_per_tree: 8," in log and "Test data is not provided." in log
    assert ALGO.load_model(model_dir).samples_per_tree == 8


def test_recordio_dense_sparse_and_pipe_mode(tmp_path: Path) -> None:
    x = normal_data(3000, seed=7)
    dense = tmp_path / "dense"
    dense.mkdir()
    with open(dense / "part.pbr", "wb") as handle:
        write_numpy_to_dense_tensor(handle, x)
    sparse_folder = tmp_path / "sparse"
    sparse_folder.mkdir()
    with open(sparse_folder / "part.pbr", "wb") as handle:
        write_spmatrix_to_sparse_tensor(handle, sp.csr_matrix(x))
    _, dense_dir = run(tmp_path / "a", HP, {"train": ChannelData(dense)})
    _, sparse_dir = run(tmp_path / "b", HP, {"train": ChannelData(sparse_folder, RECORDIO)})
    feeder = PipeFeeder("train", tmp_path / "pipes", [str(dense / "part.pbr")], partial(open, mode="rb"))
    feeder.start()
    try:
        _, pipe_dir = run(tmp_path / "c", HP, {"train": ChannelData(tmp_path / "pipes" / "train", RECORDIO, "Pipe")})
    finally:
        feeder.close()
    probe = normal_data(50, seed=8) * 2
    expected = ALGO.load_model(dense_dir).score(probe)
    np.testing.assert_allclose(ALGO.load_model(sparse_dir).score(probe), expected)
    np.testing.assert_allclose(ALGO.load_model(pipe_dir).score(probe), expected)


# -- data errors ----------------------------------------------------------------------------------


def test_plain_csv_gets_a_label_size_hint(tmp_path: Path) -> None:
    folder = write_csv_file(tmp_path / "train", normal_data(500, 1))
    with pytest.raises(ClientError, match="feature_dim=4 but the train channel has 3 features.*label_size=0"):
        run(tmp_path, HP, {"train": ChannelData(folder, "text/csv")})


def test_too_few_records_for_the_trees(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="30 records but num_trees=50"):
        run(tmp_path, HP, {"train": ChannelData(write_csv_file(tmp_path / "train", normal_data(30, 1)), CSV0)})


def test_missing_values_are_a_client_error(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "data.csv").write_text("1,2,3,4\n1,,3,4\n")
    with pytest.raises(ClientError, match="missing"):
        run(tmp_path, HP, {"train": ChannelData(tmp_path / "train", CSV0)})


def test_unlabelled_test_channel_is_a_client_error(tmp_path: Path) -> None:
    channels = {
        "train": ChannelData(write_csv_file(tmp_path / "train", normal_data(500, 1)), CSV0),
        "test": ChannelData(write_csv_file(tmp_path / "test", normal_data(50, 2)), CSV0),
    }
    with pytest.raises(ClientError, match="label_size=1"):
        run(tmp_path, HP, channels)


def test_validation_channel_is_not_an_rcf_channel(tmp_path: Path) -> None:
    folder = write_csv_file(tmp_path / "train", normal_data(500, 1))
    with pytest.raises(ClientError, match="validation"):
        run(tmp_path, HP, {"train": ChannelData(folder, CSV0), "validation": ChannelData(folder, CSV0)})


# -- artifact and inference -----------------------------------------------------------------------


def test_artifact_round_trip(csv_run: dict) -> None:
    arrays = mxnet_ndarray.load(csv_run["model_dir"] / MODEL_FILE)
    assert arrays["meta"].tolist() == [4, 50, 128]
    forest = ALGO.load_model(csv_run["model_dir"])
    body, content_type = ALGO.invoke(forest, json.dumps({"instances": [{"features": r.tolist()} for r in csv_run["x_test"][:10]]}).encode(), "application/json", "application/json")
    assert content_type == "application/json"
    scores = [row["score"] for row in json.loads(body)["scores"]]
    np.testing.assert_allclose(scores, forest.score(csv_run["x_test"][:10]))


@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", RECORDIO])
@pytest.mark.parametrize("content_type", ["text/csv", "application/json", "application/jsonlines", RECORDIO])
def test_every_request_and_accept_type(csv_run: dict, content_type: str, accept: str) -> None:
    forest = ALGO.load_model(csv_run["model_dir"])
    x = np.array([[0.0, 0.0, 0.0, 0.0], [7.0, -7.0, 7.0, 7.0]], dtype=np.float32)
    if content_type == "text/csv":
        body = b"0,0,0,0\n7,-7,7,7\n"
    elif content_type == "application/json":
        body = json.dumps({"instances": [{"data": {"features": {"values": r.tolist()}}} for r in x]}).encode()
    elif content_type == "application/jsonlines":
        body = "\n".join(json.dumps({"features": r.tolist()}) for r in x).encode()
    else:
        buffer = io.BytesIO()
        write_numpy_to_dense_tensor(buffer, x)
        body = buffer.getvalue()
    response, response_type = ALGO.invoke(forest, body, content_type, accept)
    assert response_type == accept
    if accept == "application/json":
        scores = [row["score"] for row in json.loads(response)["scores"]]
    elif accept == "application/jsonlines":
        scores = [json.loads(line)["score"] for line in response.decode().splitlines()]
    else:
        scores = [r.label["score"].float32_tensor.values[0] for r in read_records(io.BytesIO(response))]
    np.testing.assert_allclose(scores, forest.score(x), rtol=1e-6)
    assert scores[1] > scores[0]


def test_missing_values_in_a_request(csv_run: dict) -> None:
    forest = ALGO.load_model(csv_run["model_dir"])
    with pytest.raises(InferenceError, match="missing"):
        ALGO.invoke(forest, b'{"instances": [{"features": [NaN, 0, 0, 0]}]}', "application/json", "application/json")


def test_unsupported_accept(csv_run: dict) -> None:
    forest = ALGO.load_model(csv_run["model_dir"])
    with pytest.raises(UnsupportedContentType):
        ALGO.invoke(forest, b"0,0,0,0", "text/csv", "text/csv")
