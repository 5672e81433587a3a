"""Cutting objects into records, packing requests, and cutting answers back (pure functions)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from forgeml.config import Config
from forgeml.data.recordio import encode_recordio
from forgeml.errors import ClientError
from forgeml.storage import ArtifactStore
from forgeml.transform.records import (
    Batch,
    RecordError,
    line_block,
    make_batches,
    split_object,
    split_response,
)
from forgeml.transform.runner import (
    InputObject,
    list_inputs,
    relative_name,
    resolve_settings,
    worker_environment,
)

URI = "s3://bucket/in/data"


def tfrecord(payload: bytes) -> bytes:
    return struct.pack("<QI", len(payload), 0) + payload + b"\0\0\0\0"


def test_line_split_keeps_csv_records_whole_and_drops_blank_lines() -> None:
    data = b'1,"a\nb",2\r\n\n3,"say ""x""",4\n5,6,7'
    assert split_object(data, "Line", "text/csv", URI) == [b'1,"a\nb",2', b'3,"say ""x""",4', b"5,6,7"]
    assert split_object(b'{"a": 1}\n\n{"a": 2}\n', "Line", "application/jsonlines", URI) == [b'{"a": 1}', b'{"a": 2}']
    assert split_object(b"x\ny", "Line", None, URI) == [b"x", b"y"]
    assert split_object(b"1,2\n3,4\n", "None", "text/csv", URI) == [b"1,2\n3,4\n"]
    assert split_object(b"", "None", "text/csv", URI) == []


def test_recordio_split_keeps_frames_and_strips_padding_for_single_records() -> None:
    frames = [encode_recordio(b"abcde"), encode_recordio(b"12345678"), encode_recordio(b"z")]
    data = b"".join(frames)
    assert split_object(data, "RecordIO", "application/x-recordio-protobuf", URI) == frames
    stripped = split_object(data, "RecordIO", None, URI, strip_padding=True)
    assert stripped == [frames[0][:13], frames[1], frames[2][:9]]
    multi_part = encode_recordio(b"ab" + struct.pack("<I", 0xCED7230A) + b"cd", split_magic=True)
    assert split_object(multi_part + frames[2], "RecordIO", None, URI) == [multi_part, frames[2]]


def test_broken_frames_name_the_record() -> None:
    good = encode_recordio(b"abcd")
    with pytest.raises(RecordError) as caught:
        split_object(good + b"\x01\x02\x03\x04\x05\x06\x07\x08", "RecordIO", None, URI)
    assert str(caught.value) == ("Cannot split s3://bucket/in/data, record 2: invalid RecordIO magic number "
                                 "0x04030201 at byte offset 12 (expected 0xced7230a)")
    with pytest.raises(RecordError, match="record 1: truncated record: the header at byte offset 0 announces 4 "
                                          "payload bytes but only 2 remain"):
        split_object(good[:10], "RecordIO", None, URI)
    records = [tfrecord(b"first"), tfrecord(b"")]
    assert split_object(b"".join(records), "TFRecord", None, URI) == records
    with pytest.raises(RecordError, match="record 2: truncated record: the header at byte offset 21 announces 9"):
        split_object(records[0] + tfrecord(b"123456789")[:-3], "TFRecord", None, URI)


def test_batches_pack_whole_records_within_the_payload_limit() -> None:
    records = [b"a" * 4, b"b" * 4, b"c" * 4, b"d" * 9]
    assert make_batches(records, multi_record=False, max_bytes=10, separator=b"\n", uri=URI) == [
        Batch(0, 1, b"aaaa"), Batch(1, 1, b"bbbb"), Batch(2, 1, b"cccc"), Batch(3, 1, b"d" * 9)]
    assert make_batches(records, multi_record=True, max_bytes=9, separator=b"\n", uri=URI) == [
        Batch(0, 2, b"aaaa\nbbbb"), Batch(2, 1, b"cccc"), Batch(3, 1, b"d" * 9)]
    assert make_batches(records[:3], multi_record=True, max_bytes=12, separator=b"", uri=URI) == [
        Batch(0, 3, b"aaaabbbbcccc")]
    assert make_batches([], multi_record=True, max_bytes=12, separator=b"", uri=URI) == []
    with pytest.raises(RecordError) as caught:
        make_batches(records, multi_record=True, max_bytes=8, separator=b"\n", uri=URI)
    assert str(caught.value) == ("Cannot send s3://bucket/in/data, record 4: the record is 9 bytes, over "
                                 "MaxPayloadInMB (0 MB = 8 bytes)")


