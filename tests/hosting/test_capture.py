"""Data capture: SageMaker's file layout and JSON lines, sampling, hour partitions, no lost records on
close or under concurrent adds, settings updates, the DescribeEndpoint summary and reading records back."""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from forgeml.hosting.capture import CaptureSettings, CaptureWriter, read_capture_records
from forgeml.service.platform import Platform
from forgeml.storage.artifacts import ArtifactStore

DESTINATION = "s3://capture-bucket/model-monitor/data-capture"
ENDPOINT = "churn-endpoint"
NAME_PATTERN = re.compile(r"\d{2}-\d{2}-\d{3}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.jsonl")


def at(year: int, month: int, day: int, hour: int, minute: int, second: int, millis: int = 0) -> float:
    """Epoch seconds of a UTC moment."""
    return datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=UTC).timestamp()


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": DESTINATION,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
    }
    base.update(overrides)
    return base


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def artifacts(forgeml_home: Path) -> ArtifactStore:
    return Platform.get().artifacts


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(at(2024, 3, 5, 17, 32, 18, millis=648))


@pytest.fixture
def make_writer(artifacts: ArtifactStore, clock: FakeClock) -> Iterator[Any]:
    writers: list[CaptureWriter] = []

    def make(settings: CaptureSettings | None = None, **kwargs: Any) -> CaptureWriter:
        kwargs.setdefault("flush_interval", 3600.0)  # tests flush by hand unless they ask otherwise
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("rng", random.Random(7))
        writer = CaptureWriter(artifacts, settings or CaptureSettings.from_config(config()), ENDPOINT, **kwargs)
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        writer.close()


def stored_keys(artifacts: ArtifactStore, prefix: str = DESTINATION) -> list[str]:
    return [obj.uri[len(prefix) + 1:] for obj in artifacts.list_objects(prefix + "/")]


def lines_of(artifacts: ArtifactStore, key: str) -> list[str]:
    return artifacts.get_bytes(f"{DESTINATION}/{key}").decode("utf-8").splitlines()


# -- settings -------------------------------------------------------------------------------------
def test_settings_from_config_combine_options_and_default_enable_capture() -> None:
    raw = config(CaptureContentTypeHeader={"CsvContentTypes": ["Text/CSV"]}, KmsKeyId="alias/capture")
    del raw["EnableCapture"]
    settings = CaptureSettings.from_config(raw)
    assert settings == CaptureSettings(enabled=True, sampling_percentage=100, destination_uri=DESTINATION,
                                       capture_input=True, capture_output=True, csv_content_types=("text/csv",),
                                       json_content_types=(), kms_key_id="alias/capture")
    only_input = CaptureSettings.from_config(config(CaptureOptions=[{"CaptureMode": "Input"}]))
    assert (only_input.capture_input, only_input.capture_output) == (True, False)
    both = CaptureSettings.from_config(config(CaptureOptions=[{"CaptureMode": "InputAndOutput"}]))
    assert (both.capture_input, both.capture_output) == (True, True)
    assert CaptureSettings.from_config(config(EnableCapture=False)).enabled is False
    with pytest.raises(ValueError, match="Unknown CaptureMode 'Both'"):
        CaptureSettings.from_config(config(CaptureOptions=[{"CaptureMode": "Both"}]))


def test_encoding_matches_the_media_type_ignoring_parameters_and_case() -> None:
    settings = CaptureSettings.from_config(config())
    assert settings.encoding_for("text/csv; charset=utf-8") == "CSV"
    assert settings.encoding_for("TEXT/CSV") == "CSV"
    assert settings.encoding_for("application/json;charset=UTF-8") == "JSON"
    assert settings.encoding_for("application/jsonlines") == "BASE64"
    assert settings.encoding_for(None) == "BASE64"


