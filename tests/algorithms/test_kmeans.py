"""K-Means: training on every content type and input mode, metrics, artifact, inference, errors."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs

from forgeml.algorithms.common import mxnet_ndarray
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.hyperparameters import HyperparameterError
from forgeml.algorithms.kmeans.webscale import StreamingCenters, nearest_centers, weighted_lloyd
from forgeml.algorithms.registry import get_algorithm
from forgeml.data.csv_format import write_csv
from forgeml.data.recordio_protobuf import (
    read_records,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)
from forgeml.errors import ClientError
from forgeml.runtime.pipe import PipeFeeder

ALGORITHM = get_algorithm("kmeans")
CSV0 = "text/csv;label_size=0"
RECORDIO = "application/x-recordio-protobuf"
# bytes ``mx.nd.save(path, [mx.nd.array([[1.5, -2, .25], [3, 4, -.5]])])`` wrote with MXNet 1.9.1
MXNET_LIST_HEX = (
    "120100000000000000000000000000000100000000000000c9fa93f9000000000200000002000000000000000300000000"
    "0000000100000000000000000000000000c03f000000c00000803e0000404000008040000000bf0000000000000000"
)


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features, _, centers = make_blobs(
        n_samples=1200, n_features=4, centers=4, cluster_std=0.6, random_state=3, return_centers=True
    )
    features = features.astype(np.float32)
    return features[:1000], features[1000:], centers


def write_channel(folder: Path, features: np.ndarray, kind: str, parts: int = 1) -> Path:
    """A channel folder holding ``features`` as CSV, dense RecordIO or sparse RecordIO files."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, chunk in enumerate(np.array_split(features, parts)):
        with open(folder / f"part-{number}", "wb") as handle:
            if kind == "csv":
                write_csv(handle, chunk)
            elif kind == "dense":
                write_numpy_to_dense_tensor(handle, chunk)
            else:
                write_spmatrix_to_sparse_tensor(handle, sp.csr_matrix(chunk))
    return folder


def open_object(path: str) -> IO[bytes]:
    """PipeFeeder's opener (the feeder closes what it opens)."""
    return open(path, "rb")  # noqa: SIM115


def run(tmp: Path, hyperparameters: dict[str, str], channels: dict[str, ChannelData]) -> tuple[Path, str]:
    stream = io.StringIO()
    model_dir = tmp / "model"
    train_builtin("kmeans", hyperparameters, channels, model_dir, stream=stream)
    return model_dir, stream.getvalue()


def msd(features: np.ndarray, centroids: np.ndarray) -> float:
    return float(nearest_centers(features, centroids.astype(np.float32))[1].mean())


def sklearn_msd(train: np.ndarray, test: np.ndarray, k: int) -> float:
    return msd(test, SkKMeans(n_clusters=k, n_init=1, random_state=0).fit(train).cluster_centers_)


@pytest.mark.parametrize(
    ("kind", "content_type"), [("csv", CSV0), ("dense", RECORDIO), ("sparse", RECORDIO), ("dense", None)]
)
def test_trains_on_each_content_type(tmp_path: Path, blobs, kind: str, content_type: str | None) -> None:
    train, test, centers = blobs
    channels = {
        "train": ChannelData(write_channel(tmp_path / "train", train, kind, parts=2), content_type),
        "test": ChannelData(write_channel(tmp_path / "test", test, kind), content_type),
    }
    model_dir, log = run(tmp_path, {"k": "4", "feature_dim": "4", "mini_batch_size": "300"}, channels)
    centroids = ALGORITHM.load_model(model_dir).centroids
    assert centroids.shape == (4, 4)
    # every true centre has a learned centroid close by
    gaps = np.linalg.norm(centers[:, None, :] - centroids[None, :, :], axis=2).min(axis=1)
    assert gaps.max() < 0.3
    reported = float(re.search(r"test msd <loss>=(\S+)", log).group(1))
    assert reported == pytest.approx(msd(test, centroids), rel=1e-4)
    assert reported <= 1.05 * sklearn_msd(train, test, 4)


