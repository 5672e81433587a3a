"""k-NN: index types, metrics, reductions, sampling, the three-file artifact, inference, errors."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import hadamard
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from forgeml.algorithms.base import UnsupportedContentType
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.hyperparameters import HyperparameterError
from forgeml.algorithms.knn import faiss_file
from forgeml.algorithms.knn.index import IP, L2, FlatIndex, IVFIndex, brute_force
from forgeml.algorithms.knn.model import majority_vote
from forgeml.algorithms.knn.reduction import Reducer, walsh_hadamard
from forgeml.algorithms.knn.sampling import Reservoir
from forgeml.algorithms.registry import get_algorithm
from forgeml.data.csv_format import write_csv
from forgeml.data.recordio_protobuf import (
    read_records,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)
from forgeml.errors import ClientError
from forgeml.runtime.pipe import PipeFeeder

ALGORITHM = get_algorithm("knn")
CSV1 = "text/csv;label_size=1"
RECORDIO = "application/x-recordio-protobuf"
# faiss-cpu 1.15.1: serialize_index(IndexFlatL2(2) + [[1.5, -2], [3, 4], [0, 1]])
FAISS_FLAT_HEX = (
    "4978463202000000030000000000000000001000000000000000100000000000010100000006000000000000000000c0"
    "3f000000c00000404000008040000000000000803f"
)
# faiss-cpu 1.15.1: the same 3 vectors in an IndexIVFFlat with 2 lists (centroids [10, 10.5], [0, .5])
FAISS_IVF_HEX = (
    "4977466c0200000003000000000000000000100000000000000010000000000001010000000200000000000000010000"
    "000000000049784632020000000200000000000000000010000000000000001000000000000101000000040000000000"
    "00000000204100002841000000000000003f000000000000000000696c61720200000000000000080000000000000073"
    "7072730200000000000000010000000000000003000000000000000000c03f000000c000004040000080400000000000"
    "00803f000000000000000001000000000000000200000000000000"
)


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    features, labels = load_breast_cancer(return_X_y=True)
    features = ((features - features.mean(axis=0)) / features.std(axis=0)).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(labels))
    features, labels = features[order], labels[order].astype(np.float32)
    return features[:450], labels[:450], features[450:], labels[450:]


def write_channel(
    folder: Path, features: np.ndarray, labels: np.ndarray | None, kind: str, parts: int = 1
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    chunks = np.array_split(np.arange(len(features)), parts)
    for number, rows in enumerate(chunks):
        part_labels = None if labels is None else labels[rows]
        with open(folder / f"part-{number}", "wb") as handle:
            if kind == "csv":
                write_csv(handle, features[rows], part_labels)
            elif kind == "dense":
                write_numpy_to_dense_tensor(handle, features[rows], part_labels)
            else:
                write_spmatrix_to_sparse_tensor(handle, sp.csr_matrix(features[rows]), part_labels)
    return folder


def open_object(path: str) -> IO[bytes]:
    """PipeFeeder's opener (the feeder closes what it opens)."""
    return open(path, "rb")  # noqa: SIM115


def run(tmp: Path, hyperparameters: dict[str, str], channels: dict[str, ChannelData]) -> tuple[Path, str]:
    stream = io.StringIO()
    model_dir = tmp / "model"
    train_builtin("knn", hyperparameters, channels, model_dir, stream=stream)
    return model_dir, stream.getvalue()


def hp(**extra: str) -> dict[str, str]:
    return {"feature_dim": "30", "k": "5", "predictor_type": "classifier", "sample_size": "1000", **extra}


def reported(log: str, metric: str) -> float:
    return float(re.findall(rf"#quality_metric: host=algo-1, test {metric} <(?:score|loss)>=(\S+)", log)[-1])


def channels_for(tmp: Path, data, kind: str, content_type: str | None) -> dict[str, ChannelData]:
    train_x, train_y, test_x, test_y = data
    return {
        "train": ChannelData(write_channel(tmp / "train", train_x, train_y, kind, parts=2), content_type),
        "test": ChannelData(write_channel(tmp / "test", test_x, test_y, kind), content_type),
    }


