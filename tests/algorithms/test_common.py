"""The helpers every built-in algorithm shares: ``forgeml.algorithms.common``, the logger's metric
lines and the request plumbing in ``inference``."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from forgeml.algorithms.base import ChannelInput, InferenceError, UnsupportedContentType
from forgeml.algorithms.common import mxnet_ndarray
from forgeml.algorithms.common.artifact import (
    MODEL_FILE,
    load_ndarray_model,
    load_params_zip,
    model_file,
    save_params_zip,
)
from forgeml.algorithms.common.batches import EpochBatches, conform_features, one_label_per_record
from forgeml.algorithms.inference import decode_request, wants_verbose
from forgeml.algorithms.logging import AlgorithmLogger
from forgeml.algorithms.registry import get_algorithm
from forgeml.data.csv_format import write_csv
from forgeml.data.dataset import RecordBatch
from forgeml.errors import ClientError

# -- MXNet NDArray files --------------------------------------------------------------------------


def _file(records: list[bytes], names: list[str]) -> bytes:
    body = struct.pack("<QQQ", 0x112, 0, len(records)) + b"".join(records) + struct.pack("<Q", len(names))
    return body + b"".join(struct.pack("<Q", len(n)) + n.encode() for n in names)


def _data(flag: int, values: np.ndarray) -> bytes:
    return struct.pack("<iii", 1, 0, flag) + values.tobytes()


def test_ndarray_reader_takes_v3_v1_legacy_and_none_records() -> None:
    v3_scalar = struct.pack("<Iii", 0xF993FACA, 0, 0) + _data(0, np.array([2.5], dtype="<f4"))
    v3_vector = struct.pack("<Iiiq", 0xF993FACA, 0, 1, 3) + _data(4, np.array([1, 2, 3], dtype="<i4"))
    v1 = struct.pack("<Iiq", 0xF993FAC8, 1, 2) + _data(1, np.array([0.5, -1.0], dtype="<f8"))
    legacy = struct.pack("<III", 2, 1, 2) + _data(0, np.array([[3.0, 4.0]], dtype="<f4"))
    none = struct.pack("<Iii", 0xF993FAC9, 0, 0)
    loaded = mxnet_ndarray.loads_named(_file([v3_scalar, v3_vector, v1, legacy, none], list("abcde")))
    assert loaded["a"].shape == () and float(loaded["a"]) == 2.5
    assert loaded["b"].dtype == np.int32 and loaded["b"].tolist() == [1, 2, 3]
    assert loaded["c"].dtype == np.float64 and loaded["c"].tolist() == [0.5, -1.0]
    assert loaded["d"].tolist() == [[3.0, 4.0]]
    assert loaded["e"].shape == (0,)


def test_ndarray_lists_dicts_streams_and_errors(tmp_path: Path) -> None:
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array([7], dtype=np.int64)}
    payload = mxnet_ndarray.dumps(arrays)
    stream = io.BytesIO()
    mxnet_ndarray.save(stream, arrays)
    mxnet_ndarray.save(tmp_path / "file", arrays)
    mxnet_ndarray.save(str(tmp_path / "text-path"), arrays)
    assert stream.getvalue() == payload == (tmp_path / "file").read_bytes() == (tmp_path / "text-path").read_bytes()
    # big-endian input is written in MXNet's little-endian layout
    assert mxnet_ndarray.dumps({"w": arrays["w"].astype(">f4"), "n": arrays["n"]}) == payload
    unnamed = mxnet_ndarray.dumps(list(arrays.values()))
    assert isinstance(mxnet_ndarray.loads(unnamed), list)
    with pytest.raises(mxnet_ndarray.NDArrayFormatError, match="without names"):
        mxnet_ndarray.loads_named(unnamed)
    assert mxnet_ndarray.loads_named(mxnet_ndarray.dumps([])) == {}
    with pytest.raises(mxnet_ndarray.NDArrayFormatError, match="0-d"):
        mxnet_ndarray.dumps([np.float32(1.0)])
    with pytest.raises(mxnet_ndarray.NDArrayFormatError, match="dtype bool"):
        mxnet_ndarray.dumps([np.array([True])])
    with pytest.raises(mxnet_ndarray.NDArrayFormatError, match="truncated NDArray file"):
        mxnet_ndarray.loads(payload[:-20])
    with pytest.raises(mxnet_ndarray.NDArrayFormatError, match="not an MXNet NDArray file"):
        mxnet_ndarray.loads(b"\x00" * 32)


# -- artifacts ------------------------------------------------------------------------------------


def test_params_zip_round_trip_keeps_member_order(tmp_path: Path) -> None:
    params = {"arg:v": np.ones((3, 2), dtype=np.float32)}
    path = save_params_zip(tmp_path / MODEL_FILE, params, {"k": 1}, extra={"symbol.json": "{}"})
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["symbol.json", "params", "meta.json"]
    arrays, meta = load_params_zip(model_file(tmp_path))
    assert meta == {"k": 1} and arrays["arg:v"].tolist() == params["arg:v"].tolist()
    with pytest.raises(FileNotFoundError, match="model_algo-1 not found"):
        model_file(tmp_path / "elsewhere")


def test_ndarray_model_errors_name_the_algorithm(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="the K-Means model artifact has no model_algo-1"):
        load_ndarray_model(tmp_path, "K-Means")
    (tmp_path / MODEL_FILE).write_bytes(b"not an ndarray file at all")
    with pytest.raises(ClientError, match="model_algo-1 is not a PCA model"):
        load_ndarray_model(tmp_path, "PCA")


# -- batches --------------------------------------------------------------------------------------


def test_feature_checks_have_one_wording() -> None:
    with pytest.raises(ClientError, match=r"^feature_dim=22 but the train channel has 21 features$"):
        conform_features(np.zeros((2, 21)), 22, "train")
    with pytest.raises(ClientError, match=r"^feature_dim=3 but the test channel has 4 features, see$"):
        conform_features(sp.csr_matrix(np.ones((1, 4))), 3, "test", ", see")
    widened = conform_features(sp.csr_matrix(np.ones((2, 2), dtype=np.float64)), 5, "train")
    assert sp.issparse(widened) and widened.shape == (2, 5) and widened.dtype == np.float32
    dense = conform_features(np.ones((2, 3), dtype=np.float64, order="F"), 3, "train")
    assert isinstance(dense, np.ndarray) and dense.dtype == np.float32 and dense.flags.c_contiguous
    with pytest.raises(ClientError, match="the train channel has NaN or infinite feature values"):
        conform_features(np.array([[1.0, np.inf]]), 2, "train")


def test_label_checks() -> None:
    assert one_label_per_record(np.array([[1.0], [0.0]]), "train").tolist() == [1.0, 0.0]
    with pytest.raises(ClientError, match="2 label values per record; one is expected"):
        one_label_per_record(np.ones((3, 2)), "train")
    with pytest.raises(ClientError, match="the train channel has no labels"):
        one_label_per_record(None, "train")
    with pytest.raises(ClientError, match="^custom$"):
        one_label_per_record(None, "train", "custom")
    with pytest.raises(ClientError, match="NaN or infinite labels"):
        one_label_per_record(np.array([np.nan]), "validation")


def test_file_mode_slices_one_parsed_copy_per_epoch(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    folder.mkdir()
    write_csv(folder / "part-0", np.arange(30, dtype=np.float32).reshape(10, 3))
    channel = ChannelInput("train", folder, "text/csv;label_size=0")
    batches = EpochBatches(channel, 3, 4)
    for _ in range(2):
        sizes = [batch.n_rows for batch in batches.epoch()]
        assert sizes == [4, 4, 2]
    with pytest.raises(ClientError, match=r"feature_dim=4 but the train channel has 3 features \(in text/csv"):
        next(EpochBatches(channel, 4, 4).epoch())


class _StreamedChannel(ChannelInput):
    """A Pipe-mode channel whose every pass yields the given batches."""

    def __init__(self, parts: list[RecordBatch]) -> None:
        super().__init__("train", Path("unused"), "application/x-recordio-protobuf", "Pipe")
        self.parts = parts

    def iter_batches(self, batch_size: int = 1000) -> Iterator[RecordBatch]:
        return iter(self.parts)


def test_pipe_mode_recuts_the_stream_to_the_batch_size() -> None:
    rows = np.arange(20, dtype=np.float32).reshape(10, 2)
    parts = [
        RecordBatch(rows[:3], np.zeros(3)),
        RecordBatch(np.zeros((0, 2), dtype=np.float32)),
        RecordBatch(sp.csr_matrix(rows[3:8]), np.ones(5)),
        RecordBatch(rows[8:], np.ones(2)),
    ]
    batches = list(EpochBatches(_StreamedChannel(parts), 2, 4, need_labels=True).epoch())
    assert [b.n_rows for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b.features for b in batches]), rows)
    assert np.concatenate([b.labels for b in batches if b.labels is not None]).tolist() == [0] * 3 + [1] * 7
    with pytest.raises(ClientError, match="the train channel holds no records"):
        list(EpochBatches(_StreamedChannel([]), 2, 4).epoch())


# -- log lines and hyperparameters ----------------------------------------------------------------


def test_quality_metric_shapes() -> None:
    stream = io.StringIO()
    log = AlgorithmLogger(stream=stream)
    log.quality_metric("train", "msd", 0.5)
    log.quality_metric("train", "msd", 0.5, epoch=0)
    log.quality_metric("train", "loss", 0.25, epoch=1, batch=5)
    log.quality_metric("train", "loss", 0.25, batch=5)
    log.quality_metric("validation", "multiclass_accuracy", 0.75, maximize=True)
    lines = [re.sub(r"^\[[^]]+\] ", "", line) for line in stream.getvalue().splitlines()]
    assert lines == [
        "#quality_metric: host=algo-1, train msd <loss>=0.5",
        "#quality_metric: host=algo-1, epoch=0, train msd <loss>=0.5",
        "#quality_metric: host=algo-1, epoch=1, batch=5 train loss <loss>=0.25",
        "#quality_metric: host=algo-1, batch=5 train loss <loss>=0.25",
        "#quality_metric: host=algo-1, validation multiclass_accuracy <score>=0.75",
    ]


# the container keys each algorithm accepts without effect, with the defaults it echoes
INTERNAL_KEYS = {
    "kmeans": {
        "_kvstore": "auto",
        "_num_gpus": "auto",
        "_num_kv_servers": "1",
        "_log_level": "info",
        "_num_slices": "1",
        "_disable_wait_to_read": "false",
        "_enable_profiler": "false",
    },
    "pca": {"_kvstore": "dist_sync", "_num_gpus": "auto", "_num_kv_servers": "1", "_log_level": "info"},
    "linear-learner": {
        "_kvstore": "auto",
        "_num_gpus": "auto",
        "_num_kv_servers": "auto",
        "_log_level": "info",
        "_enable_profiler": "false",
    },
    "factorization-machines": {"_kvstore": "auto", "_num_gpus": "auto", "_num_kv_servers": "auto", "_log_level": "info"},
    "randomcutforest": {
        "_kvstore": "dist_async",
        "_num_gpus": "auto",
        "_num_kv_servers": "auto",
        "_log_level": "info",
        "_ftp_port": "8999",
    },
    "ipinsights": {"_kvstore": "auto", "_num_gpus": "auto", "_num_kv_servers": "auto", "_log_level": "info"},
    "knn": {},
    "xgboost": {},
}


@pytest.mark.parametrize("name", sorted(INTERNAL_KEYS))
def test_internal_keys_per_algorithm(name: str) -> None:
    schema = get_algorithm(name).hyperparameters
    internal = {p.name: p.default for p in schema.parameters if p.name.startswith("_") and p.kind == "str"}
    internal.pop("_tuning_objective_metric", None)  # XGBoost reads it
    assert internal == INTERNAL_KEYS[name]


# -- request plumbing -----------------------------------------------------------------------------


def test_decode_request_checks_accept_before_the_body() -> None:
    kmeans = get_algorithm("kmeans")
    with pytest.raises(UnsupportedContentType, match="Accept type 'text/html'"):
        decode_request(kmeans, b"not csv", "text/csv", "text/html")
    with pytest.raises(UnsupportedContentType, match="Content type 'text/libsvm'"):
        decode_request(kmeans, b"1 1:2", "text/libsvm", "application/json")
    with pytest.raises(InferenceError, match="the model expects 3"):
        decode_request(kmeans, b"1,2\n", "text/csv", None, n_features=3)
    features, accept = decode_request(kmeans, b"1,2\n3,4\n", "text/csv", "*/*")
    assert accept == "application/json" and features.tolist() == [[1, 2], [3, 4]]


def test_verbose_accept_parameter() -> None:
    assert wants_verbose("application/json; verbose=true", "application/json")
    assert wants_verbose("application/jsonlines;verbose=True", "application/jsonlines")
    assert wants_verbose("text/csv, application/json; verbose=1", "application/json")
    assert not wants_verbose("application/json", "application/json")
    assert not wants_verbose("application/jsonlines; verbose=true", "application/json")
    assert not wants_verbose(None, "application/json")
