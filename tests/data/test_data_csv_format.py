"""CSV: SageMaker's label-first convention, exact round trips, and precise error locations."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from forgeml.data import iter_csv, read_csv, write_csv
from forgeml.errors import DataFormatError

RNG = np.random.default_rng(11)


def _csv(features: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    out = io.BytesIO()
    write_csv(out, features, labels)
    return out.getvalue()


def test_round_trip_is_exact_for_float32() -> None:
    features = (RNG.standard_normal((400, 6)) * 10.0 ** RNG.integers(-8, 8, (400, 6))).astype(np.float32)
    labels = RNG.integers(0, 4, 400).astype(np.float32)
    data = _csv(features, labels)
    assert data.count(b"\n") == 400 and not data.startswith(b"f")  # no header row
    batch = read_csv(data)
    assert batch.features.dtype == np.float32
    np.testing.assert_array_equal(batch.features, features)
    np.testing.assert_array_equal(batch.labels, labels)


def test_label_size_zero_and_two() -> None:
    data = b"1,2,3,4\n5,6,7,8\n"
    unsupervised = read_csv(data, label_size=0)
    assert unsupervised.labels is None
    np.testing.assert_array_equal(unsupervised.features, [[1, 2, 3, 4], [5, 6, 7, 8]])
    two = read_csv(data, label_size=2)
    assert two.labels is not None and two.labels.shape == (2, 2)
    np.testing.assert_array_equal(two.labels, [[1, 2], [5, 6]])
    np.testing.assert_array_equal(two.features, [[3, 4], [7, 8]])
    round_trip = read_csv(_csv(two.features, two.labels), label_size=2)
    np.testing.assert_array_equal(round_trip.labels, two.labels)
    with pytest.raises(ValueError, match="label_size"):
        read_csv(data, label_size=-1)


def test_missing_values_spaces_quotes_and_crlf() -> None:
    batch = read_csv(b'1, 2.5,,"4"\r\n0,nan,-inf,1e3\r\n')
    np.testing.assert_array_equal(batch.labels, [1, 0])
    assert np.isnan(batch.features[0, 1]) and np.isnan(batch.features[1, 0])
    np.testing.assert_array_equal(batch.features[0, [0, 2]], [2.5, 4])
    np.testing.assert_array_equal(batch.features[1, 1:], [-np.inf, 1000])


def test_blank_lines_are_skipped_but_still_counted() -> None:
    batch = read_csv(b"1,2\n\n   \n3,4\n")
    np.testing.assert_array_equal(batch.features, [[2], [4]])
    with pytest.raises(DataFormatError) as info:
        read_csv(b"1,2\n\n\n3,x\n", path="t.csv")
    assert info.value.record == 4


def test_empty_input() -> None:
    assert read_csv(b"").n_rows == 0
    assert list(iter_csv(io.BytesIO(b"\n\n"))) == []


def test_non_numeric_field_names_file_record_and_column() -> None:
    with pytest.raises(DataFormatError) as info:
        read_csv(b"1,2,3\n4,5,6\n7,abc,9\n", path="/opt/ml/input/data/train/train.csv")
    message = str(info.value)
    assert info.value.record == 3
    assert "could not parse value 'abc'" in message and "column 2" in message
    assert message.endswith("(file /opt/ml/input/data/train/train.csv, record 3)")
    assert info.value.failure_reason().startswith("ClientError: could not parse value 'abc'")


def test_header_row_is_reported_as_record_one(tmp_path: Path) -> None:
    file = tmp_path / "with_header.csv"
    file.write_bytes(b"label,a,b\n1,2,3\n")
    with pytest.raises(DataFormatError) as info:
        read_csv(file)
    assert info.value.record == 1 and str(file) in str(info.value) and "'label'" in str(info.value)


@pytest.mark.parametrize("bad", [b"4,5\n", b"4,5,6,7\n"])
def test_ragged_rows(bad: bytes) -> None:
    data = b"1,2,3\n" * 5 + bad + b"1,2,3\n"
    with pytest.raises(DataFormatError, match="columns but expected 3") as info:
        read_csv(data, path="ragged.csv")
    assert info.value.record == 6 and "ragged.csv" in str(info.value)


def test_underscores_are_not_numbers() -> None:
    with pytest.raises(DataFormatError, match="1_000") as info:
        read_csv(b"1,2\n1,1_000\n", path="u.csv")
    assert info.value.record == 2


def test_label_size_larger_than_the_row() -> None:
    with pytest.raises(DataFormatError, match="label_size is 3"):
        read_csv(b"1,2\n", label_size=3, path="x.csv")


def test_streaming_equals_whole_read() -> None:
    features = RNG.standard_normal((2500, 4)).astype(np.float32)
    labels = RNG.standard_normal(2500).astype(np.float32)
    data = _csv(features, labels)
    batches = list(iter_csv(io.BytesIO(data), batch_size=1000, chunk_size=4096))
    assert [b.n_rows for b in batches] == [1000, 1000, 500]
    np.testing.assert_array_equal(np.vstack([b.features for b in batches]), features)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches if b.labels is not None]), labels)


def test_streaming_errors_use_global_line_numbers() -> None:
    lines = [b"1,2,3\n"] * 2502 + [b"1,2,oops\n"] + [b"1,2,3\n"] * 10
    with pytest.raises(DataFormatError) as info:
        list(iter_csv(io.BytesIO(b"".join(lines)), batch_size=1000, path="pipe"))
    assert info.value.record == 2503
    lines = [b"1,2,3\n"] * 1500 + [b"1,2\n"]
    with pytest.raises(DataFormatError, match="expected 3") as info:
        list(iter_csv(io.BytesIO(b"".join(lines)), batch_size=1000, path="pipe"))
    assert info.value.record == 1501


def test_gzip_sources(tmp_path: Path) -> None:
    data = b"1,2,3\n4,5,6\n"
    file = tmp_path / "train.csv.gz"
    file.write_bytes(gzip.compress(data))
    np.testing.assert_array_equal(read_csv(file).features, [[2, 3], [5, 6]])
    with open(file, "rb") as handle:
        (batch,) = list(iter_csv(handle))
    np.testing.assert_array_equal(batch.labels, [1, 4])


def test_write_to_path_and_sparse_input(tmp_path: Path) -> None:
    file = tmp_path / "out.csv"
    write_csv(file, sp.csr_matrix(np.array([[0, 1.5], [2, 0]], dtype=np.float32)), np.array([1, 0]))
    assert file.read_text() == "1,0,1.5\n0,2,0\n"
