"""Parquet: label is the first column; streaming by row group; bad data names file and row."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from forgeml.data import iter_parquet, read_parquet, write_parquet
from forgeml.data.parquet import split_concatenated
from forgeml.errors import DataFormatError

RNG = np.random.default_rng(3)


def test_round_trip(tmp_path: Path) -> None:
    features = RNG.standard_normal((250, 5)).astype(np.float32)
    labels = RNG.integers(0, 3, 250).astype(np.float32)
    file = tmp_path / "train.parquet"
    write_parquet(file, features, labels)
    assert pq.read_schema(file).names == ["label", "f0", "f1", "f2", "f3", "f4"]
    batch = read_parquet(file)
    np.testing.assert_array_equal(batch.features, features)
    np.testing.assert_array_equal(batch.labels, labels)
    unsupervised = read_parquet(file, label_size=0)
    assert unsupervised.labels is None and unsupervised.features.shape == (250, 6)
    np.testing.assert_array_equal(read_parquet(file.read_bytes()).features, features)


def test_without_labels_and_with_two_label_columns(tmp_path: Path) -> None:
    features = RNG.standard_normal((10, 3)).astype(np.float32)
    file = tmp_path / "x.parquet"
    write_parquet(file, features)
    np.testing.assert_array_equal(read_parquet(file, label_size=0).features, features)
    labels = RNG.standard_normal((10, 2)).astype(np.float32)
    write_parquet(file, features, labels)
    batch = read_parquet(file, label_size=2)
    np.testing.assert_array_equal(batch.labels, labels)
    np.testing.assert_array_equal(batch.features, features)


def test_streams_by_row_group(tmp_path: Path) -> None:
    features = RNG.standard_normal((1000, 4)).astype(np.float32)
    labels = np.arange(1000, dtype=np.float32)
    file = tmp_path / "big.parquet"
    write_parquet(file, features, labels, row_group_size=256)
    assert pq.ParquetFile(file).num_row_groups == 4
    batches = list(iter_parquet(file, batch_size=100))
    assert all(b.n_rows <= 100 for b in batches) and sum(b.n_rows for b in batches) == 1000
    np.testing.assert_array_equal(np.vstack([b.features for b in batches]), features)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches if b.labels is not None]), labels)
    with open(file, "rb") as handle:
        assert sum(b.n_rows for b in iter_parquet(handle, batch_size=300)) == 1000


def test_pandas_index_column_is_dropped_and_nulls_are_nan(tmp_path: Path) -> None:
    frame = pd.DataFrame({"y": [1, 0, 1], "a": [0.5, None, 2.0], "b": [True, False, True]}, index=[10, 11, 12])
    file = tmp_path / "frame.parquet"
    frame.to_parquet(file, index=True)
    assert "__index_level_0__" in pq.read_schema(file).names
    batch = read_parquet(file)
    assert batch.features.shape == (3, 2)
    np.testing.assert_array_equal(batch.labels, [1, 0, 1])
    assert np.isnan(batch.features[1, 0])
    np.testing.assert_array_equal(batch.features[:, 1], [1, 0, 1])


def test_numeric_strings_parse_and_bad_strings_name_the_row(tmp_path: Path) -> None:
    file = tmp_path / "strings.parquet"
    pq.write_table(pa.table({"y": ["1", "0", "1"], "x": [" 2.5", "3", ""]}), file)
    batch = read_parquet(file)
    np.testing.assert_array_equal(batch.labels, [1, 0, 1])
    assert batch.features[0, 0] == 2.5 and np.isnan(batch.features[2, 0])
    pq.write_table(pa.table({"y": [1.0, 2.0, 3.0], "x": ["1", "2", "n/a"]}), file)
    with pytest.raises(DataFormatError, match="could not parse value 'n/a' in column 'x'") as info:
        read_parquet(file)
    assert info.value.record == 3 and str(file) in str(info.value)
    pq.write_table(pa.table({"y": [1.0], "x": pa.array([[1, 2]])}), file)
    with pytest.raises(DataFormatError, match="non-numeric type"):
        read_parquet(file)


def test_not_parquet(tmp_path: Path) -> None:
    file = tmp_path / "fake.parquet"
    file.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataFormatError, match="not a readable Parquet file") as info:
        read_parquet(file)
    assert str(file) in str(info.value)


def test_unseekable_stream_is_buffered() -> None:
    out = io.BytesIO()
    write_parquet(out, np.ones((5, 2), dtype=np.float32), np.zeros(5, dtype=np.float32))

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def seekable(self) -> bool:
            return False

        def read(self, size: int | None = -1) -> bytes:
            return self._data.read(-1 if size is None else size)

    (batch,) = list(iter_parquet(Pipe(out.getvalue())))
    assert batch.features.shape == (5, 2)


def test_gzipped_parquet(tmp_path: Path) -> None:
    out = io.BytesIO()
    write_parquet(out, np.eye(3, dtype=np.float32), np.arange(3, dtype=np.float32))
    file = tmp_path / "train.parquet.gz"
    file.write_bytes(gzip.compress(out.getvalue()))
    np.testing.assert_array_equal(read_parquet(file).features, np.eye(3))
    np.testing.assert_array_equal(read_parquet(gzip.compress(out.getvalue())).labels, [0, 1, 2])


def _parquet_bytes(features: np.ndarray, labels: np.ndarray) -> bytes:
    out = io.BytesIO()
    table = pa.table({"label": labels, **{f"f{j}": features[:, j] for j in range(features.shape[1])}})
    pq.write_table(table, out, compression="none", use_dictionary=False)
    return out.getvalue()


def test_concatenated_files_in_a_stream_are_split() -> None:
    # Pipe mode streams a channel's objects back to back; the middle file's data holds a decoy
    # "PAR1PAR1" (two floats whose bytes spell it) that must not be taken for a file boundary.
    decoy = float(np.frombuffer(b"PAR1", dtype="<f4")[0])
    first = np.full((4, 2), decoy, dtype=np.float32)
    parts = [
        (np.ones((3, 2), dtype=np.float32), np.zeros(3, dtype=np.float32)),
        (first, np.ones(4, dtype=np.float32)),
        (np.full((2, 2), 7.0, dtype=np.float32), np.full(2, 2.0, dtype=np.float32)),
    ]
    blobs = [_parquet_bytes(features, labels) for features, labels in parts]
    assert b"PAR1PAR1" in blobs[1][4:-4]
    stream = b"".join(blobs)
    assert [len(piece) for piece in split_concatenated(stream)] == [len(blob) for blob in blobs]

    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, size: int | None = -1) -> bytes:
            return self._data.read(-1 if size is None else size)

    batches = list(iter_parquet(Pipe(stream), batch_size=100))
    assert [b.n_rows for b in batches] == [3, 4, 2]
    np.testing.assert_array_equal(batches[1].features, first)
    whole = read_parquet(Pipe(stream))
    np.testing.assert_array_equal(whole.labels, [0, 0, 0, 1, 1, 1, 1, 2, 2])