# -- layout and records ---------------------------------------------------------------------------
def test_file_layout_is_endpoint_variant_and_utc_hour_with_time_uuid_names(make_writer: Any,
                                                                          artifacts: ArtifactStore) -> None:
    writer = make_writer()
    writer.add("AllTraffic", b"1,2\n", "text/csv", b"0.5", "text/csv")
    writer.add("AllTraffic", b"3,4\n", "text/csv", b"0.7", "text/csv", when=at(2024, 3, 5, 17, 40, 1))
    writer.add("Challenger", b"5,6\n", "text/csv", b"0.9", "text/csv")
    assert writer.flush() == 3
    keys = stored_keys(artifacts)
    assert len(keys) == 2
    by_variant = {key.split("/")[1]: key for key in keys}
    for variant, key in by_variant.items():
        folder, name = key.rsplit("/", 1)
        assert folder == f"{ENDPOINT}/{variant}/2024/03/05/17"
        assert NAME_PATTERN.fullmatch(name), name
        assert name.startswith("32-18-648-")  # the group's first record
    assert len(lines_of(artifacts, by_variant["AllTraffic"])) == 2
    assert writer.flush() == 0
    assert len(stored_keys(artifacts)) == 2  # nothing new to write: no empty objects


def test_every_field_of_a_csv_record(make_writer: Any, artifacts: ArtifactStore) -> None:
    writer = make_writer()
    writer.add("AllTraffic", b"69,0,153.7\n", "text/csv", b"0.0254181120544672", "text/csv; charset=utf-8",
               inference_id="request-17")
    writer.flush()
    (key,) = stored_keys(artifacts)
    (line,) = lines_of(artifacts, key)
    assert line.startswith('{"captureData": ')
    record = json.loads(line)
    event_id = record["eventMetadata"].pop("eventId")
    assert uuid.UUID(event_id).version == 4
    assert record == {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "69,0,153.7\n",
                              "encoding": "CSV"},
            "endpointOutput": {"observedContentType": "text/csv; charset=utf-8", "mode": "OUTPUT",
                               "data": "0.0254181120544672", "encoding": "CSV"},
        },
        "eventMetadata": {"inferenceId": "request-17", "inferenceTime": "2024-03-05T17:32:18Z"},
        "eventVersion": "0",
    }


def test_json_payload_is_kept_as_text_and_inference_id_only_when_given(make_writer: Any,
                                                                      artifacts: ArtifactStore) -> None:
    writer = make_writer()
    request = '{"instances": [{"features": [1.5, 2]}], "note": "café"}'
    writer.add("AllTraffic", request.encode("utf-8"), "application/json", b'{"predictions": [{"score": 0.8}]}',
               "application/json")
    writer.flush()
    (record,) = read_capture_records(artifacts, DESTINATION, ENDPOINT)
    assert record["captureData"]["endpointInput"] == {"observedContentType": "application/json", "mode": "INPUT",
                                                      "data": request, "encoding": "JSON"}
    assert record["captureData"]["endpointOutput"]["data"] == '{"predictions": [{"score": 0.8}]}'
    assert set(record["eventMetadata"]) == {"eventId", "inferenceTime"}


def test_other_payloads_are_base64_and_round_trip(make_writer: Any, artifacts: ArtifactStore) -> None:
    writer = make_writer()
    image = bytes(range(256)) * 3
    writer.add("AllTraffic", image, "application/x-image", b"\x00\xffscores", None)
    writer.add("AllTraffic", b"\xff\xfe not utf-8", "text/csv", b"1", "text/csv", when=writer_time(1))
    writer.flush()
    first, second = read_capture_records(artifacts, DESTINATION, ENDPOINT)
    request, response = first["captureData"]["endpointInput"], first["captureData"]["endpointOutput"]
    assert (request["encoding"], request["observedContentType"]) == ("BASE64", "application/x-image")
    assert base64.b64decode(request["data"]) == image
    assert response == {"observedContentType": "application/octet-stream", "mode": "OUTPUT",
                        "data": base64.b64encode(b"\x00\xffscores").decode("ascii"), "encoding": "BASE64"}
    declared_csv = second["captureData"]["endpointInput"]
    assert declared_csv["encoding"] == "BASE64"  # claims CSV but is not text: kept intact
    assert base64.b64decode(declared_csv["data"]) == b"\xff\xfe not utf-8"