@pytest.mark.parametrize(
    ("body", "content_type", "count", "expected"),
    [
        (b"0.5,1\n0.25,0\n", "text/csv", 2, [b"0.5,1", b"0.25,0"]),
        (b'"a\nb",1\n2,2\n', "text/csv; charset=utf-8", 2, [b'"a\nb",1', b"2,2"]),
        (b'{"score": 1}\n{"score": 2}\n', "application/jsonlines", 2, [b'{"score": 1}', b'{"score": 2}']),
        (json.dumps({"predictions": [{"score": 0.5}, {"score": 0.25}]}).encode(), "application/json", 2,
         [b'{"predictions": [{"score": 0.5}]}', b'{"predictions": [{"score": 0.25}]}']),
        (b'{"projections": [{"projection": [1, 2]}, {"projection": [3, 4]}]}', "application/json", 2,
         [b'{"projections": [{"projection": [1, 2]}]}', b'{"projections": [{"projection": [3, 4]}]}']),
        (b"[0.5, 0.25]", "application/json", 2, [b"[0.5]", b"[0.25]"]),
        (b"0.5\n", "text/csv", 1, [b"0.5"]),
        (b"anything\nat all\n", "text/plain", 1, [b"anything\nat all"]),
        (b"\x00\n", "application/octet-stream", 1, [b"\x00\n"]),
        (b"0.5\n", "text/csv", 2, None),
        (b'{"predictions": [1], "extra": 2}', "application/json", 1, [b'{"predictions": [1], "extra": 2}']),
        (b'{"predictions": [1, 2], "extra": 2}', "application/json", 2, None),
        (b"not json", "application/json", 2, None),
        (b"opaque", "application/octet-stream", 2, None),
    ],
)
def test_answers_split_into_one_output_per_record(body: bytes, content_type: str, count: int,
                                                  expected: list[bytes] | None) -> None:
    assert split_response(body, content_type, count) == expected


def test_recordio_answers_split_by_frame() -> None:
    frames = [encode_recordio(b"one"), encode_recordio(b"two")]
    assert split_response(b"".join(frames), "application/x-recordio-protobuf", 2) == frames
    assert split_response(b"".join(frames), "application/x-recordio-protobuf", 3) is None


def test_line_block_reuses_plain_line_answers() -> None:
    assert line_block(b"1\n2\n3\n", "text/csv", 3) == b"1\n2\n3\n"
    assert line_block(b"1\n2\n3", "text/csv", 3) is None
    assert line_block(b"1\n\n3\n", "text/csv", 3) is None
    assert line_block(b'"1"\n2\n', "text/csv", 2) is None
    assert line_block(b'{"a": 1}\n', "application/jsonlines", 1) == b'{"a": 1}\n'
    assert line_block(b'{"a": 1}\n', "application/json", 1) is None


@pytest.mark.parametrize(
    ("prefix", "uri", "expected"),
    [
        ("s3://b/in/", "s3://b/in/sub/a.csv", "sub/a.csv"),
        ("s3://b/in", "s3://b/in/sub/a.csv", "sub/a.csv"),
        ("s3://b/in/part", "s3://b/in/part-1.csv", "part-1.csv"),
        ("s3://b/in/a.csv", "s3://b/in/a.csv", "a.csv"),
        ("s3://b", "s3://b/x/a.csv", "x/a.csv"),
        ("file:///data/in/", "file:///data/in/a.csv", "a.csv"),
    ],
)
def test_output_names_keep_the_path_under_the_input_prefix(prefix: str, uri: str, expected: str) -> None:
    assert relative_name(prefix, uri) == expected


