"""sagemaker-compatible serializers and deserializers (the UFO notebook's CSV in, JSON out)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from forgeml.deserializers import (
    BytesDeserializer,
    CSVDeserializer,
    JSONDeserializer,
    JSONLinesDeserializer,
    NumpyDeserializer,
    RecordDeserializer,
    StringDeserializer,
)
from forgeml.serializers import (
    CSVSerializer,
    IdentitySerializer,
    JSONLinesSerializer,
    JSONSerializer,
    NumpySerializer,
    RecordSerializer,
)


def test_csv_serializer_rows_and_matrices() -> None:
    serializer = CSVSerializer()
    assert serializer.content_type == "text/csv"
    assert serializer.serialize([1, 2.5, 3]) == "1,2.5,3"
    assert serializer.serialize(np.array([[1.0, 2.0], [3.0, 4.0]])) == "1.0,2.0\n3.0,4.0"
    assert serializer.serialize([[1, 2], [3, 4]]) == "1,2\n3,4"
    assert serializer.serialize("already,csv") == "already,csv"
    assert serializer.serialize(io.BytesIO(b"5,6")) == "5,6"


def test_json_jsonlines_numpy_identity_and_record_serializers() -> None:
    assert JSONSerializer().serialize({"instances": [{"features": np.array([1.0, 2.0])}]}) == \
        '{"instances": [{"features": [1.0, 2.0]}]}'
    assert JSONSerializer().serialize(np.array([1, 2])) == "[1, 2]"
    assert JSONLinesSerializer().serialize([{"a": 1}, {"b": 2}]) == '{"a": 1}\n{"b": 2}'
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(np.load(io.BytesIO(NumpySerializer().serialize(array))), array)
    assert IdentitySerializer("application/x-image").serialize(b"\x00\x01") == b"\x00\x01"
    records = RecordDeserializer().deserialize(io.BytesIO(RecordSerializer().serialize(np.array([1.5, 2.0], dtype=np.float32))),
                                               "application/x-recordio-protobuf")
    assert list(records[0].features["values"].float32_tensor.values) == [1.5, 2.0]


def test_deserializers() -> None:
    body = b'{"predictions": [{"score": [0.1, 0.8, 0.1], "predicted_label": 1}]}'
    assert JSONDeserializer().deserialize(io.BytesIO(body), "application/json")["predictions"][0]["predicted_label"] == 1
    assert JSONDeserializer().ACCEPT == ("application/json",)
    assert JSONLinesDeserializer().deserialize(b'{"a": 1}\n{"a": 2}\n', "application/jsonlines") == [{"a": 1}, {"a": 2}]
    assert CSVDeserializer().deserialize(b"1,2\n3,4\n", "text/csv") == [["1", "2"], ["3", "4"]]
    assert StringDeserializer().deserialize(b"ok", "text/plain") == "ok"
    assert BytesDeserializer().deserialize(io.BytesIO(b"raw"), "application/octet-stream") == b"raw"
    numpy = NumpyDeserializer()
    assert numpy.deserialize(b"1,2\n3,4", "text/csv").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert numpy.deserialize(b"[[1, 2]]", "application/json").tolist() == [[1, 2]]
    with pytest.raises(ValueError, match="cannot read"):
        numpy.deserialize(b"x", "image/png")