def test_metric_definitions_match_the_log_per_epoch(tmp_path: Path, blobs) -> None:
    train, test, _ = blobs
    channels = {
        "train": ChannelData(write_channel(tmp_path / "train", train, "dense"), RECORDIO),
        "test": ChannelData(write_channel(tmp_path / "test", test, "dense"), RECORDIO),
    }
    hp = {
        "k": "4",
        "feature_dim": "4",
        "epochs": "3",
        "mini_batch_size": "250",
        "eval_metrics": '["msd", "ssd"]',
    }
    _, log = run(tmp_path, hp, channels)
    lines = log.splitlines()
    for definition in ALGORITHM.metric_definitions:
        hits = [float(m.group(1)) for line in lines if (m := re.search(definition["Regex"], line))]
        assert hits, f"{definition['Name']} regex matched no line"
        if definition["Name"] in ("train:msd", "train:progress", "train:throughput"):
            assert len(hits) == 3, definition["Name"]  # one data point per epoch
    progress = [ALGORITHM.match_metric("train:progress", line) for line in lines]
    assert [p for p in progress if p is not None] == pytest.approx([33.33, 66.67, 100.0])
    ssd = next(v for line in lines if (v := ALGORITHM.match_metric("test:ssd", line)) is not None)
    test_msd = next(v for line in lines if (v := ALGORITHM.match_metric("test:msd", line)) is not None)
    assert ssd == pytest.approx(test_msd * len(test))
    assert "#quality_metric: host=algo-1, train msd <loss>=" in log
    assert "shrinking 40 centers into 4" in log
    assert len(re.findall(r"local kmeans attempt #\d+\. Current mean square distance", log)) == 10
    metrics = [json.loads(line.split("#metrics ", 1)[1]) for line in lines if "#metrics " in line]
    assert metrics[0]["Dimensions"]["Algorithm"] == "AWS/KMeansWebscale"
    assert metrics[2]["Metrics"]["Total Records Seen"]["sum"] == 3 * len(train)


def test_local_lloyd_and_extra_center_settings_are_honoured(tmp_path: Path, blobs) -> None:
    train, _, _ = blobs
    channels = {"train": ChannelData(write_channel(tmp_path / "train", train, "csv"), CSV0)}
    hp = {
        "k": "4",
        "feature_dim": "4",
        "extra_center_factor": "3",
        "local_lloyd_num_trials": "2",
        "local_lloyd_init_method": "random",
        "init_method": "kmeans++",
        "local_lloyd_max_iter": "5",
        "local_lloyd_tol": "0.01",
        "eval_metrics": '["ssd"]',
    }
    _, log = run(tmp_path, hp, channels)
    assert "shrinking 12 centers into 4" in log
    assert re.findall(r"local kmeans attempt #(\d+)", log) == ["0", "1"]


def test_pipe_mode_reads_one_fifo_per_epoch(tmp_path: Path, blobs) -> None:
    train, test, _ = blobs
    files = write_channel(tmp_path / "data", train, "dense", parts=3)
    feeder = PipeFeeder("train", tmp_path / "pipes", sorted(str(p) for p in files.iterdir()), open_object)
    feeder.start()
    try:
        model_dir, log = run(
            tmp_path,
            {"k": "4", "feature_dim": "4", "epochs": "2", "mini_batch_size": "128"},
            {"train": ChannelData(tmp_path / "pipes" / "train", RECORDIO, "Pipe")},
        )
    finally:
        feeder.close()
    assert len(re.findall(r"train msd <loss>=", log)) == 2
    assert msd(test, ALGORITHM.load_model(model_dir).centroids) <= 1.05 * sklearn_msd(train, test, 4)