def test_inputs_from_a_prefix_or_a_manifest(tmp_path: Path) -> None:
    store = ArtifactStore(Config.from_env(tmp_path))
    for key in ("in/a.csv", "in/sub/b.csv", "other/c.csv"):
        store.put_bytes(b"1\n", f"s3://bkt/{key}")
    assert list_inputs(store, "S3Prefix", "s3://bkt/in/") == [
        InputObject("s3://bkt/in/a.csv", "a.csv"), InputObject("s3://bkt/in/sub/b.csv", "sub/b.csv")]
    store.put_bytes(json.dumps([{"prefix": "s3://bkt/"}, "in/a.csv", "other/c.csv"]).encode(), "s3://bkt/m.json")
    assert list_inputs(store, "ManifestFile", "s3://bkt/m.json") == [
        InputObject("s3://bkt/in/a.csv", "in/a.csv"), InputObject("s3://bkt/other/c.csv", "other/c.csv")]
    with pytest.raises(ClientError, match=r"No input objects were found under s3://bkt/nothing/"):
        list_inputs(store, "S3Prefix", "s3://bkt/nothing/")
    store.put_bytes(b'["in/a.csv"]', "s3://bkt/bad.json")
    with pytest.raises(ClientError, match=r"The manifest file s3://bkt/bad.json must be a JSON array"):
        list_inputs(store, "ManifestFile", "s3://bkt/bad.json")
    with pytest.raises(ClientError, match=r"The manifest file s3://bkt/none.json does not exist"):
        list_inputs(store, "ManifestFile", "s3://bkt/none.json")


def test_settings_come_from_the_request_then_the_container_then_defaults() -> None:
    assert resolve_settings({}, {}) == (1, "MultiRecord", 6)
    suggested = {"MaxConcurrentTransforms": 8, "BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 3}
    assert resolve_settings({}, suggested) == (8, "SingleRecord", 3)
    request = {"MaxConcurrentTransforms": 2, "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 10}
    assert resolve_settings(request, suggested) == (2, "MultiRecord", 10)
    assert resolve_settings({"MaxConcurrentTransforms": 0}, {"MaxConcurrentTransforms": "x"}) == (1, "MultiRecord", 6)


def test_worker_environment_passes_only_the_settings_given() -> None:
    assert worker_environment({}) == {"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "6"}
    assert worker_environment({"Environment": {"A": "1"}, "BatchStrategy": "SingleRecord", "MaxPayloadInMB": 2,
                               "MaxConcurrentTransforms": 4}) == {
        "A": "1", "SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "4"}


# Per-record output shapes of the first-party algorithms (all answer through encode_response):
# Linear Learner, k-means, k-NN, FM, IP Insights and XGBoost under "predictions", PCA under
# "projections", Random Cut Forest under "scores".
BUILTIN_ROWS = {
    "predictions": [{"score": 0.75, "predicted_label": 1}, {"score": 0.125, "predicted_label": 0},
                    {"score": 0.5, "predicted_label": 1}],
    "projections": [{"projection": [0.5, -1.25]}, {"projection": [2.0, 0.0]}, {"projection": [1.5, 3.5]}],
    "scores": [{"score": 1.5}, {"score": 0.25}, {"score": 3.0}],
}


@pytest.mark.parametrize("top_key", sorted(BUILTIN_ROWS))
@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", "text/csv",
                                    "application/x-recordio-protobuf"])
def test_builtin_answers_split_into_what_single_records_get(top_key: str, accept: str) -> None:
    from forgeml.algorithms.inference import encode_response

    rows = BUILTIN_ROWS[top_key]
    batch, answer_type = encode_response(rows, accept, top_key=top_key)
    singles = [encode_response([row], accept, top_key=top_key)[0] for row in rows]
    text = accept != "application/x-recordio-protobuf"
    assert split_response(batch, answer_type, len(rows)) == [s[:-1] if text and s.endswith(b"\n") else s
                                                             for s in singles]
