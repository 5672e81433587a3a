"""The SageMaker XGBoost container's own test fixtures load with the shapes its tests expect."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forgeml.data import (
    read_channel,
    read_csv,
    read_libsvm,
    read_parquet,
    read_recordio_protobuf,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
ROOT = SHARED / "data" / "xgboost-container"
DATA = ROOT / "data"

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason="shared XGBoost fixtures (../shared/data/xgboost-container) are not available"
)

# The container's CSV / Parquet / dense RecordIO fixtures all hold these five rows.
ROWS = np.array(
    [
        [0, 1, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0],
    ],
    dtype=np.float32,
)


def _dense(batch_features: object) -> np.ndarray:
    return batch_features.toarray() if hasattr(batch_features, "toarray") else np.asarray(batch_features)


def test_csv() -> None:
    batch = read_csv(DATA / "csv" / "train.csv")
    np.testing.assert_array_equal(batch.features, ROWS[:, 1:])
    np.testing.assert_array_equal(batch.labels, ROWS[:, 0])
    both = read_channel(DATA / "csv" / "multiple_files", "text/csv")
    assert both.features.shape == (10, 5)


def test_csv_with_a_weight_column_reads_it_as_a_feature() -> None:
    batch = read_csv(DATA / "csv" / "train.csv.weights")
    assert batch.features.shape == (5, 6)
    np.testing.assert_allclose(batch.features[:, 0], 0.2)


def test_libsvm_with_and_without_weights() -> None:
    plain = read_libsvm(DATA / "libsvm" / "train.libsvm")
    assert plain.is_sparse and plain.features.shape == (5, 5)
    np.testing.assert_array_equal(plain.labels, [1, 1, 1, 1, 0])
    np.testing.assert_array_equal(_dense(plain.features)[0], [0, 0, 1, 0, 0])
    assert plain.weights is None
    weighted = read_libsvm(DATA / "libsvm" / "train.libsvm.weights")
    np.testing.assert_array_equal(_dense(weighted.features), _dense(plain.features))
    np.testing.assert_array_equal(weighted.labels, plain.labels)
    assert weighted.weights is not None
    np.testing.assert_allclose(weighted.weights[:4], 0.2)


def test_parquet() -> None:
    batch = read_parquet(DATA / "parquet" / "train.parquet")
    np.testing.assert_array_equal(batch.features, ROWS[:, 1:])
    np.testing.assert_array_equal(batch.labels, ROWS[:, 0])
    # dask wrote its index as a column; it is not a feature
    both = read_channel(DATA / "parquet" / "multiple_files", "application/x-parquet")
    assert both.features.shape == (10, 5)
    np.testing.assert_array_equal(both.labels[:5], [0, 1, 2, 3, 4])  # type: ignore[index]


def test_recordio_protobuf_dense_int32() -> None:
    batch = read_recordio_protobuf(DATA / "recordio_protobuf" / "train.pb")
    assert not batch.is_sparse
    np.testing.assert_array_equal(batch.features, ROWS[:, 1:])
    np.testing.assert_array_equal(batch.labels, ROWS[:, 0])


def test_recordio_protobuf_sparse_shapes_match_the_container_tests() -> None:
    sparse = read_channel(DATA / "recordio_protobuf" / "sparse", "recordio-protobuf")
    assert sparse.is_sparse and sparse.features.shape == (5, 5)
    np.testing.assert_array_equal(_dense(sparse.features), ROWS[:, 1:])
    edge = read_channel(DATA / "recordio_protobuf" / "sparse_edge_cases", "recordio-protobuf")
    assert edge.features.shape == (25, 3)
    diagonal = read_recordio_protobuf(DATA / "recordio_protobuf" / "sparse_edge_cases" / "diagonal.pbr")
    np.testing.assert_array_equal(_dense(diagonal.features), np.eye(3))
    np.testing.assert_array_equal(diagonal.labels, [1, 1, 1])
    single = read_recordio_protobuf(DATA / "recordio_protobuf" / "single_feature_label.pb")
    assert single.features.shape == (1, 1)
    np.testing.assert_array_equal(single.labels, [0.0])


def test_abalone_libsvm_channel_uses_indices_as_written() -> None:
    batch = read_channel(ROOT / "abalone" / "data" / "train", "text/libsvm", channel="train")
    assert batch.features.shape == (2922, 9)
    dense = _dense(batch.features)
    assert not dense[:, 0].any()  # the data is 1-based, so column 0 stays empty
    np.testing.assert_allclose(dense[0], [0, 2, 0.74, 0.6, 0.195, 1.974, 0.598, 0.4085, 0.71], rtol=1e-6)
    assert batch.labels is not None and batch.labels[0] == 16.0
    validation = read_channel(ROOT / "abalone" / "data" / "validation", "libsvm")
    assert validation.n_rows > 0 and validation.n_features == 9