def test_sparse_arithmetic_matches_dense(tmp_path: Path, blobs) -> None:
    train, _, _ = blobs
    folder = write_channel(tmp_path / "train", train, "sparse")
    results = []
    for force_dense in ("true", "false"):
        model_dir, _ = run(
            tmp_path / force_dense,
            {"k": "4", "feature_dim": "4", "force_dense": force_dense},
            {"train": ChannelData(folder, RECORDIO)},
        )
        results.append(ALGORITHM.load_model(model_dir).centroids)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-4)


def test_half_life_time_size_follows_a_drifting_cluster() -> None:
    """With forgetting, a centre tracks where its points are now, not where they were."""
    rng = np.random.default_rng(0)
    early = rng.normal(0.0, 0.1, size=(2000, 2))
    late = rng.normal(5.0, 0.1, size=(2000, 2))
    stream = np.concatenate([early, late]).astype(np.float32)
    finals = {}
    for half_life in (0, 100):
        state = StreamingCenters(np.zeros((1, 2)), np.zeros(1), half_life)
        for start in range(0, len(stream), 200):
            state.partial_fit(stream[start : start + 200])
        finals[half_life] = state.centers[0, 0]
    assert finals[0] == pytest.approx(2.5, abs=0.05)  # plain running mean of everything seen
    assert finals[100] == pytest.approx(5.0, abs=0.05)


def test_weighted_lloyd_matches_sklearn_on_weighted_points() -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(60, 3))
    weights = rng.integers(1, 20, size=60).astype(float)
    initial = points[:3].copy()
    ours = weighted_lloyd(points, weights, initial, max_iter=300, tol=0.0)
    theirs = SkKMeans(n_clusters=3, init=initial, n_init=1, max_iter=300, tol=0.0, algorithm="lloyd")
    theirs.fit(points, sample_weight=weights)
    np.testing.assert_allclose(
        np.sort(ours.centers, axis=0), np.sort(theirs.cluster_centers_, axis=0), atol=1e-6
    )
    assert ours.msd == pytest.approx(theirs.inertia_ / weights.sum())


def test_artifact_is_an_mxnet_ndarray_list(tmp_path: Path, blobs) -> None:
    train, _, _ = blobs
    model_dir, _ = run(
        tmp_path,
        {"k": "3", "feature_dim": "4"},
        {"train": ChannelData(write_channel(tmp_path / "t", train, "csv"), CSV0)},
    )
    assert sorted(p.name for p in model_dir.iterdir()) == ["model_algo-1"]
    loaded = mxnet_ndarray.load(model_dir / "model_algo-1")
    assert isinstance(loaded, list) and loaded[0].shape == (3, 4) and loaded[0].dtype == np.float32
    # our writer produces exactly the bytes MXNet writes, and reads MXNet's file back
    expected = np.array([[1.5, -2.0, 0.25], [3.0, 4.0, -0.5]], dtype=np.float32)
    assert mxnet_ndarray.dumps([expected]) == bytes.fromhex(MXNET_LIST_HEX)
    np.testing.assert_array_equal(mxnet_ndarray.loads(bytes.fromhex(MXNET_LIST_HEX))[0], expected)
    with pytest.raises(mxnet_ndarray.NDArrayFormatError, match="truncated"):
        mxnet_ndarray.loads(bytes.fromhex(MXNET_LIST_HEX)[:-8])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, blobs):
    train, test, _ = blobs
    tmp = tmp_path_factory.mktemp("served")
    model_dir, _ = run(
        tmp,
        {"k": "4", "feature_dim": "4"},
        {"train": ChannelData(write_channel(tmp / "t", train, "dense"), RECORDIO)},
    )
    model = ALGORITHM.load_model(model_dir)
    labels, squared = nearest_centers(test[:3], model.centroids)
    return model, test[:3], labels, np.sqrt(squared)


