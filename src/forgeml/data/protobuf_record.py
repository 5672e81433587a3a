"""The ``aialgs.data`` protobuf messages that RecordIO-protobuf payloads carry.

SageMaker's SDK ships a protoc-generated ``record_pb2``; we build the same schema from a
``FileDescriptorProto`` at import time instead, so there is no generated code to keep in sync
with the protobuf runtime.  Field numbers, labels and packing follow the reference (§9.2), which
makes ``SerializeToString`` byte-identical to what the SDK writes.

The descriptors live in a private ``DescriptorPool``: if the real ``sagemaker`` SDK is imported
in the same process it registers ``aialgs.data.*`` in the default pool, and two registrations
of one name would clash.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "aialgs.data"
_FDP = descriptor_pb2.FieldDescriptorProto


def _field(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    ftype: int,
    *,
    repeated: bool = False,
    packed: bool = False,
    type_name: str | None = None,
    oneof_index: int | None = None,
) -> None:
    field = message.field.add()
    field.name = name
    field.number = number
    field.type = ftype  # type: ignore[assignment]
    field.label = _FDP.LABEL_REPEATED if repeated else _FDP.LABEL_OPTIONAL
    if type_name is not None:
        field.type_name = type_name
    if oneof_index is not None:
        field.oneof_index = oneof_index
    if packed:
        field.options.packed = True


def _tensor(file: descriptor_pb2.FileDescriptorProto, name: str, value_type: int) -> None:
    message = file.message_type.add()
    message.name = name
    _field(message, "values", 1, value_type, repeated=True, packed=True)
    _field(message, "keys", 2, _FDP.TYPE_UINT64, repeated=True, packed=True)
    _field(message, "shape", 3, _FDP.TYPE_UINT64, repeated=True, packed=True)


def _map_field(record: descriptor_pb2.DescriptorProto, name: str, entry: str, number: int) -> None:
    nested = record.nested_type.add()
    nested.name = entry
    nested.options.map_entry = True
    _field(nested, "key", 1, _FDP.TYPE_STRING)
    _field(nested, "value", 2, _FDP.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Value")
    _field(record, name, number, _FDP.TYPE_MESSAGE, repeated=True, type_name=f".{_PACKAGE}.Record.{entry}")


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto()
    file.name = "forgeml/aialgs_data_record.proto"
    file.package = _PACKAGE
    file.syntax = "proto2"
    file.options.java_package = "com.amazonaws.aialgorithms.proto"
    file.options.java_outer_classname = "RecordProtos"

    _tensor(file, "Float32Tensor", _FDP.TYPE_FLOAT)
    _tensor(file, "Float64Tensor", _FDP.TYPE_DOUBLE)
    _tensor(file, "Int32Tensor", _FDP.TYPE_INT32)

    raw = file.message_type.add()
    raw.name = "Bytes"
    _field(raw, "value", 1, _FDP.TYPE_BYTES, repeated=True)
    _field(raw, "content_type", 2, _FDP.TYPE_STRING)

    value = file.message_type.add()
    value.name = "Value"
    value.oneof_decl.add().name = "value"
    for name, number, type_name in (
        ("float32_tensor", 2, "Float32Tensor"),
        ("float64_tensor", 3, "Float64Tensor"),
        ("int32_tensor", 7, "Int32Tensor"),
        ("bytes", 9, "Bytes"),
    ):
        _field(value, name, number, _FDP.TYPE_MESSAGE, type_name=f".{_PACKAGE}.{type_name}", oneof_index=0)

    record = file.message_type.add()
    record.name = "Record"
    _map_field(record, "features", "FeaturesEntry", 1)
    _map_field(record, "label", "LabelEntry", 2)
    _field(record, "uid", 3, _FDP.TYPE_STRING)
    _field(record, "metadata", 4, _FDP.TYPE_STRING)
    _field(record, "configuration", 5, _FDP.TYPE_STRING)
    return file


POOL = descriptor_pool.DescriptorPool()
_FILE = _build_file()
POOL.Add(_FILE)
FILE_DESCRIPTOR = POOL.FindFileByName(_FILE.name)


def _message_class(name: str) -> Any:
    return message_factory.GetMessageClass(POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


Float32Tensor: Any = _message_class("Float32Tensor")
Float64Tensor: Any = _message_class("Float64Tensor")
Int32Tensor: Any = _message_class("Int32Tensor")
Bytes: Any = _message_class("Bytes")
Value: Any = _message_class("Value")
Record: Any = _message_class("Record")

__all__ = ["Bytes", "Float32Tensor", "Float64Tensor", "Int32Tensor", "Record", "Value"]
