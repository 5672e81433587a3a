"""RecordIO-protobuf writers (SDK semantics) and readers (fast path == general path)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import forgeml.data.recordio_protobuf as rp
from forgeml.data import (
    Record,
    RecordBatch,
    iter_recordio_protobuf,
    read_recordio_protobuf,
    read_records,
    write_numpy_to_dense_tensor,
    write_recordio,
    write_spmatrix_to_sparse_tensor,
)
from forgeml.data.record_fastpath import decode_uniform_dense, locate_values
from forgeml.errors import DataFormatError

RNG = np.random.default_rng(7)


def _dense_bytes(array: Any, labels: Any = None) -> bytes:
    out = io.BytesIO()
    write_numpy_to_dense_tensor(out, array, labels)
    return out.getvalue()


def _sparse_bytes(matrix: Any, labels: Any = None) -> bytes:
    out = io.BytesIO()
    write_spmatrix_to_sparse_tensor(out, matrix, labels)
    return out.getvalue()


def _frames(payloads: list[bytes]) -> bytes:
    out = io.BytesIO()
    for payload in payloads:
        write_recordio(out, payload)
    return out.getvalue()


def _assert_same(a: RecordBatch, b: RecordBatch) -> None:
    assert a.is_sparse == b.is_sparse
    assert a.features.shape == b.features.shape
    if a.is_sparse:
        assert (a.features != b.features).nnz == 0
    else:
        np.testing.assert_array_equal(a.features, b.features)
    if a.labels is None:
        assert b.labels is None
    else:
        assert b.labels is not None
        np.testing.assert_array_equal(a.labels, b.labels)


def _both_paths(data: bytes) -> RecordBatch:
    fast = read_recordio_protobuf(data)
    slow = read_recordio_protobuf(data, fast=False)
    _assert_same(fast, slow)
    assert fast.features.dtype == np.float32
    return fast


# ---------------------------------------------------------------- writer semantics (§9.3)


def test_dense_writer_matches_the_test_vector() -> None:
    data = _dense_bytes(np.array([[1.5, 2.0]], dtype=np.float32), np.array([1.0], dtype=np.float32))
    assert data == bytes.fromhex(
        "0a23d7ce2c000000"
        "0a160a0676616c756573120c120a0a080000c03f00000040"
        "12120a0676616c75657312081206" "0a040000803f"
    )


def test_dtype_picks_the_tensor_type_features_and_labels_independently() -> None:
    cases = [
        (np.float32, "float32_tensor"),
        (np.float64, "float64_tensor"),
        (np.int64, "int32_tensor"),
    ]
    for feature_dtype, feature_field in cases:
        for label_dtype, label_field in cases:
            array = np.array([[1, 2, 3], [4, 5, 6]], dtype=feature_dtype)
            labels = np.array([0, 1], dtype=label_dtype)
            records = read_records(_dense_bytes(array, labels))
            assert [r.features["values"].WhichOneof("value") for r in records] == [feature_field] * 2
            assert [r.label["values"].WhichOneof("value") for r in records] == [label_field] * 2
            values = getattr(records[1].features["values"], feature_field).values
            assert list(values) == [4, 5, 6]
            assert list(getattr(records[1].label["values"], label_field).values) == [1]
            assert not records[0].features["values"].float32_tensor.keys


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.uint8, np.bool_])
def test_unsupported_dtype(dtype: Any) -> None:
    with pytest.raises(ValueError, match="Unsupported dtype"):
        _dense_bytes(np.zeros((2, 2), dtype=dtype))
    with pytest.raises(ValueError, match="Unsupported dtype"):
        _dense_bytes(np.zeros((2, 2), dtype=np.float32), np.zeros(2, dtype=dtype))


def test_writer_shape_errors() -> None:
    with pytest.raises(ValueError, match="Array must be a Matrix"):
        _dense_bytes(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match="Labels must be a Vector"):
        _dense_bytes(np.zeros((2, 2), dtype=np.float32), np.zeros((2, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="not compatible"):
        _dense_bytes(np.zeros((2, 3), dtype=np.float32), np.zeros(3, dtype=np.float32))
    with pytest.raises(TypeError, match="Array must be sparse"):
        _sparse_bytes(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="not compatible"):
        _sparse_bytes(sp.csr_matrix(np.eye(3, dtype=np.float32)), np.zeros(2, dtype=np.float32))


def test_sparse_writer_layout() -> None:
    matrix = sp.csr_matrix(np.array([[1.0, 0, 0, 1.0, 0], [0, 0, 2.5, 0, 0]], dtype=np.float32))
    data = _sparse_bytes(matrix, np.array([3.0, 4.0], dtype=np.float32))
    first, second = read_records(data)
    tensor = first.features["values"].float32_tensor
    assert (list(tensor.values), list(tensor.keys), list(tensor.shape)) == ([1.0, 1.0], [0, 3], [5])
    assert list(second.features["values"].float32_tensor.keys) == [2]
    assert list(second.label["values"].float32_tensor.values) == [4.0]
    # without a label the record is exactly the §9.4 sparse vector
    (only,) = read_records(_sparse_bytes(matrix[:1]))
    assert only.SerializeToString() == bytes.fromhex(
        "0a1d0a0676616c75657312131211" "0a080000803f0000803f" "12020003" "1a0105"
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_labels", [True, False])
def test_vectorised_writer_equals_per_row_protobuf(monkeypatch: pytest.MonkeyPatch, dtype: Any, with_labels: bool) -> None:
    array = RNG.standard_normal((300, 37)).astype(dtype)
    array[0, 0] = np.nan
    array[1, 1] = -0.0
    labels = RNG.integers(0, 5, 300).astype(np.float32) if with_labels else None
    fast = _dense_bytes(array, labels)
    monkeypatch.setattr(rp, "_write_dense_vectorised", lambda *args: False)
    assert fast == _dense_bytes(array, labels)


# ---------------------------------------------------------------- readers


def test_dense_float32_round_trip_takes_the_fast_path() -> None:
    array = RNG.standard_normal((500, 9)).astype(np.float32)
    labels = RNG.integers(0, 3, 500).astype(np.float32)
    data = _dense_bytes(array, labels)
    assert decode_uniform_dense(np.frombuffer(data, dtype=np.uint8)) is not None
    batch = _both_paths(data)
    np.testing.assert_array_equal(batch.features, array)
    np.testing.assert_array_equal(batch.labels, labels)
    assert batch.labels is not None and batch.labels.ndim == 1


def test_dense_without_labels() -> None:
    array = RNG.standard_normal((64, 300)).astype(np.float32)  # 1200-byte tensors: 2-byte varints
    batch = _both_paths(_dense_bytes(array))
    assert batch.labels is None
    np.testing.assert_array_equal(batch.features, array)


def test_float64_and_int_tensors_read_as_float32() -> None:
    array = RNG.standard_normal((40, 5))
    labels = RNG.integers(-3, 3, 40)
    data = _dense_bytes(array, labels)
    assert decode_uniform_dense(np.frombuffer(data, dtype=np.uint8)) is None
    batch = _both_paths(data)
    np.testing.assert_array_equal(batch.features, array.astype(np.float32))
    np.testing.assert_array_equal(batch.labels, labels.astype(np.float32))
    ints = RNG.integers(-1000, 1000, (10, 4))
    np.testing.assert_array_equal(_both_paths(_dense_bytes(ints)).features, ints.astype(np.float32))


def test_sparse_round_trip() -> None:
    matrix = sp.random(200, 50, density=0.1, format="csr", random_state=3, dtype=np.float32)
    labels = RNG.standard_normal(200).astype(np.float32)
    batch = _both_paths(_sparse_bytes(matrix, labels))
    assert batch.is_sparse and batch.features.shape == (200, 50)
    np.testing.assert_array_equal(batch.features.toarray(), matrix.toarray())
    np.testing.assert_array_equal(batch.labels, labels)


def test_sparse_empty_rows_keep_the_declared_width() -> None:
    matrix = sp.csr_matrix((np.array([5.0], dtype=np.float32), ([1], [2])), shape=(3, 8))
    batch = _both_paths(_sparse_bytes(matrix))
    assert batch.features.shape == (3, 8)
    assert batch.features.toarray()[1, 2] == 5.0 and batch.features.nnz == 1


def test_multi_part_records_decode() -> None:
    magic_float = np.frombuffer(bytes.fromhex("0a23d7ce"), dtype="<f4")[0]
    array = RNG.standard_normal((20, 6)).astype(np.float32)
    array[3, :] = magic_float  # this row's payload contains the magic at aligned offsets
    labels = np.arange(20, dtype=np.float32)
    payloads = [r.SerializeToString() for r in read_records(_dense_bytes(array, labels))]
    out = io.BytesIO()
    for payload in payloads:
        write_recordio(out, payload, split_magic=True)
    data = out.getvalue()
    assert len(data) > len(_dense_bytes(array, labels))  # some records really were split
    batch = _both_paths(data)
    np.testing.assert_array_equal(batch.features, array)
    np.testing.assert_array_equal(batch.labels, labels)


def test_reverse_map_entry_order() -> None:
    array = RNG.standard_normal((30, 4)).astype(np.float32)
    labels = RNG.standard_normal(30).astype(np.float32)
    payloads = []
    for row, label in zip(array, labels, strict=True):
        features, target = Record(), Record()
        features.features["values"].float32_tensor.values.extend(row.tolist())
        target.label["values"].float32_tensor.values.extend([float(label)])
        payloads.append(target.SerializeToString() + features.SerializeToString())  # label first
    data = _frames(payloads)
    located = locate_values(payloads[0])
    assert located is not None and located[1] is not None and located[1][0] < located[0][0]
    batch = _both_paths(data)
    np.testing.assert_array_equal(batch.features, array)
    np.testing.assert_array_equal(batch.labels, labels)


def test_multi_value_labels_are_two_dimensional() -> None:
    payloads = []
    for i in range(5):
        record = Record()
        record.features["values"].float32_tensor.values.extend([i, i + 1.0])
        record.label["values"].float32_tensor.values.extend([i * 10.0, i * 20.0, 1.0])
        payloads.append(record.SerializeToString())
    batch = _both_paths(_frames(payloads))
    assert batch.labels is not None and batch.labels.shape == (5, 3)
    np.testing.assert_array_equal(batch.labels[4], [40.0, 80.0, 1.0])


def test_other_tensor_names_are_read_when_alone() -> None:
    payloads = []
    for i in range(3):
        record = Record()
        record.features["pixels"].float32_tensor.values.extend([i, 2.0 * i])
        record.label["target"].int32_tensor.values.extend([i])
        payloads.append(record.SerializeToString())
    batch = _both_paths(_frames(payloads))
    np.testing.assert_array_equal(batch.features, [[0, 0], [1, 2], [2, 4]])
    np.testing.assert_array_equal(batch.labels, [0, 1, 2])


def test_fast_path_verifies_instead_of_assuming() -> None:
    # Same length, same offsets; only the Value tag differs (float32 x2 vs float64 x1).
    first, second = Record(), Record()
    first.features["values"].float32_tensor.values.extend([1.0, 2.0])
    second.features["values"].float64_tensor.values.extend([3.0])
    a, b = first.SerializeToString(), second.SerializeToString()
    assert len(a) == len(b) and a != b
    data = _frames([a, a, b])
    assert decode_uniform_dense(np.frombuffer(data, dtype=np.uint8)) is None
    with pytest.raises(DataFormatError, match="record has 1 features, expected 2") as info:
        read_recordio_protobuf(data, path="mixed.pbr")
    assert info.value.record == 3 and "mixed.pbr" in str(info.value)


def test_a_differing_key_falls_back_and_still_reads() -> None:
    payloads = []
    for i in range(4):
        record = Record()
        record.features["values"].float32_tensor.values.extend([float(i)])
        record.label["values" if i != 2 else "valuez"].float32_tensor.values.extend([i * 2.0])
        payloads.append(record.SerializeToString())
    data = _frames(payloads)
    assert decode_uniform_dense(np.frombuffer(data, dtype=np.uint8)) is None
    batch = _both_paths(data)
    np.testing.assert_array_equal(batch.labels, [0.0, 2.0, 4.0, 6.0])


def test_path_file_object_and_gzip_sources(tmp_path: Path) -> None:
    array = RNG.standard_normal((50, 3)).astype(np.float32)
    data = _dense_bytes(array, np.ones(50, dtype=np.float32))
    plain = tmp_path / "train.pbr"
    plain.write_bytes(data)
    packed = tmp_path / "train.pbr.gz"
    packed.write_bytes(gzip.compress(data))
    hidden_gzip = tmp_path / "shard"
    hidden_gzip.write_bytes(gzip.compress(data))
    for source in (plain, str(plain), packed, hidden_gzip, gzip.compress(data)):
        np.testing.assert_array_equal(read_recordio_protobuf(source).features, array)
    with open(packed, "rb") as handle:
        np.testing.assert_array_equal(read_recordio_protobuf(handle).features, array)
    with open(packed, "rb") as handle:
        batches = list(iter_recordio_protobuf(handle, batch_size=16))
    assert [b.n_rows for b in batches] == [16, 16, 16, 2]


def test_empty_source() -> None:
    batch = read_recordio_protobuf(b"")
    assert batch.n_rows == 0
    assert list(iter_recordio_protobuf(io.BytesIO(b""))) == []


# ---------------------------------------------------------------- streaming


@pytest.mark.parametrize("chunk_size", [64, 1000, 1 << 20])
def test_streaming_batches_match_the_whole_read(chunk_size: int) -> None:
    array = RNG.standard_normal((1000, 7)).astype(np.float32)
    labels = RNG.standard_normal(1000).astype(np.float32)
    data = _dense_bytes(array, labels)
    batches = list(iter_recordio_protobuf(io.BytesIO(data), batch_size=300, chunk_size=chunk_size))
    assert [b.n_rows for b in batches] == [300, 300, 300, 100]
    np.testing.assert_array_equal(np.vstack([b.features for b in batches]), array)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches if b.labels is not None]), labels)


def test_streaming_sparse_and_slow_path() -> None:
    matrix = sp.random(100, 30, density=0.2, format="csr", random_state=1, dtype=np.float32)
    data = _sparse_bytes(matrix)
    batches = list(iter_recordio_protobuf(io.BytesIO(data), batch_size=40, chunk_size=100))
    assert [b.n_rows for b in batches] == [40, 40, 20]
    np.testing.assert_array_equal(sp.vstack([b.features for b in batches]).toarray(), matrix.toarray())
    dense = _dense_bytes(RNG.standard_normal((10, 2)).astype(np.float32))
    fast = list(iter_recordio_protobuf(io.BytesIO(dense), batch_size=4))
    slow = list(iter_recordio_protobuf(io.BytesIO(dense), batch_size=4, fast=False))
    for a, b in zip(fast, slow, strict=True):
        _assert_same(a, b)


# ---------------------------------------------------------------- malformed input


def _records_with_widths(widths: list[int]) -> bytes:
    payloads = []
    for width in widths:
        record = Record()
        record.features["values"].float32_tensor.values.extend([1.0] * width)
        payloads.append(record.SerializeToString())
    return _frames(payloads)


def test_feature_count_change_names_the_record() -> None:
    data = _records_with_widths([3, 3, 3, 4, 3])
    for fast in (True, False):
        with pytest.raises(DataFormatError) as info:
            read_recordio_protobuf(data, path="/in/train.pbr", fast=fast)
        assert info.value.record == 4
        assert "/in/train.pbr" in str(info.value) and "record 4" in str(info.value)


def test_feature_count_change_between_streamed_batches() -> None:
    data = _records_with_widths([3] * 10 + [5] * 10)
    with pytest.raises(DataFormatError) as info:
        list(iter_recordio_protobuf(io.BytesIO(data), batch_size=10, path="pipe/train_0"))
    assert info.value.record == 11 and "pipe/train_0" in str(info.value)


def test_invalid_protobuf_payload_names_the_record() -> None:
    good = Record()
    good.features["values"].float32_tensor.values.extend([1.0])
    data = _frames([good.SerializeToString(), good.SerializeToString(), b"\x0a\xff\xff"])
    with pytest.raises(DataFormatError, match="not a valid aialgs.data.Record") as info:
        read_recordio_protobuf(data, path="bad.pbr")
    assert info.value.record == 3 and "bad.pbr" in str(info.value)


def test_record_without_features_or_with_a_bad_tensor() -> None:
    good = Record()
    good.features["values"].float32_tensor.values.extend([1.0])
    empty = Record()
    empty.label["values"].float32_tensor.values.extend([1.0])
    with pytest.raises(DataFormatError, match="no features") as info:
        read_recordio_protobuf(_frames([good.SerializeToString(), empty.SerializeToString()]), path="f")
    assert info.value.record == 2
    raw = Record()
    raw.features["values"].bytes.value.append(b"abc")
    with pytest.raises(DataFormatError, match="not supported") as info:
        read_recordio_protobuf(_frames([raw.SerializeToString()]), path="f")
    assert info.value.record == 1
    bad_keys = Record()
    tensor = bad_keys.features["values"].float32_tensor
    tensor.values.extend([1.0, 2.0])
    tensor.keys.extend([7])
    tensor.shape.extend([10])
    with pytest.raises(DataFormatError, match="1 keys but 2 values"):
        read_recordio_protobuf(_frames([bad_keys.SerializeToString()]), path="f")
    tensor.keys.append(12)
    with pytest.raises(DataFormatError, match="outside its shape"):
        read_recordio_protobuf(_frames([bad_keys.SerializeToString()]), path="f")


def test_labels_on_some_records_only() -> None:
    with_label, without = Record(), Record()
    for record in (with_label, without):
        record.features["values"].float32_tensor.values.extend([1.0, 2.0])
    with_label.label["values"].float32_tensor.values.extend([1.0])
    data = _frames([with_label.SerializeToString()] * 3 + [without.SerializeToString()])
    with pytest.raises(DataFormatError, match="has no label") as info:
        read_recordio_protobuf(data, path="f.pbr")
    assert info.value.record == 4


def test_truncated_file_names_the_last_record(tmp_path: Path) -> None:
    data = _dense_bytes(RNG.standard_normal((20, 4)).astype(np.float32))
    file = tmp_path / "cut.pbr"
    file.write_bytes(data[:-9])
    with pytest.raises(DataFormatError, match="truncated") as info:
        read_recordio_protobuf(file)
    assert info.value.record == 20 and str(file) in str(info.value)
    with pytest.raises(DataFormatError) as info, open(file, "rb") as handle:
        list(iter_recordio_protobuf(handle, batch_size=8))
    assert info.value.record == 20


def test_corrupt_gzip_is_a_data_format_error(tmp_path: Path) -> None:
    packed = gzip.compress(_dense_bytes(np.ones((100, 3), dtype=np.float32)))
    file = tmp_path / "train.pbr.gz"
    file.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataFormatError, match="gzip") as info:
        read_recordio_protobuf(file)
    assert str(file) in str(info.value)
    with pytest.raises(DataFormatError, match="gzip"), open(file, "rb") as handle:
        list(iter_recordio_protobuf(handle))
