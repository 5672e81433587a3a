"""The aialgs.data schema, built at import time, must serialize exactly like the SDK (§9.2, §9.4)."""

from __future__ import annotations

import io

import pytest

from forgeml.data import Record, Value, read_records, write_recordio
from forgeml.data.protobuf_record import POOL, Float32Tensor, Float64Tensor, Int32Tensor

DENSE_RECORD = bytes.fromhex(
    "0a16"  # features entry, 22 bytes
    "0a0676616c756573"  # key "values"
    "120c" "120a" "0a08" "0000c03f00000040"  # Value{float32_tensor{values: [1.5, 2.0]}}
    "1212"  # label entry, 18 bytes
    "0a0676616c756573"
    "1208" "1206" "0a04" "0000803f"  # Value{float32_tensor{values: [1.0]}}
)

SPARSE_RECORD = bytes.fromhex(
    "0a1d0a0676616c75657312131211"
    "0a080000803f0000803f"  # values [1.0, 1.0]
    "12020003"  # keys [0, 3]
    "1a0105"  # shape [5]
)


def test_dense_test_vector() -> None:
    record = Record()
    record.features["values"].float32_tensor.values.extend([1.5, 2.0])
    record.label["values"].float32_tensor.values.extend([1.0])
    payload = record.SerializeToString()
    assert len(payload) == 44
    assert payload == DENSE_RECORD


def test_dense_test_vector_framed() -> None:
    out = io.BytesIO()
    write_recordio(out, DENSE_RECORD)
    assert out.getvalue() == bytes.fromhex("0a23d7ce2c000000") + DENSE_RECORD  # 44 % 4 == 0: no padding


def test_sparse_test_vector_and_framing() -> None:
    record = Record()
    tensor = record.features["values"].float32_tensor
    tensor.values.extend([1.0, 1.0])
    tensor.keys.extend([0, 3])
    tensor.shape.extend([5])
    payload = record.SerializeToString()
    assert payload == SPARSE_RECORD
    assert len(payload) == 31
    out = io.BytesIO()
    write_recordio(out, payload)
    assert out.getvalue() == bytes.fromhex("0a23d7ce1f000000") + SPARSE_RECORD + b"\x00"


def test_parse_test_vector_back() -> None:
    (record,) = read_records(io.BytesIO(bytes.fromhex("0a23d7ce2c000000") + DENSE_RECORD))
    assert list(record.features["values"].float32_tensor.values) == [1.5, 2.0]
    assert list(record.label["values"].float32_tensor.values) == [1.0]
    assert record.features["values"].WhichOneof("value") == "float32_tensor"


def test_field_numbers_and_packing_match_the_reference() -> None:
    value = POOL.FindMessageTypeByName("aialgs.data.Value")
    assert {f.name: f.number for f in value.fields} == {
        "float32_tensor": 2,
        "float64_tensor": 3,
        "int32_tensor": 7,
        "bytes": 9,
    }
    assert [o.name for o in value.oneofs] == ["value"]
    for tensor in (Float32Tensor, Float64Tensor, Int32Tensor):
        fields = {f.name: f for f in tensor.DESCRIPTOR.fields}
        assert [fields[n].number for n in ("values", "keys", "shape")] == [1, 2, 3]
        assert all(fields[n].is_packed for n in ("values", "keys", "shape"))
    record = POOL.FindMessageTypeByName("aialgs.data.Record")
    assert {f.name: f.number for f in record.fields} == {
        "features": 1,
        "label": 2,
        "uid": 3,
        "metadata": 4,
        "configuration": 5,
    }
    assert record.fields_by_name["features"].message_type.GetOptions().map_entry
    assert record.file.package == "aialgs.data"
    assert record.file.GetOptions().java_outer_classname == "RecordProtos"


def test_other_tensor_types_encode_with_their_field_numbers() -> None:
    value = Value()
    value.int32_tensor.values.extend([1, 0, -1])
    # field 7, wire type 2 -> tag 0x3a; negative int32 is a 10-byte varint
    assert value.SerializeToString()[:1] == b"\x3a"
    value = Value()
    value.float64_tensor.values.extend([1.0])
    assert value.SerializeToString() == bytes.fromhex("1a0a0a08000000000000f03f")
    value = Value()
    value.bytes.value.append(b"ab")
    value.bytes.content_type = "text/plain"
    assert Value.FromString(value.SerializeToString()).bytes.content_type == "text/plain"


def test_invalid_protobuf_raises() -> None:
    with pytest.raises(Exception):  # noqa: B017 - protobuf's own DecodeError type varies by backend
        Record.FromString(b"\x0a\xff")