@pytest.mark.parametrize(
    ("kind", "content_type"), [("csv", CSV1), ("csv", "text/csv"), ("dense", RECORDIO), ("sparse", RECORDIO)]
)
def test_flat_classifier_matches_scikit_learn(tmp_path: Path, cancer, kind: str, content_type: str) -> None:
    model_dir, log = run(
        tmp_path, hp(mini_batch_size="100"), channels_for(tmp_path, cancer, kind, content_type)
    )
    train_x, train_y, test_x, test_y = cancer
    anchor = KNeighborsClassifier(n_neighbors=5).fit(train_x, train_y).score(test_x, test_y)
    assert reported(log, "accuracy") == pytest.approx(anchor, abs=0.01)
    assert "#test_score (algo-1) : ('accuracy', " in log
    assert len(re.findall(r"test accuracy <score>=", log)) == 2  # cumulative, once per test mini-batch
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "model_algo-1",
        "model_algo-1.json",
        "model_algo-1.labels",
    ]


def test_regressor_matches_scikit_learn(tmp_path: Path) -> None:
    features, target = load_diabetes(return_X_y=True)
    features = features.astype(np.float32)
    target = target.astype(np.float32)
    data = (features[:350], target[:350], features[350:], target[350:])
    _, log = run(
        tmp_path,
        {"feature_dim": "10", "k": "7", "predictor_type": "regressor", "sample_size": "5000"},
        channels_for(tmp_path, data, "dense", RECORDIO),
    )
    anchor = KNeighborsRegressor(n_neighbors=7).fit(features[:350], target[:350]).predict(features[350:])
    assert reported(log, "mse") == pytest.approx(float(np.mean((anchor - target[350:]) ** 2)), rel=1e-4)
    for definition in ALGORITHM.metric_definitions:
        if definition["Name"] != "test:accuracy":
            assert any(re.search(definition["Regex"], line) for line in log.splitlines()), definition["Name"]


def test_every_metric_definition_matches_a_classifier_log(tmp_path: Path, cancer) -> None:
    _, log = run(tmp_path, hp(), channels_for(tmp_path, cancer, "dense", RECORDIO))
    names = {
        d["Name"]
        for d in ALGORITHM.metric_definitions
        if any(re.search(d["Regex"], line) for line in log.splitlines())
    }
    assert names == {"test:accuracy", "train:progress", "train:throughput"}


@pytest.mark.parametrize(
    ("index", "extra", "floor"),
    [
        ("faiss.IVFFlat", {}, 0.93),
        ("faiss.IVFFlat", {"faiss_index_ivf_nlists": "4", "index_metric": "INNER_PRODUCT"}, 0.9),
        ("faiss.IVFPQ", {"faiss_index_pq_m": "8"}, 0.9),
        ("faiss.IVFPQ", {}, 0.9),
        ("faiss.Flat", {"index_metric": "COSINE"}, 0.93),
        ("faiss.Flat", {"dimension_reduction_type": "sign", "dimension_reduction_target": "12"}, 0.9),
        (
            "faiss.IVFPQ",
            {"dimension_reduction_type": "fjlt", "dimension_reduction_target": "10", "faiss_index_pq_m": "4"},
            0.88,
        ),
    ],
)
def test_index_types_metrics_and_reductions_classify_well(
    tmp_path: Path, cancer, index: str, extra: dict[str, str], floor: float
) -> None:
    model_dir, log = run(
        tmp_path, hp(index_type=index, **extra), channels_for(tmp_path, cancer, "dense", RECORDIO)
    )
    assert reported(log, "accuracy") >= floor
    meta = json.loads((model_dir / "model_algo-1.json").read_text())
    assert meta["k"] == 5 and meta["predictor_type"] == "classifier" and meta["version"] == "1.0"
    assert meta["normalize"] is (extra.get("index_metric") == "COSINE")
    if "dimension_reduction_type" in extra:
        spec = meta["dimension_reduction"]
        assert spec["type"] == extra["dimension_reduction_type"] and spec["input_dim"] == 30
        assert spec["target_dim"] == int(extra["dimension_reduction_target"]) and isinstance(
            spec["seed"], int
        )
    model = ALGORITHM.load_model(model_dir)
    assert model.index.ntotal == 450
    if index == "faiss.IVFPQ":
        assert model.index.dim % model.index.pq.m == 0  # padded to a multiple of m


