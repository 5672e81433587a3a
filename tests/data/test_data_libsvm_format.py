"""libsvm: indices as written, label:weight, and errors naming file and line."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from forgeml.data import iter_libsvm, read_libsvm, write_libsvm
from forgeml.data.libsvm import _parse_exact, _to_batch
from forgeml.errors import DataFormatError

RNG = np.random.default_rng(5)


def _libsvm(features: object, labels: object, weights: object = None) -> bytes:
    out = io.BytesIO()
    write_libsvm(out, features, labels, weights)
    return out.getvalue()


def test_round_trip_sparse() -> None:
    matrix = sp.random(300, 40, density=0.15, format="csr", random_state=2, dtype=np.float32)
    labels = RNG.integers(0, 2, 300).astype(np.float32)
    data = _libsvm(matrix, labels)
    batch = read_libsvm(data)
    assert batch.is_sparse and batch.features.dtype == np.float32
    assert batch.features.shape[0] == 300 and batch.features.shape[1] <= 40
    width = batch.features.shape[1]
    np.testing.assert_array_equal(batch.features.toarray(), matrix.toarray()[:, :width])
    np.testing.assert_array_equal(batch.labels, labels)
    assert read_libsvm(data, n_features=40).features.shape == (300, 40)


def test_round_trip_dense_with_weights() -> None:
    dense = np.array([[0, 1.25, 0], [3, 0, 0.5]], dtype=np.float32)
    data = _libsvm(dense, np.array([1, 0]), np.array([0.5, 2.0], dtype=np.float32))
    assert data == b"1:0.5 1:1.25\n0:2 0:3 2:0.5\n"
    batch = read_libsvm(data)
    np.testing.assert_array_equal(batch.features.toarray(), dense)
    np.testing.assert_array_equal(batch.weights, [0.5, 2.0])
    np.testing.assert_array_equal(batch.labels, [1, 0])


def test_indices_are_columns_as_written() -> None:
    batch = read_libsvm(b"3 1:0.5 4:2\n1 2:1\n")
    assert batch.features.shape == (2, 5)
    np.testing.assert_array_equal(batch.features.toarray(), [[0, 0.5, 0, 0, 2], [0, 0, 1, 0, 0]])


def test_comments_qid_blank_lines_and_unsorted_indices() -> None:
    batch = read_libsvm(b"# header comment\n1 qid:4 3:1 0:2  # trailing\n\n0 1:7\n")
    np.testing.assert_array_equal(batch.labels, [1, 0])
    np.testing.assert_array_equal(batch.features.toarray(), [[2, 0, 0, 1], [0, 7, 0, 0]])


def test_fast_and_exact_parsers_agree() -> None:
    matrix = sp.random(200, 25, density=0.3, format="csr", random_state=9, dtype=np.float32)
    data = _libsvm(matrix, RNG.standard_normal(200).astype(np.float32))
    fast = read_libsvm(data)
    exact = _to_batch(_parse_exact(data, None, 1, None), None)
    assert fast.features.shape == exact.features.shape
    np.testing.assert_array_equal(fast.features.toarray(), exact.features.toarray())
    np.testing.assert_array_equal(fast.labels, exact.labels)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (b"1 2:abc", "feature value 'abc'"),
        (b"1 x:1", "feature index 'x' is not an integer"),
        (b"1 2", "expected <index>:<value>"),
        (b"one 2:1", "label 'one'"),
        (b"1 -3:1", "negative feature index"),
        (b"1 2:1 2:3", "appears twice"),
        (b"1 2:1_0", "feature value '1_0'"),
    ],
)
def test_bad_lines_name_file_and_line(line: bytes, fragment: str) -> None:
    data = b"1 1:1\n0 2:1\n" + line + b"\n1 1:1\n"
    with pytest.raises(DataFormatError) as info:
        read_libsvm(data, path="/data/train.libsvm")
    assert fragment in str(info.value)
    assert info.value.record == 3 and "/data/train.libsvm" in str(info.value)


def test_index_beyond_n_features() -> None:
    with pytest.raises(DataFormatError, match="out of range for 3 features") as info:
        read_libsvm(b"1 0:1\n1 3:1\n", n_features=3, path="f")
    assert info.value.record == 2


def test_bad_weight() -> None:
    with pytest.raises(DataFormatError, match="instance weight 'x'") as info:
        read_libsvm(b"1:0.5 1:1\n0:x 2:1\n", path="w.libsvm")
    assert info.value.record == 2 and "w.libsvm" in str(info.value)


def test_weights_on_some_lines_only() -> None:
    with pytest.raises(DataFormatError, match="has no instance weight") as info:
        read_libsvm(b"1:2 0:1\n0 0:1\n", path="f")
    assert info.value.record == 2


def test_streaming(tmp_path: Path) -> None:
    matrix = sp.random(1000, 30, density=0.1, format="csr", random_state=4, dtype=np.float32)
    labels = np.arange(1000, dtype=np.float32)
    file = tmp_path / "train.libsvm"
    write_libsvm(file, matrix, labels)
    with open(file, "rb") as handle:
        batches = list(iter_libsvm(handle, batch_size=300, chunk_size=1000))
    assert [b.n_rows for b in batches] == [300, 300, 300, 100]
    widths = [b.n_features for b in batches]
    assert widths == sorted(widths)  # widths never shrink
    width = widths[-1]
    stacked = sp.vstack([sp.csr_matrix(b.features, shape=(b.n_rows, width)) for b in batches]).toarray()
    np.testing.assert_array_equal(stacked, matrix.toarray()[:, :width])
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches if b.labels is not None]), labels)
    bad = file.read_bytes() + b"1 7:zz\n"
    with pytest.raises(DataFormatError) as info:
        list(iter_libsvm(io.BytesIO(bad), batch_size=300, path="pipe"))
    assert info.value.record == 1001