def writer_time(seconds_later: float) -> float:
    return at(2024, 3, 5, 17, 32, 18, millis=648) + seconds_later


def test_input_only_output_only_and_failed_requests(make_writer: Any, artifacts: ArtifactStore) -> None:
    input_only = make_writer(CaptureSettings.from_config(config(CaptureOptions=[{"CaptureMode": "Input"}],
                                                                DestinationS3Uri=DESTINATION + "/in")))
    output_only = make_writer(CaptureSettings.from_config(config(CaptureOptions=[{"CaptureMode": "Output"}],
                                                                 DestinationS3Uri=DESTINATION + "/out")))
    both = make_writer(CaptureSettings.from_config(config(DestinationS3Uri=DESTINATION + "/both")))
    for writer in (input_only, output_only, both):
        writer.add("AllTraffic", b"1,2", "text/csv", b"0.5", "text/csv")
        writer.add("AllTraffic", b"3,4", "text/csv", None, None, when=writer_time(1))  # the model failed
    assert (input_only.flush(), output_only.flush(), both.flush()) == (2, 1, 2)

    def sides(folder: str) -> list[list[str]]:
        records = read_capture_records(artifacts, f"{DESTINATION}/{folder}", ENDPOINT)
        return [sorted(record["captureData"]) for record in records]

    assert sides("in") == [["endpointInput"], ["endpointInput"]]
    assert sides("out") == [["endpointOutput"]]
    assert sides("both") == [["endpointInput", "endpointOutput"], ["endpointInput"]]


def test_records_are_partitioned_by_utc_hour(make_writer: Any, artifacts: ArtifactStore) -> None:
    writer = make_writer()
    writer.add("AllTraffic", b"a", "text/csv", b"1", "text/csv", when=at(2024, 12, 31, 23, 59, 59, millis=500))
    writer.add("AllTraffic", b"b", "text/csv", b"2", "text/csv", when=at(2025, 1, 1, 0, 0, 0, millis=200))
    writer.add("AllTraffic", b"c", "text/csv", b"3", "text/csv", when=at(2025, 1, 1, 0, 14, 7, millis=9))
    assert writer.flush() == 3
    folders = sorted(key.rsplit("/", 1) for key in stored_keys(artifacts))
    assert [folder for folder, _ in folders] == [f"{ENDPOINT}/AllTraffic/2024/12/31/23",
                                                 f"{ENDPOINT}/AllTraffic/2025/01/01/00"]
    assert folders[0][1].startswith("59-59-500-")
    assert folders[1][1].startswith("00-00-200-")
    times = [r["eventMetadata"]["inferenceTime"] for r in read_capture_records(artifacts, DESTINATION, ENDPOINT)]
    assert times == ["2024-12-31T23:59:59Z", "2025-01-01T00:00:00Z", "2025-01-01T00:14:07Z"]


# -- sampling -------------------------------------------------------------------------------------
def test_sampling_percentages(make_writer: Any) -> None:
    never = make_writer(CaptureSettings.from_config(config(InitialSamplingPercentage=0)))
    always = make_writer(CaptureSettings.from_config(config(InitialSamplingPercentage=100)))
    some = make_writer(CaptureSettings.from_config(config(InitialSamplingPercentage=30)), rng=random.Random(11))
    disabled = make_writer(CaptureSettings.from_config(config(EnableCapture=False)))
    assert not any(never.sampled() for _ in range(2000))
    assert all(always.sampled() for _ in range(2000))
    assert not any(disabled.sampled() for _ in range(2000))
    hits = sum(some.sampled() for _ in range(10_000))
    assert 2700 < hits < 3300


