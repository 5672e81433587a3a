"""Endpoint data capture: sampled requests and responses stored as SageMaker's JSON Lines files.

The router calls ``CaptureWriter.add`` on its event loop for every sampled request; that only appends a
tuple to a buffer, so serving never waits on formatting or storage. A daemon thread turns the buffer into
JSON lines every ``flush_interval`` seconds and writes one new object per variant and UTC hour under
``<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/<MM>-<SS>-<mmm>-<uuid4>.jsonl``. A new
object per flush (never an append) is what works on S3, whose objects are immutable, and on the local
folder alike. Model monitoring reads the files back with ``read_capture_records``.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import math
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from forgeml.storage.artifacts import ArtifactStore

log = logging.getLogger("forgeml.hosting.capture")

MAX_BUFFERED = 100_000
EVENT_VERSION = "0"
# HTTP's meaning of a body sent without a Content-Type header (RFC 9110 §8.3).
UNDECLARED_CONTENT_TYPE = "application/octet-stream"
# CaptureMode -> (capture input, capture output); the SDK's REQUEST/RESPONSE spellings map the same way.
CAPTURE_MODES: dict[str, tuple[bool, bool]] = {
    "Input": (True, False),
    "Output": (False, True),
    "InputAndOutput": (True, True),
    "REQUEST": (True, False),
    "RESPONSE": (False, True),
}

_ENCODER = json.JSONEncoder(ensure_ascii=False)  # built once: json.dumps with options builds one per call

# One buffered request: settings in force when it was served, variant, request body and content type,
# response body and content type, inference id, inference time (epoch seconds). A plain tuple keeps
# ``add`` as cheap as it can be.
_Event = tuple["CaptureSettings", str, bytes, "str | None", "bytes | None", "str | None", "str | None", float]


def media_type(content_type: str | None) -> str:
    """``Text/CSV; charset=utf-8`` -> ``text/csv``: the header lists name types, not their parameters."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class CaptureSettings:
    """What an endpoint's DataCaptureConfig asks for, in the shape the writer uses."""

    enabled: bool
    sampling_percentage: int
    destination_uri: str
    capture_input: bool = True
    capture_output: bool = True
    csv_content_types: tuple[str, ...] = ()
    json_content_types: tuple[str, ...] = ()
    kms_key_id: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.sampling_percentage <= 100:
            raise ValueError(f"sampling_percentage must be between 0 and 100, got {self.sampling_percentage}")
        if not (self.capture_input or self.capture_output):
            raise ValueError("Data capture must capture the input, the output or both")
        object.__setattr__(self, "csv_content_types", tuple(media_type(t) for t in self.csv_content_types))
        object.__setattr__(self, "json_content_types", tuple(media_type(t) for t in self.json_content_types))

    @classmethod
    def from_config(cls, data_capture_config: Mapping[str, Any]) -> CaptureSettings:
        """Build from a stored (already validated) DataCaptureConfig; several CaptureOptions combine."""
        capture_input = capture_output = False
        for option in data_capture_config.get("CaptureOptions") or ():
            mode = option.get("CaptureMode")
            if mode not in CAPTURE_MODES:
                raise ValueError(f"Unknown CaptureMode {mode!r}: expected Input, Output or InputAndOutput")
            wants_input, wants_output = CAPTURE_MODES[mode]
            capture_input |= wants_input
            capture_output |= wants_output
        header = data_capture_config.get("CaptureContentTypeHeader") or {}
        return cls(
            enabled=bool(data_capture_config.get("EnableCapture", True)),
            sampling_percentage=int(data_capture_config["InitialSamplingPercentage"]),
            destination_uri=str(data_capture_config["DestinationS3Uri"]),
            capture_input=capture_input,
            capture_output=capture_output,
            csv_content_types=tuple(header.get("CsvContentTypes") or ()),
            json_content_types=tuple(header.get("JsonContentTypes") or ()),
            kms_key_id=data_capture_config.get("KmsKeyId"),
        )

    def encoding_for(self, content_type: str | None) -> str:
        """CSV or JSON when the type is in the header lists, else BASE64 (SageMaker's default)."""
        media = media_type(content_type)
        if media in self.csv_content_types:
            return "CSV"
        if media in self.json_content_types:
            return "JSON"
        return "BASE64"


def _utc(when: float) -> datetime:
    return datetime.fromtimestamp(when, tz=UTC)


@functools.lru_cache(maxsize=4096)
def _second_text(second: int) -> str:
    return _utc(second).strftime("%Y-%m-%dT%H:%M:%SZ")


