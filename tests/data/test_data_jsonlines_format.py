"""JSON Lines / JSON rows in every shape SageMaker's algorithms accept."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import scipy.sparse as sp

from forgeml.data import iter_jsonlines, read_json, read_jsonlines, write_jsonlines
from forgeml.errors import DataFormatError

RNG = np.random.default_rng(13)


def test_all_dense_shapes_with_labels() -> None:
    data = b"\n".join(
        [
            b'{"features": [1.5, 16.0, 14.0], "label": 1}',
            b'{"data": {"features": {"values": [2.0, 3.0, 4.0]}}, "label": [0]}',
            b'{"data": {"features": {"values": [5, 6, 7]}, "label": {"values": [2]}}}',
        ]
    )
    batch = read_jsonlines(data)
    assert not batch.is_sparse
    np.testing.assert_array_equal(batch.features, [[1.5, 16, 14], [2, 3, 4], [5, 6, 7]])
    np.testing.assert_array_equal(batch.labels, [1, 0, 2])


def test_sparse_shape() -> None:
    data = (
        b'{"data": {"features": {"keys": [26, 182], "shape": [2000], "values": [1, 4]}}}\n'
        b'{"data": {"features": {"keys": [0], "shape": [2000], "values": [9]}}}\n'
    )
    batch = read_jsonlines(data)
    assert batch.is_sparse and batch.features.shape == (2, 2000)
    assert batch.labels is None
    dense = batch.features.toarray()
    assert dense[0, 26] == 1 and dense[0, 182] == 4 and dense[1, 0] == 9 and dense.sum() == 14


@pytest.mark.parametrize("sparse", [False, True])
def test_round_trip(sparse: bool) -> None:
    dense = RNG.standard_normal((50, 8)).astype(np.float32)
    dense[dense < 0.5] = 0
    features = sp.csr_matrix(dense) if sparse else dense
    labels = RNG.integers(0, 2, 50).astype(np.float32)
    out = io.BytesIO()
    write_jsonlines(out, features, labels)
    first = json.loads(out.getvalue().splitlines()[0])
    assert ("data" in first) == sparse and "label" in first
    batch = read_jsonlines(out.getvalue())
    assert batch.is_sparse == sparse
    np.testing.assert_array_equal(batch.features.toarray() if sparse else batch.features, dense)
    np.testing.assert_array_equal(batch.labels, labels)


def test_streaming() -> None:
    out = io.BytesIO()
    features = RNG.standard_normal((25, 3)).astype(np.float32)
    write_jsonlines(out, features)
    batches = list(iter_jsonlines(io.BytesIO(out.getvalue()), batch_size=10, chunk_size=64))
    assert [b.n_rows for b in batches] == [10, 10, 5]
    np.testing.assert_array_equal(np.vstack([b.features for b in batches]), features)


def test_json_document() -> None:
    doc = {"instances": [{"features": [1, 2]}, {"data": {"features": {"values": [3, 4]}}}]}
    batch = read_json(json.dumps(doc).encode())
    np.testing.assert_array_equal(batch.features, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(read_json(json.dumps(doc["instances"]).encode()).features, [[1, 2], [3, 4]])
    with pytest.raises(DataFormatError, match="instances"):
        read_json(b'{"rows": []}', path="doc.json")
    with pytest.raises(DataFormatError) as info:
        read_json(b'{"instances": [{"features": [1]}, {"features": [1, "x"]}]}', path="doc.json")
    assert info.value.record == 2


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        (b'{"features": [1, 2', "invalid JSON"),
        (b'{"features": [1, "two"]}', "feature value 'two' is not a number"),
        (b'{"features": [1, true]}', "is not a number"),
        (b'{"values": [1, 2]}', "neither 'features' nor 'data.features'"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"features": [1, 2, 3]}', "record has 3 features, expected 2"),
        (b'{"data": {"features": {"keys": [5], "shape": [3], "values": [1]}}}', "outside shape"),
        (b'{"data": {"features": {"keys": [1, 2], "values": [1]}}}', "2 keys but 1 values"),
    ],
)
def test_bad_rows_name_file_and_line(line: bytes, fragment: str) -> None:
    data = b'{"features": [1, 2]}\n\n' + line + b"\n"
    with pytest.raises(DataFormatError) as info:
        read_jsonlines(data, path="/in/rows.jsonl")
    assert fragment in str(info.value)
    assert info.value.record == 3 and "/in/rows.jsonl" in str(info.value)


def test_labels_on_some_rows_only() -> None:
    with pytest.raises(DataFormatError, match="has no label") as info:
        read_jsonlines(b'{"features": [1], "label": 1}\n{"features": [2]}\n', path="f")
    assert info.value.record == 2