def test_disabled_capture_ignores_adds(make_writer: Any, artifacts: ArtifactStore) -> None:
    writer = make_writer(CaptureSettings.from_config(config(EnableCapture=False)))
    writer.add("AllTraffic", b"1", "text/csv", b"1", "text/csv")
    assert writer.pending() == 0
    assert writer.flush() == 0
    assert stored_keys(artifacts) == []


# -- flushing -------------------------------------------------------------------------------------
def test_close_flushes_every_record_and_is_idempotent(make_writer: Any, artifacts: ArtifactStore,
                                                      clock: FakeClock) -> None:
    writer = make_writer()
    for index in range(1000):
        clock.now += 0.01
        writer.add("AllTraffic", f"{index}".encode(), "text/csv", b"0", "text/csv", inference_id=f"id-{index}")
    writer.close()
    records = read_capture_records(artifacts, DESTINATION, ENDPOINT)
    assert [r["eventMetadata"]["inferenceId"] for r in records] == [f"id-{index}" for index in range(1000)]
    keys = stored_keys(artifacts)
    writer.close()
    assert stored_keys(artifacts) == keys
    assert writer.summary()["CaptureStatus"] == "Stopped"


def test_background_thread_flushes_on_its_interval(make_writer: Any, artifacts: ArtifactStore) -> None:
    writer = make_writer(flush_interval=0.05)
    writer.add("AllTraffic", b"1", "text/csv", b"1", "text/csv")
    deadline = time.monotonic() + 10
    while not stored_keys(artifacts) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(read_capture_records(artifacts, DESTINATION, ENDPOINT)) == 1
    assert writer.pending() == 0