def _bodies(rows: np.ndarray) -> dict[str, bytes]:
    recordio = io.BytesIO()
    write_numpy_to_dense_tensor(recordio, rows)
    return {
        "text/csv": "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode(),
        "application/json": json.dumps({"instances": [{"features": row.tolist()} for row in rows]}).encode(),
        "application/jsonlines": "\n".join(
            json.dumps({"data": {"features": {"values": row.tolist()}}}) for row in rows
        ).encode(),
        "application/x-recordio-protobuf": recordio.getvalue(),
    }


@pytest.mark.parametrize("content_type", ALGORITHM.request_content_types)
@pytest.mark.parametrize("accept", ALGORITHM.accept_types)
def test_invoke_every_content_type_and_accept(served, content_type: str, accept: str) -> None:
    model, rows, labels, distances = served
    body, returned = ALGORITHM.invoke(model, _bodies(rows)[content_type], content_type, accept)
    assert returned == accept
    if accept == "application/json":
        predictions = json.loads(body)["predictions"]
    elif accept == "application/jsonlines":
        predictions = [json.loads(line) for line in body.decode().splitlines()]
    elif accept == "text/csv":
        predictions = [
            {"closest_cluster": float(c), "distance_to_cluster": float(d)}
            for c, d in (line.split(",") for line in body.decode().splitlines())
        ]
    else:
        predictions = [
            {
                key: record.label[key].float32_tensor.values[0]
                for key in ("closest_cluster", "distance_to_cluster")
            }
            for record in read_records(body)
        ]
    assert [list(p) for p in predictions] == [["closest_cluster", "distance_to_cluster"]] * 3
    assert [p["closest_cluster"] for p in predictions] == [float(v) for v in labels]
    np.testing.assert_allclose([p["distance_to_cluster"] for p in predictions], distances, rtol=1e-4)


def test_invoke_sparse_json_and_unsupported_types(served) -> None:
    model, rows, labels, _ = served
    sparse = {
        "instances": [
            {"data": {"features": {"keys": [0, 1, 2, 3], "shape": [4], "values": rows[0].tolist()}}}
        ]
    }
    body, _ = ALGORITHM.invoke(model, json.dumps(sparse).encode(), "application/json", "application/json")
    assert json.loads(body)["predictions"][0]["closest_cluster"] == float(labels[0])
    from forgeml.algorithms.base import InferenceError, UnsupportedContentType

    with pytest.raises(UnsupportedContentType):
        ALGORITHM.invoke(model, b"1,2,3,4", "text/libsvm", "application/json")
    with pytest.raises(UnsupportedContentType):
        ALGORITHM.invoke(model, b"1,2,3,4", "text/csv", "text/html")
    with pytest.raises(InferenceError, match="expects 4"):
        ALGORITHM.invoke(model, b"1,2,3", "text/csv", "application/json")


