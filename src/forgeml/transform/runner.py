"""The transform job runner: takes one batch transform job from InProgress to Completed, Failed or Stopped.

It plays SageMaker's part for the job: hold a job slot, stage the model once, start one model-server
worker per instance (``SAGEMAKER_BATCH=true`` and the batch settings in its environment), hand the
input objects out across the instances, and for each object read it, cut it into records, filter
them, pack them into requests, send those with at most ``MaxConcurrentTransforms`` in flight per
instance, cut the answers back into one output per record, join and filter them, and write
``<S3OutputPath>/<path under the input prefix>.out`` once every record of the object succeeded.

The first failed object fails the job (objects finished before it keep their outputs); a stop
request ends it Stopped. Workers are always stopped at the end. Log lines go to
``/aws/sagemaker/TransformJobs``, one stream per instance.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import itertools
import json
import os
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from forgeml.errors import ClientError, JobError, ValidationException
from forgeml.service.platform import Platform
from forgeml.service.transform_requests import (
    DEFAULT_BATCH_STRATEGY,
    DEFAULT_MAX_CONCURRENT_TRANSFORMS,
    DEFAULT_MAX_PAYLOAD_IN_MB,
    with_defaults,
)
from forgeml.serving.handlers import ModelLoadError
from forgeml.serving.model_setup import ContainerSpec, prepare_containers, start_model_worker
from forgeml.serving.worker import WorkerProcess
from forgeml.storage import ArtifactStore
from forgeml.store import transform_jobs as repo
from forgeml.transform.join import DataProcessor
from forgeml.transform.records import (
    MIB,
    Batch,
    RecordError,
    is_text,
    line_block,
    make_batches,
    separator_for,
    split_object,
    split_response,
    strip_newline,
)

SlotFactory = Callable[[Callable[[], bool]], AbstractContextManager[bool]]

POLL_SECONDS = 0.05
STOP_CHECK_SECONDS = 0.25
FLUSH_SECONDS = 0.5
PROGRESS_SECONDS = 1.0
STRATEGY_VARIABLES = {"MultiRecord": "MULTI_RECORD", "SingleRecord": "SINGLE_RECORD"}
MESSAGE_LIMIT = 512


# -- input objects ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputObject:
    """One input object and its path under the input prefix (its output is that path + ``.out``)."""

    uri: str
    relative: str


def relative_name(prefix: str, uri: str) -> str:
    """An object's path under ``S3Uri``: after the prefix when it names a folder, else after its folder.

    ``s3://b/in/`` and ``s3://b/in`` both give ``sub/a.csv`` for ``s3://b/in/sub/a.csv``; the key prefix
    ``s3://b/in/part`` gives ``part-1.csv`` for ``s3://b/in/part-1.csv``; an exact object its file name.
    """
    rest = uri[len(prefix):]
    if not rest:
        return uri.rsplit("/", 1)[-1]
    if prefix.endswith("/") or rest.startswith("/"):
        return rest.lstrip("/")
    scheme, _, path = prefix.partition("://")
    folder_end = path.rfind("/")
    if folder_end < 0:  # a bare bucket: s3://bucket
        return rest.lstrip("/")
    folder = f"{scheme}://{path[: folder_end + 1]}"
    return uri[len(folder):]


def list_inputs(artifacts: ArtifactStore, data_type: str, s3_uri: str) -> list[InputObject]:
    """Every object to transform, in key order: under the prefix, or as the manifest lists them."""
    if data_type == "ManifestFile":
        return _manifest_inputs(artifacts, s3_uri)
    objects = [InputObject(o.uri, relative_name(s3_uri, o.uri)) for o in artifacts.list_objects(s3_uri)
               if not o.uri.endswith("/")]
    if not objects:
        raise ClientError(f"No input objects were found under {s3_uri} (TransformInput S3Uri, S3DataType S3Prefix)")
    return objects


def _manifest_inputs(artifacts: ArtifactStore, manifest_uri: str) -> list[InputObject]:
    try:
        entries = json.loads(artifacts.get_bytes(manifest_uri))
    except FileNotFoundError:
        raise ClientError(f"The manifest file {manifest_uri} does not exist") from None
    except ValueError as exc:
        raise ClientError(f"The manifest file {manifest_uri} is not valid JSON: {exc}") from None
    if not (isinstance(entries, list) and entries and isinstance(entries[0], dict)
            and isinstance(entries[0].get("prefix"), str) and all(isinstance(e, str) for e in entries[1:])):
        raise ClientError(f"The manifest file {manifest_uri} must be a JSON array: "
                          '[{"prefix": "s3://bucket/prefix/"}, "relative/key1", "relative/key2", ...]')
    prefix = entries[0]["prefix"]
    if not prefix.endswith("/"):
        prefix += "/"
    keys = entries[1:]
    if not keys:
        raise ClientError(f"The manifest file {manifest_uri} lists no objects")
    return [InputObject(prefix + key, key) for key in keys]


def read_object(artifacts: ArtifactStore, uri: str, compression: str) -> bytes:
    try:
        data = artifacts.get_bytes(uri)
    except FileNotFoundError:
        raise ClientError(f"The input object {uri} does not exist") from None
    if compression != "Gzip":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ClientError(f"Cannot decompress {uri} (CompressionType Gzip): {exc}") from None


# -- talking to a worker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def describe(self) -> str:
        """SageMaker's wording for a model's error answer."""
        kind = "client" if self.status < 500 else "server"
        text = self.body.decode("utf-8", "replace").strip()
        if len(text) > MESSAGE_LIMIT:
            text = text[:MESSAGE_LIMIT] + "..."
        return f'received {kind} error ({self.status}) from the model with message "{text}"'


class InvocationFailure(Exception):
    """No answer at all (connection refused or reset, timeout) after every allowed attempt."""


class Instance:
    """One transform instance: a worker process and keep-alive connections to it (one per thread)."""

    def __init__(self, index: int, instance_id: str, stream: str, worker: WorkerProcess, *, timeout: float,
                 retries: int, headers: dict[str, str]) -> None:
        self.index = index
        self.instance_id = instance_id
        self.stream = stream
        self.worker = worker
        parsed = urlsplit(worker.url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.timeout = timeout
        self.retries = retries
        self.headers = headers
        self._local = threading.local()
        self.objects_done = 0
        self.records_done = 0
        self.last_progress = 0.0
        self.stopped = False

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it is new (a reused one may have been closed idle)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, False
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._local.connection = connection
        return connection, True

    def _drop_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def invoke(self, payload: bytes, halted: Callable[[], bool]) -> Answer:
        """POST /invocations; connection failures and 5xx answers are retried InvocationsMaxRetries times."""
        attempt = 0
        while True:
            connection, fresh = self._connection()
            try:
                connection.request("POST", "/invocations", body=payload, headers=self.headers)
                response = connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                stale = not fresh and isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError
                                                  | BrokenPipeError)
                if stale:
                    continue  # the server closed an idle keep-alive connection: not the model's fault
                if halted() or attempt >= self.retries:
                    raise InvocationFailure(self._reason(exc, attempt + 1)) from None
                attempt += 1
                continue
            if response.will_close:
                self._drop_connection()
            answer = Answer(response.status, body, response.getheader("Content-Type"))
            if answer.status >= 500 and attempt < self.retries and not halted():
                attempt += 1
                continue
            return answer

    def _reason(self, exc: BaseException, attempts: int) -> str:
        if isinstance(exc, TimeoutError):
            what = f"no answer within InvocationsTimeoutInSeconds ({self.timeout:g} s)"
        else:
            what = f"could not reach the model server ({type(exc).__name__}: {exc})"
        return f"{what}, after {attempts} attempt{'s' if attempts > 1 else ''}"

    def execution_parameters(self) -> dict[str, Any]:
        """``GET /execution-parameters`` (a container may suggest batch settings); {} when not served."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=5)
        try:
            connection.request("GET", "/execution-parameters")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                return {}
            value = json.loads(body)
            return value if isinstance(value, dict) else {}
        except (OSError, http.client.HTTPException, ValueError):
            return {}
        finally:
            connection.close()