def test_sampling_keeps_sample_size_points_uniformly(tmp_path: Path, cancer) -> None:
    model_dir, log = run(tmp_path, hp(sample_size="200"), channels_for(tmp_path, cancer, "csv", CSV1))
    labels = np.fromfile(model_dir / "model_algo-1.labels", dtype="<f4")
    assert labels.shape == (200,)
    assert "sampled 200 of 450 training records" in log
    index = faiss_file.loads((model_dir / "model_algo-1").read_bytes())
    train_x, train_y, _, _ = cancer
    # each stored vector is a training row, stored with that row's label
    rows = {tuple(np.round(row, 4)): label for row, label in zip(train_x, train_y, strict=True)}
    for vector, label in zip(index.vectors, labels, strict=True):
        assert rows[tuple(np.round(vector, 4))] == label
    # Algorithm R is uniform: over many draws every record is kept about equally often
    counts = np.zeros(100)
    for seed in range(400):
        reservoir = Reservoir(10, np.random.default_rng(seed))
        for start in range(0, 100, 7):
            ids = np.arange(start, min(start + 7, 100), dtype=np.float32)
            reservoir.offer(ids[:, None], ids, lambda rows: np.asarray(rows, dtype=np.float32))
        counts[reservoir.result()[1].astype(int)] += 1
    assert counts.sum() == 4000 and counts.min() > 15 and counts.max() < 70


def test_pipe_mode(tmp_path: Path, cancer) -> None:
    train_x, train_y, test_x, test_y = cancer
    folder = write_channel(tmp_path / "data", train_x, train_y, "dense", parts=3)
    feeder = PipeFeeder("train", tmp_path / "pipes", sorted(str(p) for p in folder.iterdir()), open_object)
    feeder.start()
    try:
        _, log = run(
            tmp_path,
            hp(mini_batch_size="64"),
            {
                "train": ChannelData(tmp_path / "pipes" / "train", RECORDIO, "Pipe"),
                "test": ChannelData(write_channel(tmp_path / "test", test_x, test_y, "dense"), RECORDIO),
            },
        )
    finally:
        feeder.close()
    anchor = KNeighborsClassifier(n_neighbors=5).fit(train_x, train_y).score(test_x, test_y)
    assert reported(log, "accuracy") == pytest.approx(anchor, abs=0.01)


def test_search_primitives_agree_with_brute_force() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2000, 12)).astype(np.float32)
    queries = rng.normal(size=(50, 12)).astype(np.float32)
    exact_ip = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    np.testing.assert_array_equal(brute_force(queries, vectors, 10, IP)[1], exact_ip)
    squared = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(axis=2)
    exact_l2 = np.argsort(squared, axis=1)[:, :10]
    distances, ids = FlatIndex(L2, vectors).search(queries, 10)
    np.testing.assert_array_equal(ids, exact_l2)
    np.testing.assert_allclose(distances, np.sort(squared, axis=1)[:, :10], rtol=1e-4)  # squared, as FAISS
    # IVF scanning every list is exact; fewer probes still find most neighbours
    full = IVFIndex.build(vectors, L2, 20, 20, seed=0)
    np.testing.assert_array_equal(full.search(queries, 10)[1], exact_l2)
    probed = IVFIndex.build(vectors, L2, 20, 5, seed=0)
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(probed.search(queries, 10)[1], exact_l2, strict=True)]
    )
    assert recall > 0.6
    # a list too short for k falls back to scanning everything, so k neighbours always come back
    tiny = IVFIndex.build(vectors[:40], L2, 8, 1, seed=0)
    assert (tiny.search(queries, 30)[1] >= 0).all()


def test_reductions_preserve_distances() -> None:
    np.testing.assert_allclose(walsh_hadamard(np.eye(8, dtype=np.float32)), hadamard(8))
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(200, 100)).astype(np.float32)
    for kind in ("sign", "fjlt"):
        reducer = Reducer(kind, 3, 64, 100)
        reduced = reducer.transform(rows)
        assert reduced.shape == (200, 64)
        ratio = np.linalg.norm(reduced[1:] - reduced[:-1], axis=1) / np.linalg.norm(
            rows[1:] - rows[:-1], axis=1
        )
        assert 0.9 < ratio.mean() < 1.1 and ratio.std() < 0.2
        again = Reducer.from_json(json.loads(json.dumps(reducer.to_json())))
        np.testing.assert_array_equal(again.transform(rows), reduced)  # rebuilt from the .json alone
        np.testing.assert_allclose(reducer.transform(sp.csr_matrix(rows)), reduced, rtol=1e-5, atol=1e-5)


def test_majority_vote_breaks_ties_towards_the_nearest() -> None:
    votes = np.array([[2, 1, 1, 2, 3], [0, 3, 3, 0, 3], [4, 5, 6, 7, 8]], dtype=np.float32)
    np.testing.assert_array_equal(majority_vote(votes), [2, 3, 4])