@pytest.mark.parametrize(
    ("hyperparameters", "named"),
    [
        ({"k": "4", "feature_dim": "4", "mini_batch_siz": "10"}, "mini_batch_siz"),  # unknown
        ({"feature_dim": "4"}, "'k'"),  # missing required
        ({"k": "four", "feature_dim": "4"}, "HyperParameters.k"),  # bad type
        ({"k": "4", "feature_dim": "4", "local_lloyd_tol": "1.5"}, "local_lloyd_tol"),  # out of range
        ({"k": "4", "feature_dim": "4", "init_method": "furthest"}, "init_method"),  # not a choice
        ({"k": "4", "feature_dim": "4", "extra_center_factor": "0"}, "extra_center_factor"),
        (
            {"k": "4", "feature_dim": "4", "eval_metrics": '["msd", "mse"]'},
            "eval_metrics",
        ),  # cross-value rule
        ({"k": "4", "feature_dim": "4", "eval_metrics": "[]"}, "eval_metrics"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(hyperparameters: dict[str, str], named: str) -> None:
    with pytest.raises(HyperparameterError, match=re.escape(named)):
        ALGORITHM.validate_hyperparameters(hyperparameters)


def test_sdk_style_values_are_accepted() -> None:
    values = ALGORITHM.validate_hyperparameters(
        {
            "k": "10",
            "feature_dim": "784",
            "force_dense": "True",
            "eval_metrics": '["msd", "ssd"]',
            "extra_center_factor": "auto",
            "_kvstore": "local",
        }
    )
    assert values["force_dense"] is True and values["eval_metrics"] == ["msd", "ssd"]
    assert values["mini_batch_size"] == 5000 and values["local_lloyd_max_iter"] == 300


def test_data_errors_are_client_errors(tmp_path: Path, blobs) -> None:
    train, _, _ = blobs
    csv_folder = write_channel(tmp_path / "csv", train, "csv")
    with pytest.raises(ClientError, match=r"feature_dim=5 but the train channel has 4 features"):
        run(tmp_path / "a", {"k": "4", "feature_dim": "5"}, {"train": ChannelData(csv_folder, CSV0)})
    # plain text/csv treats the first column as the label, which the message points at
    with pytest.raises(ClientError, match="label_size"):
        run(tmp_path / "b", {"k": "4", "feature_dim": "4"}, {"train": ChannelData(csv_folder, "text/csv")})
    with pytest.raises(ClientError, match="k=20 but the first mini-batch holds only 10 records"):
        run(
            tmp_path / "c",
            {"k": "20", "feature_dim": "4", "mini_batch_size": "10"},
            {"train": ChannelData(csv_folder, CSV0)},
        )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "part-0").write_bytes(b"")
    with pytest.raises(ClientError, match="no records"):
        run(tmp_path / "d", {"k": "4", "feature_dim": "4"}, {"train": ChannelData(empty, CSV0)})
    nan_folder = tmp_path / "nan"
    nan_folder.mkdir()
    (nan_folder / "part-0").write_text("1,2,3,nan\n1,2,3,4\n")
    with pytest.raises(ClientError, match="NaN"):
        run(tmp_path / "e", {"k": "1", "feature_dim": "4"}, {"train": ChannelData(nan_folder, CSV0)})
    with pytest.raises(ClientError, match="does not accept"):
        run(tmp_path / "f", {"k": "4", "feature_dim": "4"}, {"train": ChannelData(csv_folder, "text/libsvm")})


def test_ufo_course_reads_centroids_from_model_algo_1(tmp_path: Path) -> None:
    """The UFO course's lab: k=10 on latitude/longitude via record_set, then mx.nd.load(model_algo-1)."""
    source = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ufo" / "ufo_fullset.csv"
    if not source.exists():
        pytest.skip(
            f"{source} is not present (the shared data folder is only there in the development workspace)"
        )
    import pandas as pd

    geo = pd.read_csv(source)[["latitude", "longitude"]].dropna().to_numpy(dtype=np.float32)
    channel = {"train": ChannelData(write_channel(tmp_path / "train", geo, "dense"), RECORDIO)}
    anchor = msd(geo, SkKMeans(n_clusters=10, n_init=1, random_state=0).fit(geo).cluster_centers_)
    results = {}
    for init in ("random", "kmeans++"):
        model_dir, log = run(tmp_path / init, {"k": "10", "feature_dim": "2", "init_method": init}, channel)
        (centroids,) = mxnet_ndarray.load(model_dir / "model_algo-1")
        assert centroids.shape == (10, 2) and centroids.dtype == np.float32
        assert "shrinking 100 centers into 10" in log
        results[init] = msd(geo, centroids)
    # Seeding 100 centres at random from the first batch (SageMaker's default) leaves the sparse,
    # far-flung sightings poorly covered on this skewed data; k-means++ seeding fixes that.
    assert results["random"] <= 1.3 * anchor
    assert results["kmeans++"] <= 1.05 * anchor
