"""Channels: which files count, concatenation, gzip, and streaming a folder or a stream."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from forgeml.data import (
    iter_channel,
    list_channel_files,
    read_channel,
    write_csv,
    write_jsonlines,
    write_libsvm,
    write_numpy_to_dense_tensor,
    write_parquet,
    write_spmatrix_to_sparse_tensor,
)
from forgeml.errors import ClientError, DataFormatError

RNG = np.random.default_rng(17)


def _pbr(path: Path, features: np.ndarray, labels: np.ndarray | None = None) -> None:
    with open(path, "wb") as handle:
        write_numpy_to_dense_tensor(handle, features, labels)


def test_list_files_sorted_recursive_skipping_hidden_and_manifests(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden_dir").mkdir()
    for name in ("z.csv", "a.csv", "b/c.csv", ".secret.csv", ".amazon.manifest", "train.manifest", ".hidden_dir/x.csv"):
        (tmp_path / name).write_text("1,2\n")
    assert [p.relative_to(tmp_path).as_posix() for p in list_channel_files(tmp_path)] == ["a.csv", "b/c.csv", "z.csv"]
    assert list_channel_files(tmp_path / "a.csv") == [tmp_path / "a.csv"]


def test_symlinked_folders_are_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "part.csv").write_text("1,2\n")
    channel = tmp_path / "train"
    channel.mkdir()
    (channel / "linked").symlink_to(real, target_is_directory=True)
    assert [p.name for p in list_channel_files(channel)] == ["part.csv"]


def test_empty_or_missing_channel(tmp_path: Path) -> None:
    (tmp_path / ".only_hidden").write_text("x")
    with pytest.raises(DataFormatError, match="channel 'train' is empty") as info:
        list_channel_files(tmp_path, channel="train")
    assert isinstance(info.value, ClientError) and str(tmp_path) in str(info.value)
    with pytest.raises(DataFormatError, match="channel 'validation' does not exist"):
        read_channel(tmp_path / "nope", "text/csv", channel="validation")


def test_read_channel_concatenates_files_in_order(tmp_path: Path) -> None:
    parts = [RNG.standard_normal((n, 4)).astype(np.float32) for n in (30, 1, 12)]
    for i, part in enumerate(parts):
        _pbr(tmp_path / f"part-{i}.pbr", part, np.full(len(part), i, dtype=np.float32))
    batch = read_channel(tmp_path, "application/x-recordio-protobuf", channel="train")
    np.testing.assert_array_equal(batch.features, np.vstack(parts))
    np.testing.assert_array_equal(batch.labels, [0] * 30 + [1] + [2] * 12)


def test_feature_count_mismatch_between_files_names_the_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", np.ones((3, 4), dtype=np.float32), np.zeros(3, dtype=np.float32))
    write_csv(tmp_path / "b.csv", np.ones((3, 5), dtype=np.float32), np.zeros(3, dtype=np.float32))
    with pytest.raises(DataFormatError, match="found 5 features but earlier inputs have 4") as info:
        read_channel(tmp_path, "text/csv")
    assert str(tmp_path / "b.csv") in str(info.value)
    with pytest.raises(DataFormatError, match="found 5 features") as info:
        list(iter_channel(tmp_path, "text/csv", batch_size=2))
    assert str(tmp_path / "b.csv") in str(info.value)


def test_sparse_files_widen_and_mix_with_dense(tmp_path: Path) -> None:
    write_libsvm(tmp_path / "a.libsvm", sp.csr_matrix(np.array([[1.0, 0, 0]])), [1])
    write_libsvm(tmp_path / "b.libsvm", sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 2.0]])), [0])
    batch = read_channel(tmp_path, "text/libsvm")
    assert batch.features.shape == (2, 6)
    np.testing.assert_array_equal(batch.features.toarray()[:, [0, 5]], [[1, 0], [0, 2]])
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _pbr(mixed / "0.pbr", np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
    with open(mixed / "1.pbr", "wb") as handle:
        write_spmatrix_to_sparse_tensor(handle, sp.csr_matrix(np.array([[0, 5.0, 0]], dtype=np.float32)))
    combined = read_channel(mixed, "recordio-protobuf")
    assert combined.is_sparse
    np.testing.assert_array_equal(combined.features.toarray(), [[1, 2, 3], [0, 5, 0]])


def test_labels_in_some_files_only(tmp_path: Path) -> None:
    _pbr(tmp_path / "a.pbr", np.ones((2, 2), dtype=np.float32), np.ones(2, dtype=np.float32))
    _pbr(tmp_path / "b.pbr", np.ones((2, 2), dtype=np.float32))
    with pytest.raises(DataFormatError, match="has no labels") as info:
        read_channel(tmp_path, "application/x-recordio-protobuf")
    assert str(tmp_path / "b.pbr") in str(info.value)


def test_gzip_by_name_or_by_magic(tmp_path: Path) -> None:
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(b"1,2\n3,4\n"))
    (tmp_path / "b.csv").write_bytes(gzip.compress(b"5,6\n"))  # gzip without the suffix
    (tmp_path / "c.csv").write_bytes(b"7,8\n")
    batch = read_channel(tmp_path, "text/csv")
    np.testing.assert_array_equal(batch.labels, [1, 3, 5, 7])
    streamed = list(iter_channel(tmp_path, "csv", batch_size=10))
    np.testing.assert_array_equal(np.concatenate([b.labels for b in streamed if b.labels is not None]), [1, 3, 5, 7])
    (tmp_path / "d.csv.gz").write_bytes(b"9,10\n")
    with pytest.raises(DataFormatError, match="not gzip"):
        read_channel(tmp_path, "text/csv")


WRITERS: dict[str, Callable[[Path, np.ndarray, np.ndarray], None]] = {
    "text/csv": write_csv,
    "text/libsvm": write_libsvm,
    "application/x-recordio-protobuf": _pbr,
    "application/jsonlines": write_jsonlines,
    "application/x-parquet": write_parquet,
}


@pytest.mark.parametrize("content_type", sorted(WRITERS))
def test_iter_channel_equals_read_channel(tmp_path: Path, content_type: str) -> None:
    for i in range(3):
        features = (RNG.standard_normal((40 + i, 5)) + 2).astype(np.float32)
        WRITERS[content_type](tmp_path / f"part-{i}", features, RNG.integers(0, 2, 40 + i).astype(np.float32))
    whole = read_channel(tmp_path, content_type)
    assert whole.n_rows == 123 and whole.n_features == 5
    batches = list(iter_channel(tmp_path, content_type, batch_size=16))
    assert all(b.n_rows <= 16 for b in batches) and sum(b.n_rows for b in batches) == 123
    if whole.is_sparse:
        stacked = sp.vstack([b.features for b in batches]).toarray()
        expected = whole.features.toarray()
    else:
        stacked, expected = np.vstack([b.features for b in batches]), whole.features
    np.testing.assert_array_equal(stacked, expected)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches if b.labels is not None]), whole.labels)


def test_iter_channel_over_a_stream_object() -> None:
    buf = io.BytesIO()
    write_numpy_to_dense_tensor(buf, np.arange(20, dtype=np.float32).reshape(10, 2))
    batches = list(iter_channel(io.BytesIO(buf.getvalue()), "application/x-recordio-protobuf", batch_size=4))
    assert [b.n_rows for b in batches] == [4, 4, 2]
    json_batches = list(iter_channel(io.BytesIO(b'{"instances": [{"features": [1]}, {"features": [2]}]}'), "application/json", batch_size=1))
    assert [b.features.tolist() for b in json_batches] == [[[1.0]], [[2.0]]]


def test_label_size_from_the_content_type(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("1,2,3\n4,5,6\n")
    assert read_channel(tmp_path, "text/csv;label_size=0").labels is None
    assert read_channel(tmp_path, "text/csv; label_size=2").features.shape == (2, 1)
    with pytest.raises(ClientError, match="invalid label_size 'x'"):
        read_channel(tmp_path, "text/csv;label_size=x")
    with pytest.raises(ValueError, match="unsupported content type"):
        read_channel(tmp_path, "image/png")
