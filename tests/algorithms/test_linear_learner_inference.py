"""Linear Learner inference: artifact round trip and every request content type and Accept type,
with SageMaker's response shapes for the three predictor types."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification

from forgeml.algorithms.base import InferenceError, UnsupportedContentType
from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.linear_learner import ALGORITHM
from forgeml.algorithms.linear_learner.model import LinearModel
from forgeml.data.recordio_protobuf import (
    read_records,
    write_numpy_to_dense_tensor,
    write_spmatrix_to_sparse_tensor,
)

RECORDIO = "application/x-recordio-protobuf"


def _data(kind: str) -> tuple[np.ndarray, np.ndarray, dict[str, str]]:
    if kind == "regressor":
        rng = np.random.default_rng(0)
        features = rng.normal(size=(800, 5))
        labels = 30 + features @ np.array([3.0, -1.0, 0.5, 0.0, 2.0]) + rng.normal(0, 0.5, 800)
        return features.astype(np.float32), labels.astype(np.float32), {"predictor_type": "regressor"}
    classes = 4 if kind == "multiclass_classifier" else 2
    features, labels = make_classification(
        n_samples=800,
        n_features=5,
        n_informative=4,
        n_redundant=0,
        n_classes=classes,
        n_clusters_per_class=1,
        random_state=1,
    )
    hyperparameters = {"predictor_type": kind}
    if classes == 4:
        hyperparameters["num_classes"] = "4"
    return features.astype(np.float32), labels.astype(np.float32), hyperparameters


@pytest.fixture(scope="module", params=["binary_classifier", "multiclass_classifier", "regressor"])
def trained(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, np.ndarray, np.ndarray, str]:
    kind = request.param
    features, labels, hyperparameters = _data(kind)
    tmp = tmp_path_factory.mktemp(kind)
    for name, rows in (("train", slice(0, 600)), ("validation", slice(600, 800))):
        (tmp / name).mkdir()
        with open(tmp / name / "data.pbr", "wb") as handle:
            write_numpy_to_dense_tensor(handle, features[rows], labels[rows])
    stream = io.StringIO()
    channels = {name: ChannelData(tmp / name, RECORDIO) for name in ("train", "validation")}
    train_builtin(
        "linear-learner", {**hyperparameters, "mini_batch_size": "50"}, channels, tmp / "model", stream=stream
    )
    return kind, tmp / "model", features[600:], labels[600:], stream.getvalue()


def json_predictions(model: LinearModel, body: bytes, content_type: str) -> list[dict]:
    response, response_type = ALGORITHM.invoke(model, body, content_type, "application/json")
    assert response_type == "application/json"
    return json.loads(response)["predictions"]


def csv_body(features: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in features).encode()


def test_artifact_layout_and_round_trip(trained: tuple[str, Path, np.ndarray, np.ndarray, str]) -> None:
    kind, model_dir, features, labels, log = trained
    assert sorted(p.name for p in model_dir.iterdir()) == ["model_algo-1"]
    with zipfile.ZipFile(model_dir / "model_algo-1") as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        extra = json.loads(archive.read("additional-params.json"))
        arrays = {
            n: np.load(io.BytesIO(archive.read(f"params/{n}.npy")))
            for n in ("weight", "bias", "feature_mean", "feature_stdev")
        }
    assert names == {"manifest.json", "additional-params.json", *(f"params/{n}.npy" for n in arrays)}
    assert manifest["predictor_type"] == kind and manifest["feature_dim"] == 5
    assert arrays["weight"].shape == (5, manifest["outputs"])
    best = json.loads(re.search(r"Best model found for hyperparameters: (\{.*\})", log).group(1))  # type: ignore[union-attr]
    assert extra["hyperparameters"] == best
    # the documented formula, computed from the archive alone, is what the endpoint answers
    outputs = ((features - arrays["feature_mean"]) / arrays["feature_stdev"]) @ arrays["weight"] + arrays[
        "bias"
    ]
    predictions = json_predictions(ALGORITHM.load_model(model_dir), csv_body(features), "text/csv")
    if kind == "regressor":
        expected = outputs[:, 0] * extra["label_stdev"] + extra["label_mean"]
        np.testing.assert_allclose([p["score"] for p in predictions], expected, rtol=1e-4, atol=1e-3)
        assert set(predictions[0]) == {"score"}
        mse = np.mean((np.array([p["score"] for p in predictions]) - labels) ** 2)
        logged = float(re.search(r"validation mse <loss>=(\S+)", log).group(1))  # type: ignore[union-attr]
        assert mse == pytest.approx(logged, rel=1e-3)
    elif kind == "binary_classifier":
        expected = 1 / (1 + np.exp(-outputs[:, 0]))
        np.testing.assert_allclose([p["score"] for p in predictions], expected, rtol=1e-4, atol=1e-5)
        assert all(p["predicted_label"] == int(p["score"] >= extra["threshold"]) for p in predictions)
        accuracy = np.mean(
            [p["predicted_label"] == label for p, label in zip(predictions, labels, strict=True)]
        )
        logged = float(re.search(r"validation binary_classification_accuracy <score>=(\S+)", log).group(1))  # type: ignore[union-attr]
        assert accuracy == pytest.approx(logged)
    else:
        probabilities = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        np.testing.assert_allclose([p["score"] for p in predictions], probabilities, rtol=1e-4, atol=1e-5)
        assert [p["predicted_label"] for p in predictions] == probabilities.argmax(axis=1).tolist()
        accuracy = np.mean(
            [p["predicted_label"] == label for p, label in zip(predictions, labels, strict=True)]
        )
        logged = float(re.search(r"validation multiclass_accuracy <score>=(\S+)", log).group(1))  # type: ignore[union-attr]
        assert accuracy == pytest.approx(logged)
        assert accuracy > 0.8


def test_every_request_content_type_gives_the_same_answer(
    trained: tuple[str, Path, np.ndarray, np.ndarray, str],
) -> None:
    _, model_dir, features, _, _ = trained
    model = ALGORITHM.load_model(model_dir)
    rows = features[:6]
    expected = json_predictions(model, csv_body(rows), "text/csv")
    bodies = {
        "text/csv; label_size=0": csv_body(rows),
        "application/json": json.dumps({"instances": [{"features": r.tolist()} for r in rows]}).encode(),
        "application/json; charset=utf-8": json.dumps(
            {"instances": [{"data": {"features": {"values": r.tolist()}}} for r in rows]}
        ).encode(),
        "application/jsonlines": "\n".join(json.dumps({"features": r.tolist()}) for r in rows).encode(),
    }
    dense = io.BytesIO()
    write_numpy_to_dense_tensor(dense, rows)
    bodies[RECORDIO] = dense.getvalue()
    for content_type, body in bodies.items():
        answer = json_predictions(model, body, content_type)
        assert json.dumps(answer) == json.dumps(expected), content_type
    # sparse requests (JSON and RecordIO) go through CSR maths and agree with dense ones
    sparse_rows = rows.copy()
    sparse_rows[np.abs(sparse_rows) < 0.5] = 0
    dense_answer = json_predictions(model, csv_body(sparse_rows), "text/csv")
    instances = []
    for row in sparse_rows:
        keys = np.flatnonzero(row)
        instances.append(
            {"data": {"features": {"keys": keys.tolist(), "shape": [5], "values": row[keys].tolist()}}}
        )
    sparse_json = json_predictions(model, json.dumps({"instances": instances}).encode(), "application/json")
    buffer = io.BytesIO()
    write_spmatrix_to_sparse_tensor(buffer, sp.csr_matrix(sparse_rows))
    sparse_recordio = json_predictions(model, buffer.getvalue(), RECORDIO)
    for answer in (sparse_json, sparse_recordio):
        for got, want in zip(answer, dense_answer, strict=True):
            np.testing.assert_allclose(got["score"], want["score"], rtol=1e-5, atol=1e-6)


def test_every_accept_type(trained: tuple[str, Path, np.ndarray, np.ndarray, str]) -> None:
    kind, model_dir, features, _, _ = trained
    model = ALGORITHM.load_model(model_dir)
    body = csv_body(features[:3])
    expected = json_predictions(model, body, "text/csv")
    assert all(
        set(p) == ({"score"} if kind == "regressor" else {"score", "predicted_label"}) for p in expected
    )
    if kind == "multiclass_classifier":
        assert all(len(p["score"]) == 4 and sum(p["score"]) == pytest.approx(1.0, abs=1e-5) for p in expected)
    elif kind == "binary_classifier":
        assert all(0.0 <= p["score"] <= 1.0 and p["predicted_label"] in (0, 1) for p in expected)

    lines, lines_type = ALGORITHM.invoke(model, body, "text/csv", "application/jsonlines")
    assert lines_type == "application/jsonlines"
    assert [json.loads(line) for line in lines.decode().splitlines()] == expected

    records, records_type = ALGORITHM.invoke(model, body, "text/csv", RECORDIO)
    assert records_type == RECORDIO
    decoded = read_records(records)
    assert len(decoded) == 3
    for record, want in zip(decoded, expected, strict=True):
        assert len(record.features) == 0
        np.testing.assert_allclose(
            list(record.label["score"].float32_tensor.values), np.atleast_1d(want["score"]), rtol=1e-6
        )
        if "predicted_label" in want:
            assert list(record.label["predicted_label"].float32_tensor.values) == [
                float(want["predicted_label"])
            ]

    text, text_type = ALGORITHM.invoke(model, body, "text/csv", "text/csv")
    assert text_type == "text/csv"
    rows = [[float(v) for v in line.split(",")] for line in text.decode().splitlines()]
    for row, want in zip(rows, expected, strict=True):
        flat = list(np.atleast_1d(want["score"])) + (
            [want["predicted_label"]] if "predicted_label" in want else []
        )
        np.testing.assert_allclose(row, flat, rtol=1e-6)
    # no Accept and */* fall back to JSON
    assert ALGORITHM.invoke(model, body, "text/csv", "*/*")[1] == "application/json"
    assert ALGORITHM.invoke(model, body, "text/csv", "")[1] == "application/json"


def test_bad_requests(tmp_path: Path, trained: tuple[str, Path, np.ndarray, np.ndarray, str]) -> None:
    _, model_dir, features, _, _ = trained
    model = ALGORITHM.load_model(model_dir)
    with pytest.raises(UnsupportedContentType, match="text/libsvm"):
        ALGORITHM.invoke(model, b"1 0:1", "text/libsvm", "application/json")
    with pytest.raises(UnsupportedContentType, match="application/xml"):
        ALGORITHM.invoke(model, csv_body(features[:1]), "text/csv", "application/xml")
    with pytest.raises(InferenceError, match="4 features per record but the model expects 5"):
        ALGORITHM.invoke(model, csv_body(features[:2, :4]), "text/csv", "application/json")
    with pytest.raises(InferenceError, match="empty"):
        ALGORITHM.invoke(model, b"", "text/csv", "application/json")
    with pytest.raises(InferenceError, match="'abc'"):
        ALGORITHM.invoke(model, b"1,2,abc,4,5", "text/csv", "application/json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="model_algo-1 not found"):
        ALGORITHM.load_model(tmp_path / "empty")