def inference_time_text(when: float) -> str:
    """``2022-02-14T17:25:49Z``: capture records carry the inference time to the second."""
    return _second_text(math.floor(when))  # records of a busy second share one formatting


def capture_object_uri(destination_uri: str, endpoint_name: str, variant: str, first_time: float) -> str:
    """Where a group of records whose first inference time is ``first_time`` is written."""
    moment = _utc(first_time)
    hour_folder = moment.strftime("%Y/%m/%d/%H")
    name = f"{moment:%M-%S}-{moment.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
    return f"{destination_uri.rstrip('/')}/{endpoint_name}/{variant}/{hour_folder}/{name}"


def _payload(body: bytes, content_type: str | None, mode: str, settings: CaptureSettings) -> dict[str, str]:
    """One side of a captureData entry; text the lists call CSV/JSON is kept as text, not re-encoded."""
    observed = content_type or UNDECLARED_CONTENT_TYPE
    encoding = settings.encoding_for(content_type)
    if encoding != "BASE64":
        try:
            return {"observedContentType": observed, "mode": mode, "data": body.decode("utf-8"),
                    "encoding": encoding}
        except UnicodeDecodeError:
            pass  # declared as text but is not UTF-8: base64 keeps it intact
    return {"observedContentType": observed, "mode": mode, "data": base64.b64encode(body).decode("ascii"),
            "encoding": "BASE64"}


def format_record(event: _Event) -> str | None:
    """The JSON line for one buffered request, or None when its settings capture nothing of it."""
    settings, _variant, request_body, request_type, response_body, response_type, inference_id, when = event
    capture_data: dict[str, Any] = {}
    if settings.capture_input:
        capture_data["endpointInput"] = _payload(request_body, request_type, "INPUT", settings)
    if settings.capture_output and response_body is not None:
        capture_data["endpointOutput"] = _payload(response_body, response_type, "OUTPUT", settings)
    if not capture_data:
        return None
    metadata = {"eventId": str(uuid.uuid4())}
    if inference_id is not None:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = inference_time_text(when)
    record = {"captureData": capture_data, "eventMetadata": metadata, "eventVersion": EVENT_VERSION}
    return _ENCODER.encode(record)