def test_concurrent_adds_while_flushing_lose_nothing(make_writer: Any, artifacts: ArtifactStore) -> None:
    writer = make_writer(flush_interval=0.01)
    per_thread, threads = 500, 4
    start = threading.Barrier(threads + 1)

    def serve(thread: int) -> None:
        start.wait(timeout=10)
        for index in range(per_thread):
            writer.add(f"Variant{thread % 2}", b"x", "text/csv", b"y", "text/csv", inference_id=f"{thread}-{index}")

    workers = [threading.Thread(target=serve, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    start.wait(timeout=10)
    flushed = 0
    while any(worker.is_alive() for worker in workers):
        flushed += writer.flush()
    for worker in workers:
        worker.join(timeout=10)
    writer.close()
    records = read_capture_records(artifacts, DESTINATION, ENDPOINT)
    ids = [r["eventMetadata"]["inferenceId"] for r in records]
    assert sorted(ids) == sorted(f"{t}-{i}" for t in range(threads) for i in range(per_thread))
    assert len({r["eventMetadata"]["eventId"] for r in records}) == threads * per_thread
    assert flushed <= threads * per_thread


def test_write_errors_keep_records_for_the_next_flush(make_writer: Any, artifacts: ArtifactStore,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    writer = make_writer()
    blocker = artifacts.local_path(f"{DESTINATION}/{ENDPOINT}")
    assert blocker is not None
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the endpoint's folder must go")
    writer.add("AllTraffic", b"1", "text/csv", b"1", "text/csv")
    writer.add("AllTraffic", b"2", "text/csv", b"2", "text/csv")
    with caplog.at_level(logging.WARNING, logger="forgeml.hosting.capture"):
        assert writer.flush() == 0
    assert "could not write 2 records of variant AllTraffic" in caplog.text
    assert writer.pending() == 2
    blocker.unlink()
    assert writer.flush() == 2
    assert [r["captureData"]["endpointInput"]["data"]
            for r in read_capture_records(artifacts, DESTINATION, ENDPOINT)] == ["1", "2"]


def test_buffer_is_bounded_dropping_the_oldest(make_writer: Any, artifacts: ArtifactStore,
                                               caplog: pytest.LogCaptureFixture) -> None:
    writer = make_writer(max_buffered=3)
    for index in range(5):
        writer.add("AllTraffic", str(index).encode(), "text/csv", b"0", "text/csv", when=writer_time(index))
    assert writer.pending() == 3
    with caplog.at_level(logging.WARNING, logger="forgeml.hosting.capture"):
        assert writer.flush() == 3
    assert "dropped the 2 oldest records" in caplog.text
    assert [r["captureData"]["endpointInput"]["data"]
            for r in read_capture_records(artifacts, DESTINATION, ENDPOINT)] == ["2", "3", "4"]


# -- updates and summary --------------------------------------------------------------------------
def test_update_changes_sampling_and_destination_for_new_records(make_writer: Any,
                                                                 artifacts: ArtifactStore) -> None:
    writer = make_writer()
    writer.add("AllTraffic", b"before", "text/csv", b"1", "text/csv")
    moved = DESTINATION + "-v2"
    writer.update(CaptureSettings.from_config(config(DestinationS3Uri=moved, InitialSamplingPercentage=0,
                                                     CaptureOptions=[{"CaptureMode": "Input"}])))
    assert not any(writer.sampled() for _ in range(500))
    writer.add("AllTraffic", b"after", "text/csv", b"2", "text/csv")
    assert writer.flush() == 2
    (old,) = read_capture_records(artifacts, DESTINATION, ENDPOINT)
    (new,) = read_capture_records(artifacts, moved, ENDPOINT)
    assert sorted(old["captureData"]) == ["endpointInput", "endpointOutput"]
    assert old["captureData"]["endpointInput"]["data"] == "before"
    assert sorted(new["captureData"]) == ["endpointInput"]
    assert new["captureData"]["endpointInput"]["data"] == "after"
    assert writer.summary() == {"EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 0,
                                "DestinationS3Uri": moved}


def test_summary_matches_describe_endpoint(make_writer: Any) -> None:
    writer = make_writer(CaptureSettings.from_config(config(InitialSamplingPercentage=20, KmsKeyId="key-1")))
    assert writer.summary() == {"EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 20,
                                "DestinationS3Uri": DESTINATION, "KmsKeyId": "key-1"}
    writer.update(CaptureSettings.from_config(config(EnableCapture=False, InitialSamplingPercentage=20)))
    assert writer.summary() == {"EnableCapture": False, "CaptureStatus": "Stopped", "CurrentSamplingPercentage": 20,
                                "DestinationS3Uri": DESTINATION}


# -- reading back ---------------------------------------------------------------------------------
def test_read_capture_records_orders_by_time_and_filters(make_writer: Any, artifacts: ArtifactStore) -> None:
    writer = make_writer()
    other = CaptureWriter(artifacts, CaptureSettings.from_config(config()), ENDPOINT + "-2", flush_interval=3600)
    writer.add("B", b"b-late", "text/csv", b"1", "text/csv", when=writer_time(30))
    writer.add("A", b"a-early", "text/csv", b"1", "text/csv", when=writer_time(0))
    writer.flush()
    writer.add("A", b"a-middle", "text/csv", b"1", "text/csv", when=writer_time(10))
    writer.add("A", b"a-last", "text/csv", b"1", "text/csv", when=writer_time(3700))
    writer.flush()
    other.add("A", b"other-endpoint", "text/csv", b"1", "text/csv", when=writer_time(5))
    other.close()

    def inputs(variant: str | None = None) -> list[str]:
        records = read_capture_records(artifacts, DESTINATION + "/", ENDPOINT, variant)
        return [r["captureData"]["endpointInput"]["data"] for r in records]

    assert inputs() == ["a-early", "a-middle", "b-late", "a-last"]
    assert inputs("A") == ["a-early", "a-middle", "a-last"]
    assert inputs("B") == ["b-late"]
    assert inputs("C") == []
    assert read_capture_records(artifacts, DESTINATION, "missing-endpoint") == []