def test_faiss_files_round_trip_with_bytes_faiss_wrote() -> None:
    vectors = np.array([[1.5, -2.0], [3.0, 4.0], [0.0, 1.0]], dtype=np.float32)
    assert faiss_file.dumps(FlatIndex(L2, vectors)) == bytes.fromhex(FAISS_FLAT_HEX)
    flat = faiss_file.loads(bytes.fromhex(FAISS_FLAT_HEX))
    np.testing.assert_array_equal(flat.vectors, vectors)
    ivf = faiss_file.loads(bytes.fromhex(FAISS_IVF_HEX))  # FAISS wrote this one with sparse list sizes
    assert isinstance(ivf, IVFIndex) and ivf.nlist == 2 and ivf.nprobe == 1 and ivf.ntotal == 3
    np.testing.assert_array_equal(ivf.centroids, [[10.0, 10.5], [0.0, 0.5]])
    np.testing.assert_array_equal(ivf.search(np.array([[3.0, 3.5]], dtype=np.float32), 3)[1], [[1, 2, 0]])
    rng = np.random.default_rng(0)
    data = rng.normal(size=(600, 8)).astype(np.float32)
    for index in (
        FlatIndex(IP, data),
        IVFIndex.build(data, IP, 6, 2, 0),
        IVFIndex.build(data, L2, 3, 2, 0, pq_m=4),
    ):
        again = faiss_file.loads(faiss_file.dumps(index))
        np.testing.assert_array_equal(again.search(data[:5], 4)[1], index.search(data[:5], 4)[1])
    with pytest.raises(faiss_file.FaissFormatError, match="unsupported FAISS index type"):
        faiss_file.loads(b"IHNf" + bytes(40))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, cancer):
    tmp = tmp_path_factory.mktemp("served")
    train_x, train_y, test_x, _ = cancer
    model_dir, _ = run(
        tmp, hp(), {"train": ChannelData(write_channel(tmp / "t", train_x, train_y, "dense"), RECORDIO)}
    )
    anchor = KNeighborsClassifier(n_neighbors=5).fit(train_x, train_y)
    distances, ids = anchor.kneighbors(test_x[:4])
    return (
        ALGORITHM.load_model(model_dir),
        model_dir,
        test_x[:4],
        anchor.predict(test_x[:4]),
        distances**2,
        train_y[ids],
    )


def _bodies(rows: np.ndarray) -> dict[str, bytes]:
    recordio = io.BytesIO()
    write_numpy_to_dense_tensor(recordio, rows)
    return {
        "text/csv": "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode(),
        "application/json": json.dumps({"instances": [{"features": row.tolist()} for row in rows]}).encode(),
        "application/jsonlines": "\n".join(json.dumps({"features": row.tolist()}) for row in rows).encode(),
        "application/x-recordio-protobuf": recordio.getvalue(),
    }


def _decode(body: bytes, accept: str) -> list[dict]:
    if accept.startswith("application/json;") or accept == "application/json":
        return json.loads(body)["predictions"]
    if accept.startswith("application/jsonlines"):
        return [json.loads(line) for line in body.decode().splitlines()]
    return [
        {key: list(value.float32_tensor.values) for key, value in record.label.items()}
        for record in read_records(body)
    ]


