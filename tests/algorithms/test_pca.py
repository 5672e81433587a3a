"""PCA: regular and randomized modes on every content type and input mode, artifact, inference, errors."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA

from forgeml.algorithms.base import UnsupportedContentType
from forgeml.algorithms.common import mxnet_ndarray
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

ALGORITHM = get_algorithm("pca")
CSV0 = "text/csv;label_size=0"
RECORDIO = "application/x-recordio-protobuf"
# bytes ``mx.nd.save(path, {"s": [1, 2], "v": [[1, 0], [0, 1], [.5, .5]], "mean": [[.1, .2, .3]]})``
# wrote with MXNet 1.9.1
MXNET_DICT_HEX = (
    "120100000000000000000000000000000300000000000000c9fa93f90000000001000000020000000000000001000000"
    "00000000000000000000803f00000040c9fa93f900000000020000000300000000000000020000000000000001000000"
    "00000000000000000000803f00000000000000000000803f0000003f0000003fc9fa93f9000000000200000001000000"
    "000000000300000000000000010000000000000000000000cdcccc3dcdcc4c3e9a99993e030000000000000001000000"
    "000000007301000000000000007604000000000000006d65616e"
)


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return load_digits().data.astype(np.float32)


def write_channel(folder: Path, features: np.ndarray, kind: str, parts: int = 1) -> Path:
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
    train_builtin("pca", hyperparameters, channels, model_dir, stream=stream)
    return model_dir, stream.getvalue()


def hp(**extra: str) -> dict[str, str]:
    return {"feature_dim": "64", "num_components": "5", "mini_batch_size": "200", **extra}


def assert_same_components(ours: np.ndarray, theirs: np.ndarray, atol: float = 1e-3) -> None:
    """Columns equal up to sign (ours ascending; scikit-learn's rows descending)."""
    flipped = theirs[::-1].T
    dots = np.abs(np.sum(ours * flipped, axis=0))
    np.testing.assert_allclose(dots, 1.0, atol=atol)


@pytest.mark.parametrize(("kind", "content_type"), [("csv", CSV0), ("dense", RECORDIO), ("sparse", RECORDIO)])
def test_regular_mode_matches_exact_pca(
    tmp_path: Path, digits: np.ndarray, kind: str, content_type: str
) -> None:
    model_dir, _ = run(
        tmp_path,
        hp(),
        {"train": ChannelData(write_channel(tmp_path / "train", digits, kind, parts=3), content_type)},
    )
    model = ALGORITHM.load_model(model_dir)
    reference = SkPCA(n_components=5, svd_solver="full").fit(digits.astype(np.float64))
    assert model.s.shape == (5,) and model.v.shape == (64, 5) and model.mean.shape == (1, 64)
    assert list(model.s) == sorted(model.s)  # ascending, the strongest component last
    np.testing.assert_allclose(model.s, reference.singular_values_[::-1], rtol=1e-4)
    np.testing.assert_allclose(model.mean[0], reference.mean_, rtol=1e-4, atol=1e-4)
    assert_same_components(model.v, reference.components_)


def test_without_subtract_mean_uses_raw_second_moments(tmp_path: Path, digits: np.ndarray) -> None:
    model_dir, _ = run(
        tmp_path,
        hp(subtract_mean="false"),
        {"train": ChannelData(write_channel(tmp_path / "t", digits, "dense"), RECORDIO)},
    )
    model = ALGORITHM.load_model(model_dir)
    assert model.mean is None
    assert set(mxnet_ndarray.load(model_dir / "model_algo-1")) == {"s", "v"}
    _, singular, vt = np.linalg.svd(digits.astype(np.float64), full_matrices=False)
    np.testing.assert_allclose(model.s, singular[:5][::-1], rtol=1e-4)
    assert_same_components(model.v, vt[:5])


def test_randomized_mode_captures_nearly_the_optimal_variance(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # low-rank signal plus noise: 3000 × 80 with a decaying spectrum
    basis = np.linalg.qr(rng.normal(size=(80, 80)))[0]
    scales = np.concatenate([np.array([30, 20, 12, 8, 5.0]), np.full(75, 0.5)])
    data = (rng.normal(size=(3000, 80)) * scales) @ basis.T + 3.0
    data = data.astype(np.float32)
    model_dir, _ = run(
        tmp_path,
        {
            "feature_dim": "80",
            "num_components": "5",
            "mini_batch_size": "500",
            "algorithm_mode": "randomized",
        },
        {"train": ChannelData(write_channel(tmp_path / "t", data, "dense"), RECORDIO)},
    )
    model = ALGORITHM.load_model(model_dir)
    centred = data - data.mean(axis=0)
    captured = np.sum((centred @ model.v) ** 2)
    optimal = np.sum(SkPCA(n_components=5).fit_transform(centred) ** 2)
    assert captured >= 0.98 * optimal
    np.testing.assert_allclose(model.s[-1], np.linalg.norm(centred @ model.v[:, -1]), rtol=0.25)


def test_randomized_mode_honours_extra_components(tmp_path: Path, digits: np.ndarray) -> None:
    from forgeml.algorithms.pca.hyperparameters import sketch_rows

    assert sketch_rows({"num_components": 5, "extra_components": -1}) == 15
    assert sketch_rows({"num_components": 20, "extra_components": -1}) == 40
    assert sketch_rows({"num_components": 5, "extra_components": 0}) == 5
    folder = write_channel(tmp_path / "t", digits, "dense")
    centred = digits - digits.mean(axis=0)
    captured = []
    for extra in ("0", "40"):
        model_dir, _ = run(
            tmp_path / extra,
            hp(algorithm_mode="randomized", extra_components=extra),
            {"train": ChannelData(folder, RECORDIO)},
        )
        captured.append(np.sum((centred @ ALGORITHM.load_model(model_dir).v) ** 2))
    assert captured[1] > captured[0]  # a larger sketch is more accurate


def test_pipe_mode_gives_the_file_mode_model(tmp_path: Path, digits: np.ndarray) -> None:
    folder = write_channel(tmp_path / "data", digits, "dense", parts=4)
    file_dir, _ = run(tmp_path / "file", hp(), {"train": ChannelData(folder, RECORDIO)})
    feeder = PipeFeeder("train", tmp_path / "pipes", sorted(str(p) for p in folder.iterdir()), open_object)
    feeder.start()
    try:
        pipe_dir, _ = run(
            tmp_path / "pipe", hp(), {"train": ChannelData(tmp_path / "pipes" / "train", RECORDIO, "Pipe")}
        )
    finally:
        feeder.close()
    file_model, pipe_model = ALGORITHM.load_model(file_dir), ALGORITHM.load_model(pipe_dir)
    np.testing.assert_allclose(file_model.s, pipe_model.s, rtol=1e-5)
    np.testing.assert_allclose(file_model.v, pipe_model.v, atol=1e-5)


def test_metric_definitions_match_the_log_and_test_is_scored(tmp_path: Path, digits: np.ndarray) -> None:
    channels = {
        "train": ChannelData(write_channel(tmp_path / "train", digits[:1500], "csv"), CSV0),
        "test": ChannelData(write_channel(tmp_path / "test", digits[1500:], "csv"), CSV0),
    }
    model_dir, log = run(tmp_path, hp(), channels)
    for definition in ALGORITHM.metric_definitions:
        assert any(re.search(definition["Regex"], line) for line in log.splitlines()), definition["Name"]
    assert "#progress_metric: host=algo-1, completed 100 % of epochs" in log
    reported = float(
        re.search(r"#quality_metric: host=algo-1, test reconstruction_error <loss>=(\S+)", log).group(1)
    )
    model = ALGORITHM.load_model(model_dir)
    centred = digits[1500:] - model.mean
    rebuilt = (centred @ model.v) @ model.v.T
    assert reported == pytest.approx(float(np.mean(np.sum((centred - rebuilt) ** 2, axis=1))), rel=1e-3)


def test_artifact_is_an_mxnet_ndarray_dict() -> None:
    arrays = {
        "s": np.array([1.0, 2.0], dtype=np.float32),
        "v": np.array([[1, 0], [0, 1], [0.5, 0.5]], dtype=np.float32),
        "mean": np.array([[0.1, 0.2, 0.3]], dtype=np.float32),
    }
    assert mxnet_ndarray.dumps(arrays) == bytes.fromhex(MXNET_DICT_HEX)
    loaded = mxnet_ndarray.loads(bytes.fromhex(MXNET_DICT_HEX))
    assert isinstance(loaded, dict) and list(loaded) == ["s", "v", "mean"]
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, digits: np.ndarray):
    tmp = tmp_path_factory.mktemp("served")
    model_dir, _ = run(tmp, hp(), {"train": ChannelData(write_channel(tmp / "t", digits, "dense"), RECORDIO)})
    model = ALGORITHM.load_model(model_dir)
    rows = digits[:3]
    return model, rows, (rows - model.mean) @ model.v


def _bodies(rows: np.ndarray) -> dict[str, bytes]:
    recordio = io.BytesIO()
    write_numpy_to_dense_tensor(recordio, rows)
    return {
        "text/csv": "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode(),
        "application/json": json.dumps(
            {"instances": [{"data": {"features": {"values": row.tolist()}}} for row in rows]}
        ).encode(),
        "application/jsonlines": "\n".join(json.dumps({"features": row.tolist()}) for row in rows).encode(),
        "application/x-recordio-protobuf": recordio.getvalue(),
    }


@pytest.mark.parametrize("content_type", ALGORITHM.request_content_types)
@pytest.mark.parametrize("accept", ALGORITHM.accept_types)
def test_invoke_every_content_type_and_accept(served, content_type: str, accept: str) -> None:
    model, rows, expected = served
    body, returned = ALGORITHM.invoke(model, _bodies(rows)[content_type], content_type, accept)
    assert returned == accept
    if accept == "application/json":
        payload = json.loads(body)
        assert list(payload) == ["projections"]
        projections = [p["projection"] for p in payload["projections"]]
    elif accept == "application/jsonlines":
        projections = [json.loads(line)["projection"] for line in body.decode().splitlines()]
    else:
        projections = [
            list(record.label["projection"].float32_tensor.values) for record in read_records(body)
        ]
    np.testing.assert_allclose(np.array(projections), expected, rtol=1e-4, atol=1e-3)


def test_invoke_sparse_request_and_unsupported_accept(served) -> None:
    model, rows, expected = served
    keys = np.flatnonzero(rows[0])
    request = {
        "instances": [
            {"data": {"features": {"keys": keys.tolist(), "shape": [64], "values": rows[0][keys].tolist()}}}
        ]
    }
    body, _ = ALGORITHM.invoke(model, json.dumps(request).encode(), "application/json", "application/json")
    np.testing.assert_allclose(
        json.loads(body)["projections"][0]["projection"], expected[0], rtol=1e-4, atol=1e-3
    )
    with pytest.raises(UnsupportedContentType):
        ALGORITHM.invoke(model, b"1", "text/csv", "text/csv")


@pytest.mark.parametrize(
    ("hyperparameters", "named"),
    [
        ({**hp(), "num_component": "3"}, "num_component"),  # unknown
        ({"feature_dim": "64", "num_components": "5"}, "'mini_batch_size'"),  # missing required
        (hp(num_components="5.5"), "HyperParameters.num_components"),  # bad type
        (hp(extra_components="-2", algorithm_mode="randomized"), "extra_components"),  # out of range
        (hp(algorithm_mode="stable"), "algorithm_mode"),
        (hp(subtract_mean="maybe"), "subtract_mean"),
        (hp(num_components="65"), "num_components"),  # cross-field: > feature_dim
        (hp(extra_components="4"), "extra_components"),  # cross-field: regular mode
        (hp(epochs="2"), "epochs"),  # PCA makes one pass
    ],
)
def test_invalid_hyperparameters_name_the_parameter(hyperparameters: dict[str, str], named: str) -> None:
    with pytest.raises(HyperparameterError, match=re.escape(named)):
        ALGORITHM.validate_hyperparameters(hyperparameters)


def test_data_errors_are_client_errors(tmp_path: Path, digits: np.ndarray) -> None:
    folder = write_channel(tmp_path / "csv", digits, "csv")
    with pytest.raises(ClientError, match="feature_dim=65 but the train channel has 64 features"):
        run(tmp_path / "a", {**hp(), "feature_dim": "65"}, {"train": ChannelData(folder, CSV0)})
    wide = sp.random(50, 70, density=0.2, format="csr", random_state=0, dtype=np.float32)
    with pytest.raises(ClientError, match="feature_dim=64 but the train channel has 70 features"):
        run(
            tmp_path / "b",
            hp(),
            {"train": ChannelData(write_channel(tmp_path / "wide", wide.toarray(), "sparse"), RECORDIO)},
        )
    with pytest.raises(ClientError, match="requires a 'train' channel"):
        run(tmp_path / "c", hp(), {"test": ChannelData(folder, CSV0)})
