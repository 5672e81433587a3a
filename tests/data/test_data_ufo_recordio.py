"""Real SDK-written RecordIO-protobuf (the UFO course data): exact reads and byte-identical rewrites."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import forgeml.data.recordio_protobuf as rp
from forgeml.data import (
    iter_channel,
    iter_recordio_protobuf,
    read_channel,
    read_recordio_protobuf,
    read_records,
    write_numpy_to_dense_tensor,
)
from forgeml.data.record_fastpath import decode_uniform_dense

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
UFO = SHARED / "data" / "ufo"
TRAIN = UFO / "ufo_sightings_train_recordIO_protobuf.data"
VALIDATION = UFO / "ufo_sightings_validation_recordIO_protobuf.data"

pytestmark = pytest.mark.skipif(not TRAIN.is_file(), reason="shared UFO data (../shared/data/ufo) is not available")


def test_train_file_reads_exactly() -> None:
    batch = read_recordio_protobuf(TRAIN)
    assert batch.features.shape == (14430, 22)
    assert batch.features.dtype == np.float32 and batch.labels is not None
    assert batch.labels.shape == (14430,)
    values, counts = np.unique(batch.labels, return_counts=True)
    assert values.tolist() == [0.0, 1.0, 2.0]
    assert counts.tolist() == [2629, 10297, 1504]
    np.testing.assert_array_equal(batch.features[0, :2], [84.0, 7.0])
    np.testing.assert_allclose(batch.features[0, 2:4], [37.558613, -122.27], rtol=1e-6)
    # every row one-hot encodes shape/weather columns: the trailing 18 features are 0/1
    assert set(np.unique(batch.features[:, 4:])) == {0.0, 1.0}


def test_fast_path_is_taken_and_equals_the_general_path() -> None:
    data = np.fromfile(TRAIN, dtype=np.uint8)
    assert decode_uniform_dense(data) is not None
    fast = read_recordio_protobuf(TRAIN)
    slow = read_recordio_protobuf(TRAIN, fast=False)
    np.testing.assert_array_equal(fast.features, slow.features)
    np.testing.assert_array_equal(fast.labels, slow.labels)
    records = read_records(TRAIN)
    assert len(records) == 14430
    np.testing.assert_array_equal(list(records[-1].features["values"].float32_tensor.values), fast.features[-1])
    assert records[-1].label["values"].float32_tensor.values[0] == fast.labels[-1]  # type: ignore[index]


def test_validation_file() -> None:
    fast = read_recordio_protobuf(VALIDATION)
    slow = read_recordio_protobuf(VALIDATION, fast=False)
    assert fast.features.shape == (1773, 22)
    np.testing.assert_array_equal(fast.features, slow.features)
    assert fast.labels is not None
    assert np.unique(fast.labels, return_counts=True)[1].tolist() == [330, 1268, 175]


@pytest.mark.parametrize("vectorised", [True, False])
def test_rewrite_is_byte_identical(monkeypatch: pytest.MonkeyPatch, vectorised: bool) -> None:
    if not vectorised:
        monkeypatch.setattr(rp, "_write_dense_vectorised", lambda *args: False)
    batch = read_recordio_protobuf(TRAIN)
    out = io.BytesIO()
    write_numpy_to_dense_tensor(out, batch.features, batch.labels)
    assert out.getvalue() == TRAIN.read_bytes()


def test_streaming_reads_the_same_rows() -> None:
    whole = read_recordio_protobuf(TRAIN)
    with open(TRAIN, "rb") as handle:
        batches = list(iter_recordio_protobuf(handle, batch_size=1000, chunk_size=50_000))
    assert [b.n_rows for b in batches] == [1000] * 14 + [430]
    np.testing.assert_array_equal(np.vstack([b.features for b in batches]), whole.features)


def test_as_a_channel() -> None:
    batch = read_channel(TRAIN, "application/x-recordio-protobuf", channel="train")
    assert batch.n_rows == 14430
    rows = sum(b.n_rows for b in iter_channel(TRAIN, "recordio-protobuf", batch_size=5000))
    assert rows == 14430