def _group(events: Iterable[_Event]) -> dict[tuple[str, str, int], list[_Event]]:
    """Events by (destination, variant, UTC hour), each group in inference-time order."""
    groups: dict[tuple[str, str, int], list[_Event]] = {}
    for event in events:
        key = (event[0].destination_uri, event[1], int(event[7] // 3600))
        groups.setdefault(key, []).append(event)
    for members in groups.values():
        members.sort(key=lambda event: event[7])
    return groups


class CaptureWriter:
    """Buffers sampled requests of one endpoint and writes them as capture files in the background."""

    def __init__(
        self,
        artifacts: ArtifactStore,
        settings: CaptureSettings,
        endpoint_name: str,
        *,
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        max_buffered: int = MAX_BUFFERED,
    ) -> None:
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval}")
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be at least 1, got {max_buffered}")
        self.artifacts = artifacts
        self.endpoint_name = endpoint_name
        self.flush_interval = flush_interval
        self.max_buffered = max_buffered
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self._buffer: deque[_Event] = deque()
        self._dropped = 0
        self._lock = threading.Lock()  # guards the buffer and the drop count
        self._flush_lock = threading.Lock()  # one flush at a time, so flush() returning means "stored"
        self._closed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture-{endpoint_name}", daemon=True)
        self._thread.start()

    # -- the router's side (hot path) ----------------------------------------------------------------
    @property
    def settings(self) -> CaptureSettings:
        return self._settings

    def sampled(self) -> bool:
        """Whether to capture this request: true for the configured percentage of calls."""
        settings = self._settings
        if not settings.enabled or settings.sampling_percentage <= 0:
            return False
        if settings.sampling_percentage >= 100:
            return True
        return self._rng.random() * 100.0 < settings.sampling_percentage

    def add(
        self,
        variant: str,
        request_body: bytes,
        request_content_type: str | None,
        response_body: bytes | None,
        response_content_type: str | None,
        *,
        inference_id: str | None = None,
        when: float | None = None,
    ) -> None:
        """Buffer one served request; O(1), no formatting or I/O (those happen in the flush thread)."""
        settings = self._settings
        if not settings.enabled:
            return
        event: _Event = (settings, variant, request_body, request_content_type, response_body,
                         response_content_type, inference_id, self._clock() if when is None else when)
        with self._lock:
            if len(self._buffer) >= self.max_buffered:
                self._buffer.popleft()
                self._dropped += 1
            self._buffer.append(event)

    # -- control ----------------------------------------------------------------------------------
    def update(self, settings: CaptureSettings) -> None:
        """Swap the settings (UpdateEndpoint); records already buffered keep the settings they were taken under."""
        self._settings = settings

    def summary(self) -> dict[str, Any]:
        """DescribeEndpoint's DataCaptureConfig summary for this writer."""
        settings = self._settings
        summary: dict[str, Any] = {
            "EnableCapture": settings.enabled,
            "CaptureStatus": "Started" if settings.enabled and not self._closed else "Stopped",
            "CurrentSamplingPercentage": settings.sampling_percentage,
            "DestinationS3Uri": settings.destination_uri,
        }
        if settings.kms_key_id:
            summary["KmsKeyId"] = settings.kms_key_id
        return summary

    def pending(self) -> int:
        """Records buffered and not yet stored."""
        with self._lock:
            return len(self._buffer)

    def flush(self) -> int:
        """Write everything buffered now; returns the number of records stored. Safe from any thread."""
        with self._flush_lock:
            with self._lock:
                batch, self._buffer = self._buffer, deque()
                dropped, self._dropped = self._dropped, 0
            if dropped:
                log.warning("Data capture for endpoint %s dropped the %d oldest records: more than %d were "
                            "waiting to be stored", self.endpoint_name, dropped, self.max_buffered)
            written = 0
            failed: list[_Event] = []
            for (destination, variant, _hour), events in _group(batch).items():
                try:
                    written += self._write_group(destination, variant, events)
                except Exception as error:  # any storage error: keep the records and retry at the next flush
                    log.warning("Data capture for endpoint %s could not write %d records of variant %s to %s "
                                "(kept for the next flush): %s", self.endpoint_name, len(events), variant,
                                destination, error)
                    failed.extend(events)
            if failed:
                self._requeue(failed)
            return written

    def close(self) -> None:
        """Stop the flush thread and store what is left; calling it again only flushes again."""
        self._closed = True
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        self.flush()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # the thread must outlive a bug in one flush
                log.exception("Data capture flush for endpoint %s failed", self.endpoint_name)

    def _write_group(self, destination: str, variant: str, events: list[_Event]) -> int:
        lines: list[str] = []
        first_time = 0.0
        for event in events:
            try:
                line = format_record(event)
            except Exception:  # a record that cannot be formatted never will be: drop it, keep the rest
                log.exception("Data capture for endpoint %s dropped a record it could not format",
                              self.endpoint_name)
                continue
            if line is not None:
                if not lines:
                    first_time = event[7]
                lines.append(line)
        if not lines:
            return 0
        uri = capture_object_uri(destination, self.endpoint_name, variant, first_time)
        self._put(("\n".join(lines) + "\n").encode("utf-8"), uri)
        return len(lines)

    def _put(self, data: bytes, uri: str) -> None:
        """Write one object whole: readers (monitoring) never see half a file."""
        path = self.artifacts.local_path(uri)
        if path is None:
            self.artifacts.put_bytes(data, uri)  # an S3 PUT is atomic already
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # list_objects skips these names
        try:
            partial.write_bytes(data)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def _requeue(self, failed: list[_Event]) -> None:
        """Put unwritten records back in front of newer ones, dropping the oldest beyond the bound."""
        with self._lock:
            merged = deque(failed)
            merged.extend(self._buffer)
            excess = len(merged) - self.max_buffered
            for _ in range(max(excess, 0)):
                merged.popleft()
            self._dropped += max(excess, 0)
            self._buffer = merged


def read_capture_records(
    artifacts: ArtifactStore, destination_uri: str, endpoint_name: str, variant: str | None = None
) -> list[dict[str, Any]]:
    """Every captured record of an endpoint (or one of its variants), ordered by inference time, then file."""
    prefix = f"{destination_uri.rstrip('/')}/{endpoint_name}/"
    if variant is not None:
        prefix += f"{variant}/"
    records: list[dict[str, Any]] = []
    for stored in artifacts.list_objects(prefix):
        if not stored.uri.endswith(".jsonl"):
            continue
        text = artifacts.get_bytes(stored.uri).decode("utf-8")
        records.extend(json.loads(line) for line in text.splitlines() if line.strip())
    records.sort(key=lambda record: str(record["eventMetadata"]["inferenceTime"]))
    return records