# -- the job's settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What the request asks, resolved: how to read, cut, send and write."""

    output_path: str
    split_type: str
    compression: str
    content_type: str | None
    accept: str | None
    assemble_line: bool
    multi_record: bool
    max_bytes: int
    concurrency: int
    processor: DataProcessor
    separator: bytes


def worker_environment(request: dict[str, Any]) -> dict[str, str]:
    """The container's variables: the job's Environment plus SageMaker's batch variables."""
    environment = dict(request.get("Environment") or {})
    environment["SAGEMAKER_BATCH"] = "true"
    environment["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(request.get("MaxPayloadInMB") or DEFAULT_MAX_PAYLOAD_IN_MB)
    if request.get("BatchStrategy"):
        environment["SAGEMAKER_BATCH_STRATEGY"] = STRATEGY_VARIABLES[request["BatchStrategy"]]
    if request.get("MaxConcurrentTransforms"):
        environment["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(request["MaxConcurrentTransforms"])
    return environment


def resolve_settings(request: dict[str, Any], suggested: dict[str, Any]) -> tuple[int, str, int]:
    """MaxConcurrentTransforms, BatchStrategy and MaxPayloadInMB: the request, else the container, else defaults."""
    concurrency = request.get("MaxConcurrentTransforms") or _positive(suggested.get("MaxConcurrentTransforms")) \
        or DEFAULT_MAX_CONCURRENT_TRANSFORMS
    suggested_strategy = {v: k for k, v in STRATEGY_VARIABLES.items()}.get(str(suggested.get("BatchStrategy")))
    strategy = request.get("BatchStrategy") or suggested_strategy or DEFAULT_BATCH_STRATEGY
    payload = request.get("MaxPayloadInMB") or _positive(suggested.get("MaxPayloadInMB")) or DEFAULT_MAX_PAYLOAD_IN_MB
    return int(concurrency), str(strategy), int(payload)


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# -- per-object state ------------------------------------------------------------------------------


@dataclass
class PreparedObject:
    source: InputObject
    record_count: int
    model_records: list[bytes]
    sources: list[Any] | None
    batches: list[Batch]
    futures: list[Future[Answer]] = field(default_factory=list)


class InternalError(JobError):
    """A fault of the platform itself while transforming (a bug), not of the input or the model."""

    prefix = "InternalServerError"


class _Halted(Exception):
    """The job is stopping or has failed elsewhere: abandon this object quietly."""


class LogBuffer:
    """Log lines gathered from any thread, written by the main thread in batches."""

    def __init__(self, platform: Platform) -> None:
        self.db = platform.db
        self._lines: list[tuple[str, float, str]] = []
        self._lock = threading.Lock()

    def add(self, stream: str, message: str) -> None:
        with self._lock:
            self._lines.append((stream, time.time(), message))

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        repo.append_logs(self.db, lines)


@contextmanager
def _no_slot(_should_give_up: Callable[[], bool]) -> Iterator[bool]:
    yield True


# -- the runner ------------------------------------------------------------------------------------


class TransformRunner:
    def __init__(self, platform: Platform, job_name: str) -> None:
        self.platform = platform
        self.db = platform.db
        self.artifacts = platform.artifacts
        self.name = job_name
        row = repo.get_job(self.db, job_name)
        if row is None:
            raise LookupError(f"transform job {job_name} does not exist")
        self.row = row
        self.request: dict[str, Any] = row["request"]
        self.settings = with_defaults(self.request)
        self.root = platform.config.home / "transform" / job_name
        self.stop_event = threading.Event()
        self.logs = LogBuffer(platform)
        self.failure: JobError | None = None
        self._failure_lock = threading.Lock()
        self._last_stop_check = 0.0
        self._temporary_names = itertools.count(1)

    # -- state ------------------------------------------------------------------------------------
    def _stop_wanted(self) -> bool:
        now = time.monotonic()
        if not self.stop_event.is_set() and now - self._last_stop_check >= STOP_CHECK_SECONDS:
            self._last_stop_check = now
            if repo.stop_requested(self.db, self.name):
                self.stop_event.set()
        return self.stop_event.is_set()

    def _halted(self) -> bool:
        return self.stop_event.is_set() or self.failure is not None

    def _fail(self, error: JobError) -> None:
        """Record the job's failure; the first one wins, and none counts once a stop was asked for."""
        with self._failure_lock:
            if self.failure is None and not self.stop_event.is_set():
                self.failure = error

    def _finish(self, status: str, reason: str | None = None) -> None:
        fields: dict[str, Any] = {"end_time": round(time.time(), 6)}
        if reason:
            fields["failure_reason"] = reason
        repo.set_status(self.db, self.name, status, only_if=repo.ACTIVE, **fields)

    # -- the job ----------------------------------------------------------------------------------
    def run(self, slot: SlotFactory | None = None) -> None:
        repo.update_fields(self.db, self.name, runner_pid=os.getpid())
        try:
            with (slot or _no_slot)(self._stop_wanted) as acquired:
                if not acquired:
                    self._finish("Stopped")
                    return
                repo.update_fields(self.db, self.name, start_time=round(time.time(), 6))
                self._transform()
                if self.failure is not None:
                    self._finish("Failed", self.failure.failure_reason())
                elif self.stop_event.is_set():
                    self._finish("Stopped")
                else:
                    self._finish("Completed")
        except JobError as exc:
            if self.stop_event.is_set():
                self._finish("Stopped")
            else:
                self.logs.add(f"{self.name}/runner", exc.failure_reason())
                self._finish("Failed", exc.failure_reason())
        except Exception as exc:  # the platform's own fault: still end the job, with the reason
            self._finish("Failed", f"InternalServerError: {type(exc).__name__}: {exc}")
            raise
        finally:
            self.logs.flush()

    def _transform(self) -> None:
        model = self._model()
        source = self.request["TransformInput"]["DataSource"]["S3DataSource"]
        objects = list_inputs(self.artifacts, source["S3DataType"], source["S3Uri"])
        try:
            specs = prepare_containers(self.artifacts, model, self.root / "model")
        except ModelLoadError as exc:
            raise ClientError(f"Cannot stage model {self.request['ModelName']}: {exc}") from None
        count = min(int(self.request["TransformResources"]["InstanceCount"]), len(objects))
        instances = self._start_instances(specs, count, model)
        try:
            plan = self._plan(instances[0])
            self._log_start(instances, plan, len(objects))
            drivers = [threading.Thread(target=self._drive, args=(instance, objects[i::count], plan),
                                        name=f"transform-{instance.instance_id}", daemon=True)
                       for i, instance in enumerate(instances)]
            for driver in drivers:
                driver.start()
            self._watch(drivers, instances)
        finally:
            self._stop_instances(instances, quick=self._halted())

    def _model(self) -> dict[str, Any]:
        try:
            return self.platform.models.describe_model(self.request["ModelName"])
        except ValidationException as exc:
            raise ClientError(exc.message) from None

    # -- instances --------------------------------------------------------------------------------
    def _instance_id(self, index: int) -> str:
        digest = hashlib.sha1(f"{self.row['arn']}/{index}".encode()).hexdigest()
        return f"i-{digest[:17]}"

    def _start_instances(self, specs: list[ContainerSpec], count: int, model: dict[str, Any]) -> list[Instance]:
        """One worker per instance, started side by side; any that cannot start fails the job."""
        environment = worker_environment(self.request)
        client = self.settings["ModelClientConfig"]
        headers = {key: value for key, value in (("Content-Type", self.request["TransformInput"].get("ContentType")),
                                                 ("Accept", self.request["TransformOutput"].get("Accept"))) if value}
        what = ", ".join(spec.algorithm or "custom inference code" for spec in specs)
        started: list[Instance | BaseException | None] = [None] * count

        def start(index: int) -> None:
            instance_id = self._instance_id(index)
            stream = f"{self.name}/{instance_id}"
            self.logs.add(stream, f"Starting the model server for model {model['ModelName']} ({what}) on "
                                  f"{self.request['TransformResources']['InstanceType']} instance {instance_id}")
            try:
                worker = start_model_worker(specs, environment=environment,
                                            spec_path=self.root / f"instance-{index + 1}" / "containers.json")
            except Exception as exc:  # WorkerStartError, ModelLoadError, OSError ...: the job fails below
                self.logs.add(stream, str(exc))
                started[index] = exc
                return
            self.logs.add(stream, f"Model server listening on {worker.url}")
            started[index] = Instance(index, instance_id, stream, worker,
                                      timeout=float(client["InvocationsTimeoutInSeconds"]),
                                      retries=int(client["InvocationsMaxRetries"]), headers=headers)

        threads = [threading.Thread(target=start, args=(i,), daemon=True) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        instances = [item for item in started if isinstance(item, Instance)]
        problems = [item for item in started if not isinstance(item, Instance)]
        if problems:
            self._stop_instances(instances, quick=True)
            raise ClientError(f"The model server for model {model['ModelName']} did not start: "
                              f"{_last_line(str(problems[0]))}")
        return instances

    def _stop_instances(self, instances: list[Instance], *, quick: bool) -> None:
        """Stop every worker (in parallel), then log what each printed."""
        grace = self.platform.config.stop_grace_seconds if quick else 30.0
        running = [instance for instance in instances if not instance.stopped]
        threads = [threading.Thread(target=instance.worker.stop, args=(grace,), daemon=True) for instance in running]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for instance in running:
            instance.stopped = True
            for line in list(instance.worker.output):
                self.logs.add(instance.stream, line)

    def _plan(self, first: Instance) -> Plan:
        concurrency, strategy, payload = resolve_settings(self.request, first.execution_parameters())
        resolved = {"MaxConcurrentTransforms": concurrency, "BatchStrategy": strategy, "MaxPayloadInMB": payload}
        if any(self.settings[key] != value for key, value in resolved.items()):
            repo.update_fields(self.db, self.name, request={**self.request, **resolved})
        transform_input = self.settings["TransformInput"]
        split_type = transform_input["SplitType"]
        return Plan(
            output_path=self.settings["TransformOutput"]["S3OutputPath"].rstrip("/"),
            split_type=split_type,
            compression=transform_input["CompressionType"],
            content_type=transform_input.get("ContentType"),
            accept=self.settings["TransformOutput"].get("Accept"),
            assemble_line=self.settings["TransformOutput"]["AssembleWith"] == "Line",
            multi_record=strategy == "MultiRecord" and split_type != "None",
            max_bytes=payload * MIB,
            concurrency=concurrency,
            processor=DataProcessor.from_request(self.settings["DataProcessing"], transform_input.get("ContentType")),
            separator=separator_for(split_type),
        )

    def _log_start(self, instances: list[Instance], plan: Plan, total: int) -> None:
        strategy = "MultiRecord" if plan.multi_record else "SingleRecord"
        line = (f"Transforming {total} input object(s) on {len(instances)} instance(s): SplitType {plan.split_type}, "
                f"BatchStrategy {strategy}, MaxPayloadInMB {plan.max_bytes // MIB}, MaxConcurrentTransforms "
                f"{plan.concurrency}, AssembleWith {'Line' if plan.assemble_line else 'None'}")
        for instance in instances:
            self.logs.add(instance.stream, line)

    def _watch(self, drivers: list[threading.Thread], instances: list[Instance]) -> None:
        """Wait for the drivers, flushing logs; on a stop or a failure, stop the workers at once."""
        last_flush = time.monotonic()
        halted = False
        while any(driver.is_alive() for driver in drivers):
            for driver in drivers:
                driver.join(POLL_SECONDS / len(drivers))
            if not halted and (self._stop_wanted() or self.failure is not None):
                halted = True  # in-flight requests end with their workers
                self._stop_instances(instances, quick=True)
            if time.monotonic() - last_flush >= FLUSH_SECONDS:
                self.logs.flush()
                last_flush = time.monotonic()

    # -- one instance's objects -------------------------------------------------------------------
    def _drive(self, instance: Instance, objects: list[InputObject], plan: Plan) -> None:
        pool = ThreadPoolExecutor(max_workers=plan.concurrency, thread_name_prefix=f"{instance.instance_id}-call")
        pending: deque[PreparedObject] = deque()
        try:
            for item in objects:
                if self._halted():
                    return
                try:
                    prepared = self._prepare(item, plan)
                except JobError:
                    while pending:  # the objects before it still end as they would have
                        self._complete(instance, pending.popleft(), plan, len(objects))
                    raise
                prepared.futures = [pool.submit(instance.invoke, batch.payload, self._halted)
                                    for batch in prepared.batches]
                pending.append(prepared)
                while len(pending) > 1 and _unfinished(pending) >= 2 * plan.concurrency:
                    self._complete(instance, pending.popleft(), plan, len(objects))
            while pending:
                self._complete(instance, pending.popleft(), plan, len(objects))
        except _Halted:
            return
        except JobError as exc:
            self.logs.add(instance.stream, exc.failure_reason())
            self._fail(exc)
        except Exception as exc:  # a bug here must still end the job, not hang it
            error = InternalError(f"{type(exc).__name__}: {exc}")
            self.logs.add(instance.stream, error.failure_reason())
            self._fail(error)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _prepare(self, item: InputObject, plan: Plan) -> PreparedObject:
        data = read_object(self.artifacts, item.uri, plan.compression)
        records = split_object(data, plan.split_type, plan.content_type, item.uri,
                               strip_padding=not plan.multi_record)
        del data
        processor = plan.processor
        if processor.passes_input_through:
            model_records, sources = records, None
        else:
            model_records, kept = [], []
            for number, record in enumerate(records, start=1):
                payload, source = processor.prepare(record, item.uri, number)
                model_records.append(payload)
                kept.append(source)
            sources = kept if processor.join else None
        batches = make_batches(model_records, multi_record=plan.multi_record, max_bytes=plan.max_bytes,
                               separator=plan.separator, uri=item.uri)
        return PreparedObject(item, len(records), model_records, sources, batches)

    def _await(self, future: Future[Answer]) -> Answer:
        while True:
            try:
                return future.result(timeout=POLL_SECONDS * 2)
            except FutureTimeout:
                if self._halted():
                    raise _Halted() from None
            except InvocationFailure:
                if self._halted():
                    raise _Halted() from None
                raise

    def _complete(self, instance: Instance, prepared: PreparedObject, plan: Plan, total: int) -> None:
        """Gather an object's answers in order, assemble its output and write it."""
        uri = prepared.source.uri
        chunks: list[bytes] = []
        for batch, future in zip(prepared.batches, prepared.futures, strict=True):
            try:
                answer = self._await(future)
            except InvocationFailure as exc:
                raise RecordError(uri, batch.first + 1, str(exc), "Model error for",
                                  batch.first + batch.count) from None
            if not answer.ok:
                raise self._model_error(instance, prepared, batch, answer, plan)
            chunks.append(self._assemble(prepared, batch, answer, plan))
        # every record has its answer: the output is whole, so it is written even if a stop just came
        output = f"{plan.output_path}/{prepared.source.relative}.out"
        self._write(output, chunks)
        instance.objects_done += 1
        instance.records_done += prepared.record_count
        now = time.monotonic()
        if now - instance.last_progress >= PROGRESS_SECONDS or instance.objects_done == total:
            instance.last_progress = now
            self.logs.add(instance.stream, f"Processed {instance.objects_done}/{total} objects, "
                                           f"{instance.records_done:,} records")

    def _write(self, uri: str, chunks: list[bytes]) -> None:
        """Write the whole output at once (a temporary file, then one put), so no reader sees half of it."""
        folder = self.root / "outputs"
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f"output-{next(self._temporary_names)}.tmp"
        try:
            with open(temporary, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
            self.artifacts.put_file(temporary, uri)
        finally:
            with suppress(FileNotFoundError):
                temporary.unlink()

    def _assemble(self, prepared: PreparedObject, batch: Batch, answer: Answer, plan: Plan) -> bytes:
        """A batch's part of the .out object: its records' outputs, joined and filtered, then assembled."""
        output_type = answer.content_type or plan.accept
        processor = plan.processor
        if not processor.needs_record_outputs:
            if not plan.assemble_line:
                return answer.body  # AssembleWith None: the answers, byte for byte
            block = line_block(answer.body, output_type, batch.count)
            if block is not None:
                return block
            units = split_response(answer.body, output_type, batch.count)
            if units is None:  # an answer that does not split per record stays one piece
                units = [strip_newline(answer.body) if is_text(output_type) else answer.body]
            return b"".join(unit + b"\n" for unit in units)
        units = split_response(answer.body, output_type, batch.count)
        if units is None:
            raise RecordError(prepared.source.uri, batch.first + 1,
                              f"the model's '{output_type or 'untyped'}' answer to {batch.count} records cannot be "
                              "split into one output per record, which JoinSource and OutputFilter need (answer "
                              "one line or one array entry per record, or use BatchStrategy SingleRecord)",
                              "Cannot join", batch.first + batch.count)
        terminator = b"\n" if plan.assemble_line or plan.split_type == "Line" else b""
        sources = prepared.sources
        results = []
        for offset, unit in enumerate(units):
            index = batch.first + offset
            source = sources[index] if sources is not None else None
            results.append(processor.finish(source, unit, output_type, prepared.source.uri, index + 1) + terminator)
        return b"".join(results)

    def _model_error(self, instance: Instance, prepared: PreparedObject, batch: Batch, answer: Answer,
                     plan: Plan) -> RecordError:
        """The error for a failed batch, narrowed to the first failing record when the batch has several."""
        if batch.count > 1:
            located = self._locate(instance, prepared.model_records, batch, plan.separator)
            if located is not None:
                index, single = located
                return RecordError(prepared.source.uri, index + 1, single.describe(), "Model error for")
        return RecordError(prepared.source.uri, batch.first + 1, answer.describe(), "Model error for",
                           batch.first + batch.count)

    def _locate(self, instance: Instance, records: list[bytes], batch: Batch,
                separator: bytes) -> tuple[int, Answer] | None:
        """Halve the failed batch until one record fails alone; None if the batch only fails whole."""
        first, count = batch.first, batch.count
        failing: Answer | None = None
        while count > 1:
            half = count // 2
            for start, size in ((first, half), (first + half, count - half)):
                try:
                    answer = instance.invoke(separator.join(records[start : start + size]), self._halted)
                except InvocationFailure:
                    return None
                if not answer.ok:
                    first, count, failing = start, size, answer
                    break
            else:
                return None
        return (first, failing) if failing is not None else None


def _unfinished(pending: deque[PreparedObject]) -> int:
    return sum(1 for prepared in pending for future in prepared.futures if not future.done())


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return text
    return lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"