@pytest.mark.parametrize("content_type", ALGORITHM.request_content_types)
@pytest.mark.parametrize("accept", ALGORITHM.accept_types)
@pytest.mark.parametrize("verbose", [False, True])
def test_invoke_every_content_type_and_accept(served, content_type: str, accept: str, verbose: bool) -> None:
    model, _, rows, predicted, distances, neighbour_labels = served
    body, returned = ALGORITHM.invoke(
        model, _bodies(rows)[content_type], content_type, accept + ("; verbose=true" if verbose else "")
    )
    assert returned == accept
    predictions = _decode(body, accept)
    labels = [
        p["predicted_label"][0] if isinstance(p["predicted_label"], list) else p["predicted_label"]
        for p in predictions
    ]
    assert labels == [float(v) for v in predicted]
    if not verbose:
        assert all(set(p) == {"predicted_label"} for p in predictions)
        return
    np.testing.assert_allclose([p["distances"] for p in predictions], distances, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal([p["labels"] for p in predictions], neighbour_labels)


def test_edited_metadata_changes_inference(tmp_path: Path, served) -> None:
    _, model_dir, rows, _, _, _ = served
    edited = tmp_path / "edited"
    edited.mkdir()
    for path in model_dir.iterdir():
        (edited / path.name).write_bytes(path.read_bytes())
    meta = json.loads((edited / "model_algo-1.json").read_text())
    meta.update(k=1, predictor_type="regressor")
    (edited / "model_algo-1.json").write_text(json.dumps(meta))
    body, _ = ALGORITHM.invoke(
        ALGORITHM.load_model(edited), _bodies(rows)["text/csv"], "text/csv", "application/json; verbose=true"
    )
    for prediction in json.loads(body)["predictions"]:
        assert len(prediction["labels"]) == 1 and prediction["predicted_label"] == prediction["labels"][0]


def test_invoke_rejects_what_it_cannot_serve(served) -> None:
    model = served[0]
    with pytest.raises(UnsupportedContentType):
        ALGORITHM.invoke(model, b"1", "text/csv", "text/csv")
    with pytest.raises(UnsupportedContentType):
        ALGORITHM.invoke(model, b"1", "text/plain", "application/json")


@pytest.mark.parametrize(
    ("hyperparameters", "named"),
    [
        ({**hp(), "index": "faiss.Flat"}, "'index'"),  # unknown
        (
            {"feature_dim": "30", "k": "5", "predictor_type": "classifier"},
            "'sample_size'",
        ),  # missing required
        (hp(k="five"), "HyperParameters.k"),  # bad type
        (hp(k="0"), "HyperParameters.k"),  # out of range
        (hp(predictor_type="ranker"), "predictor_type"),
        (hp(index_type="faiss.HNSW"), "index_type"),
        (hp(dimension_reduction_type="sign"), "dimension_reduction_target"),  # cross-field rules
        (hp(dimension_reduction_target="10"), "dimension_reduction_target"),
        (hp(dimension_reduction_type="fjlt", dimension_reduction_target="30"), "dimension_reduction_target"),
        (hp(index_type="faiss.IVFPQ", index_metric="COSINE"), "index_metric"),
        (hp(faiss_index_ivf_nlists="10"), "faiss_index_ivf_nlists"),
        (hp(faiss_index_pq_m="8"), "faiss_index_pq_m"),
        (hp(index_type="faiss.IVFPQ", faiss_index_pq_m="5"), "faiss_index_pq_m"),
    ],
)
def test_invalid_hyperparameters_name_the_parameter(hyperparameters: dict[str, str], named: str) -> None:
    with pytest.raises(HyperparameterError, match=re.escape(named)):
        ALGORITHM.validate_hyperparameters(hyperparameters)


def test_data_errors_are_client_errors(tmp_path: Path, cancer) -> None:
    train_x, train_y, _, _ = cancer
    labelled = write_channel(tmp_path / "labelled", train_x, train_y, "dense")
    with pytest.raises(ClientError, match="feature_dim=31 but the train channel has 30 features"):
        run(tmp_path / "a", hp(feature_dim="31"), {"train": ChannelData(labelled, RECORDIO)})
    unlabelled = write_channel(tmp_path / "unlabelled", train_x, None, "dense")
    with pytest.raises(ClientError, match="has no labels"):
        run(tmp_path / "b", hp(), {"train": ChannelData(unlabelled, RECORDIO)})
    with pytest.raises(ClientError, match="k=50 but only 40 training records were sampled"):
        run(tmp_path / "c", hp(k="50", sample_size="40"), {"train": ChannelData(labelled, RECORDIO)})
    with pytest.raises(ClientError, match="needs at least"):
        run(
            tmp_path / "d",
            hp(index_type="faiss.IVFPQ", sample_size="100"),
            {"train": ChannelData(labelled, RECORDIO)},
        )
    with pytest.raises(ClientError, match="faiss_index_ivf_nlists=500"):
        run(
            tmp_path / "e",
            hp(index_type="faiss.IVFFlat", faiss_index_ivf_nlists="500"),
            {"train": ChannelData(labelled, RECORDIO)},
        )


def test_larger_generated_problem_with_ivf_keeps_accuracy(tmp_path: Path) -> None:
    features, labels = make_classification(4000, 20, n_informative=10, n_classes=3, random_state=0)
    features = features.astype(np.float32)
    labels = labels.astype(np.float32)
    data = (features[:3500], labels[:3500], features[3500:], labels[3500:])
    _, log = run(
        tmp_path,
        {
            "feature_dim": "20",
            "k": "10",
            "predictor_type": "classifier",
            "sample_size": "3500",
            "index_type": "faiss.IVFFlat",
        },
        channels_for(tmp_path, data, "dense", RECORDIO),
    )
    anchor = (
        KNeighborsClassifier(n_neighbors=10)
        .fit(features[:3500], labels[:3500])
        .score(features[3500:], labels[3500:])
    )
    assert reported(log, "accuracy") >= anchor - 0.03
