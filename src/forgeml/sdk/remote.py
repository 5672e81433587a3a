"""The platform behind ``forgeml.Session(endpoint_url=...)``: a forgeml server, reached with boto3.

The SDK reaches its platform through a handful of attributes (``training_jobs``, ``tuning_jobs``,
``models``, ``endpoint_configs``, ``endpoints``, ``transform_jobs``, ``runtime``, ``logs``,
``autoscaling``, ``alarms``, ``artifacts``, ``config``). ``RemotePlatform`` has the same attributes
with the same method signatures and answers, so every SDK class runs unchanged against a server:

* the control-plane services are declarative tables (service method -> boto3 operation and how its
  arguments map), served by one generic ``RemoteService``; the few methods no API operation matches
  one to one (a tuning job's trials, a job's metric series and log events, ``exists``) are built
  from API calls here, never from the server's internals;
* botocore's ``ClientError`` becomes the forgeml exception the embedded platform raises, with the
  same message (the server sends the service layer's own); ``ResponseMetadata`` is dropped and
  timestamps are read back in UTC, so answers equal the embedded ones;
* requests go out as the SDK built them: botocore's client-side checks are off, so the server (that
  is, the service layer) judges every request, and one botocore could not even serialize (a member
  its model does not know) is sent as it is, signed, for the server to refuse;
* ``artifacts`` is the S3 subset of the server (path style), with ``ArtifactStore``'s methods.
"""

from __future__ import annotations

import errno
import functools
import io
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit

from forgeml.config import DEFAULT_REGION
from forgeml.errors import (
    ForgeMLError,
    ModelError,
    ModelNotReadyException,
    ResourceInUse,
    ResourceLimitExceeded,
    ResourceNotFound,
    RuntimeValidationError,
    ServiceUnavailable,
    ValidationException,
)
from forgeml.runtime.metrics import MetricExtractor
from forgeml.service.autoscaling import ObjectNotFoundException
from forgeml.service.names import arn as make_arn
from forgeml.service.names import to_datetime
from forgeml.service.runtime import MAX_PAYLOAD_BYTES, StreamingBody, as_bytes, feedback_body
from forgeml.storage.artifacts import FolderTransfers, StoredObject
from forgeml.storage.uri import S3Location, parse_s3_uri

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
MAX_LOG_EVENTS = 10000  # FilterLogEvents' page limit
RUNTIME_READ_TIMEOUT_SECONDS = 80.0  # the server waits 70 s for a model; the client a little longer
DELETE_BATCH = 1000  # DeleteObjects' limit

#: error codes the server answers -> the exception the embedded platform raises for them
ERRORS: dict[str, type[ForgeMLError]] = {
    cls.code: cls
    for cls in (ValidationException, ResourceNotFound, ResourceInUse, ResourceLimitExceeded, RuntimeValidationError,
                ServiceUnavailable, ModelNotReadyException, ObjectNotFoundException)
}
#: S3 error codes that mean "no such object" (the embedded store raises FileNotFoundError for them)
S3_MISSING = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})


# -- errors ----------------------------------------------------------------------------------------


def forgeml_error(response: Mapping[str, Any], status: int | None = None) -> ForgeMLError:
    """The forgeml exception for an AWS error response (botocore's ``ClientError.response`` shape)."""
    details = response.get("Error") or {}
    code = str(details.get("Code") or "InternalFailure")
    message = str(details.get("Message") or "")
    if code == "ModelError":
        extra = {**details, **response}  # botocore puts a modeled error's members at the top level
        return ModelError(message, int(extra.get("OriginalStatusCode") or 0), str(extra.get("OriginalMessage") or ""),
                          str(extra.get("LogStreamArn") or ""))
    error_type = ERRORS.get(code)
    if error_type is not None:
        return error_type(message)
    error = ForgeMLError(message or f"the server answered {code}")
    error.code = code
    error.http_status = status or int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
    return error


def _aliased(response: Mapping[str, Any], aliases: Mapping[str, str]) -> Mapping[str, Any]:
    """The response with its error code replaced by its alias, when it has one."""
    details = response.get("Error") or {}
    alias = aliases.get(str(details.get("Code")))
    return {**response, "Error": {**details, "Code": alias}} if alias else response


def _from_client_error(error: Exception) -> ForgeMLError:
    response: Mapping[str, Any] = getattr(error, "response", {}) or {}
    return forgeml_error(response)


# -- answers ---------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """An answer as the embedded platform gives it: no ResponseMetadata, timestamps in UTC."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} cannot be sent as JSON")


def _serializable(shape: Any, value: Any) -> bool:
    """Whether botocore's serializer can write ``value`` as ``shape`` (it fails on unknown members)."""
    if shape is None or value is None:
        return True
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            return False
        members = shape.members
        return all(key in members and _serializable(members[key], item) for key, item in value.items()
                   if item is not None)
    if kind == "list":
        return isinstance(value, list | tuple) and all(_serializable(shape.member, item) for item in value)
    if kind == "map":
        return isinstance(value, Mapping) and all(_serializable(shape.value, item) for item in value.values())
    if kind == "timestamp":
        return isinstance(value, datetime | int | float | str) and not isinstance(value, bool)
    if kind == "blob":
        return isinstance(value, bytes | bytearray | str) or hasattr(value, "read")
    return True


# -- configuration ---------------------------------------------------------------------------------


class RemoteConfig:
    """What the SDK reads of ``session.config`` (region, account id), for a server's platform.

    The account is the server's (STS GetCallerIdentity), asked once, when first needed.
    """

    def __init__(self, endpoint_url: str, region: str, account_lookup: Callable[[], str]) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._account_lookup = account_lookup
        self._account_id: str | None = None
        self._lock = threading.Lock()

    @property
    def account_id(self) -> str:
        with self._lock:
            if self._account_id is None:
                self._account_id = self._account_lookup()
            return self._account_id

    def __repr__(self) -> str:
        return f"RemoteConfig(endpoint_url={self.endpoint_url!r}, region={self.region!r})"


# -- the connection --------------------------------------------------------------------------------


class Wire:
    """boto3 clients for the server, made once each, and signed requests botocore has no operation for."""

    def __init__(self, endpoint_url: str, *, aws_access_key_id: str | None = None,
                 aws_secret_access_key: str | None = None, profile_name: str | None = None,
                 region_name: str | None = None) -> None:
        import boto3

        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"endpoint_url must be an http:// or https:// URL, not {endpoint_url!r}")
        self.endpoint_url = endpoint_url.rstrip("/")
        self.boto_session = boto3.session.Session(aws_access_key_id=aws_access_key_id,
                                                  aws_secret_access_key=aws_secret_access_key,
                                                  profile_name=profile_name, region_name=region_name)
        self.region = (region_name or os.environ.get("AWS_REGION") or self.boto_session.region_name
                       or DEFAULT_REGION)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()  # boto3 sessions are not thread-safe while they make clients
        self._http: Any = None

    def client(self, name: str) -> Any:
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = self._clients[name] = self.boto_session.client(
                    name, endpoint_url=self.endpoint_url, region_name=self.region, config=_client_config(name))
            return client

    def call(self, client_name: str, operation: str, params: dict[str, Any],
             error_aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
        """One API call; its answer as the embedded service gives it, or the embedded service's exception."""
        from botocore.exceptions import ClientError

        client = self.client(client_name)
        api_name = client.meta.method_to_api_mapping[operation]
        model = client.meta.service_model.operation_model(api_name)
        try:
            if _serializable(model.input_shape, params):
                response = getattr(client, operation)(**params)
            else:
                response = self._unserializable(client, api_name, params)
        except ClientError as error:
            raise forgeml_error(_aliased(error.response, error_aliases or {})) from None
        answer: dict[str, Any] = _plain(response)
        return answer

    def _unserializable(self, client: Any, api_name: str, params: dict[str, Any]) -> dict[str, Any]:
        """A request botocore cannot serialize: a JSON one is sent as it is, so the server judges it."""
        from botocore.exceptions import ClientError, ParamValidationError
        from botocore.parsers import create_parser
        from botocore.validate import validate_parameters

        service = client.meta.service_model
        metadata = service.metadata
        if service.resolved_protocol != "json":  # no plain encoding to fall back on: botocore's own verdict
            try:
                validate_parameters(params, service.operation_model(api_name).input_shape)
            except ParamValidationError as error:
                raise ValidationException(str(error).removeprefix("Parameter validation failed:\n")) from None
            raise ValidationException(f"The request does not fit {api_name}'s members")
        body = json.dumps(params, default=_json_default).encode()
        headers = {"X-Amz-Target": f"{metadata['targetPrefix']}.{api_name}",
                   "Content-Type": f"application/x-amz-json-{metadata.get('jsonVersion', '1.1')}"}
        status, response_headers, payload = self.send(service.signing_name, "POST", "/", body, headers)
        parsed: dict[str, Any] = create_parser("json").parse(
            {"status_code": status, "headers": response_headers, "body": payload},
            service.operation_model(api_name).output_shape)
        if status >= 300:
            raise ClientError(parsed, api_name)
        return parsed

    def send(self, signing_name: str, method: str, path: str, body: bytes,
             headers: dict[str, str]) -> tuple[int, Any, bytes]:
        """A request signed with the session's credentials (SigV4): status, headers, body."""
        import urllib3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.exceptions import NoCredentialsError

        credentials = self.boto_session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        request = AWSRequest(method=method, url=self.endpoint_url + path, data=body, headers=dict(headers))
        SigV4Auth(credentials.get_frozen_credentials(), signing_name, self.region).add_auth(request)
        with self._lock:
            if self._http is None:
                self._http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=60.0,
                                                                         read=RUNTIME_READ_TIMEOUT_SECONDS),
                                                 retries=False)
            http = self._http
        response = http.request(method, self.endpoint_url + path, body=body, headers=dict(request.headers.items()))
        return int(response.status), response.headers, bytes(response.data)


def _client_config(name: str) -> Any:
    """Path-style S3; no client-side checks (the server judges requests); no retries for the runtime."""
    from botocore.config import Config

    options: dict[str, Any] = {"parameter_validation": False, "retries": {"mode": "standard"}}
    if name == "s3":
        options.update(parameter_validation=True, s3={"addressing_style": "path"}, signature_version="s3v4")
    if name == "sagemaker-runtime":
        options.update(retries={"total_max_attempts": 1}, read_timeout=RUNTIME_READ_TIMEOUT_SECONDS)
    return Config(**options)


# -- services from tables --------------------------------------------------------------------------

REQUEST = "request"  # method(request) -> client.operation(**request)
PARAMS = "params"  # method(**params) -> client.operation(**params)
POSITIONAL = "positional"  # method(a, b) -> client.operation(<MemberA>=a, <MemberB>=b), e.g. a resource's name


@dataclass(frozen=True)
class Call:
    """How one service method maps to one API operation (the boto3 method of the same name)."""

    style: str
    members: tuple[str, ...] = ()  # POSITIONAL: the request member each argument becomes
    answers: bool = True  # False: the service method returns None (Stop, Delete, Deregister)


def _request(*, answers: bool = True) -> Call:
    return Call(REQUEST, answers=answers)


def _params() -> Call:
    return Call(PARAMS)


def _name(*members: str, answers: bool = True) -> Call:
    return Call(POSITIONAL, members, answers)


TRAINING_JOBS: dict[str, Call] = {
    "create_training_job": _request(),
    "describe_training_job": _name("TrainingJobName"),
    "list_training_jobs": _params(),
    "stop_training_job": _name("TrainingJobName", answers=False),
}
TUNING_JOBS: dict[str, Call] = {
    "create_hyper_parameter_tuning_job": _request(),
    "describe_hyper_parameter_tuning_job": _name("HyperParameterTuningJobName"),
    "list_hyper_parameter_tuning_jobs": _params(),
    "list_training_jobs_for_hyper_parameter_tuning_job": _params(),
    "stop_hyper_parameter_tuning_job": _name("HyperParameterTuningJobName", answers=False),
}
MODELS: dict[str, Call] = {
    "create_model": _request(),
    "describe_model": _name("ModelName"),
    "list_models": _params(),
    "delete_model": _name("ModelName", answers=False),
}
ENDPOINT_CONFIGS: dict[str, Call] = {
    "create_endpoint_config": _request(),
    "describe_endpoint_config": _name("EndpointConfigName"),
    "list_endpoint_configs": _params(),
    "delete_endpoint_config": _name("EndpointConfigName", answers=False),
}
ENDPOINTS: dict[str, Call] = {
    "create_endpoint": _request(),
    "describe_endpoint": _name("EndpointName"),
    "list_endpoints": _params(),
    "delete_endpoint": _name("EndpointName", answers=False),
    "update_endpoint": _request(),
    "update_endpoint_weights_and_capacities": _request(),
}
TRANSFORM_JOBS: dict[str, Call] = {
    "create_transform_job": _request(),
    "describe_transform_job": _name("TransformJobName"),
    "list_transform_jobs": _params(),
    "stop_transform_job": _name("TransformJobName", answers=False),
}
AUTOSCALING: dict[str, Call] = {
    "register_scalable_target": _request(),
    "describe_scalable_targets": _params(),
    "deregister_scalable_target": _request(answers=False),
    "put_scaling_policy": _request(),
    "describe_scaling_policies": _params(),
    "delete_scaling_policy": _request(answers=False),
    "describe_scaling_activities": _params(),
}
ALARMS: dict[str, Call] = {
    "put_metric_alarm": _request(answers=False),
    "describe_alarms": _params(),
    "delete_alarms": _name("AlarmNames", answers=False),
    "set_alarm_state": _name("AlarmName", "StateValue", "StateReason", answers=False),
}


class RemoteService:
    """A service whose methods are its table's rows, each one call of ``client_name``'s operation."""

    client_name = "sagemaker"
    table: dict[str, Call] = {}
    #: an error code of this service -> the code the embedded platform's exception has
    error_aliases: dict[str, str] = {}

    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    def __getattr__(self, method: str) -> Callable[..., Any]:
        call = type(self).table.get(method)
        if call is None:
            raise AttributeError(f"{type(self).__name__} has no method {method!r}")
        return functools.partial(self._invoke, method, call)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *type(self).table})

    def _invoke(self, method: str, call: Call, *args: Any, **kwargs: Any) -> Any:
        if call.style == PARAMS:
            if args:
                raise TypeError(f"{method}() takes keyword arguments only")
            params = dict(kwargs)
        elif call.style == REQUEST:
            if len(args) != 1 or kwargs:
                raise TypeError(f"{method}() takes the request as its one argument")
            params = dict(args[0])
        else:
            if len(args) != len(call.members) or kwargs:
                raise TypeError(f"{method}() takes {len(call.members)} positional argument(s): "
                                f"{', '.join(call.members)}")
            params = dict(zip(call.members, args, strict=True))
        answer = self.wire.call(self.client_name, method, params, self.error_aliases)
        return answer if call.answers else None


def _log_events(wire: Wire, group: str, job_name: str, after_id: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` events of the job's streams after event ``after_id``, in write order, with their ``id``."""
    events: list[dict[str, Any]] = []
    cursor = after_id
    while len(events) < limit:
        request: dict[str, Any] = {"logGroupName": group, "logStreamNamePrefix": f"{job_name}/",
                                   "limit": min(MAX_LOG_EVENTS, limit - len(events))}
        if cursor:
            request["nextToken"] = str(cursor)  # FilterLogEvents' token is the id of the last event read
        page = wire.call("logs", "filter_log_events", request)
        for event in page.get("events", []):
            events.append({"id": int(event["eventId"]), "logStreamName": event["logStreamName"],
                           "timestamp": event["timestamp"], "message": event["message"]})
        if not page.get("nextToken") or not page.get("events"):
            break
        cursor = events[-1]["id"]
    return events


class RemoteTrainingJobs(RemoteService):
    table = TRAINING_JOBS

    def metric_series(self, name: str, metric_name: str | None = None) -> list[dict[str, Any]]:
        """The job's metric points, read from its log with its MetricDefinitions, as the job's runner reads them."""
        definitions = self.wire.call("sagemaker", "describe_training_job", {"TrainingJobName": name})[
            "AlgorithmSpecification"].get("MetricDefinitions", [])
        extractor = MetricExtractor(definitions)
        points = []
        cursor = 0
        while True:
            events = _log_events(self.wire, TRAINING_LOG_GROUP, name, cursor, MAX_LOG_EVENTS)
            for event in events:
                for metric, value, stamp in extractor.scan(event["message"], event["timestamp"] / 1000.0):
                    if metric_name is None or metric == metric_name:
                        points.append({"MetricName": metric, "Value": value, "Timestamp": to_datetime(stamp)})
            if len(events) < MAX_LOG_EVENTS:
                return points
            cursor = events[-1]["id"]


class RemoteTuningJobs(RemoteService):
    table = TUNING_JOBS

    def trial_summaries(self, name: str) -> list[dict[str, Any]]:
        """HyperParameterTrainingJobSummary for every trial, in launch order (creation time, ties kept)."""
        summaries: list[dict[str, Any]] = []
        request: dict[str, Any] = {"HyperParameterTuningJobName": name, "SortBy": "CreationTime",
                                   "SortOrder": "Ascending", "MaxResults": 100}
        while True:
            page = self.wire.call("sagemaker", "list_training_jobs_for_hyper_parameter_tuning_job", request)
            summaries.extend(page["TrainingJobSummaries"])
            if not page.get("NextToken"):
                return summaries
            request["NextToken"] = page["NextToken"]


class RemoteModels(RemoteService):
    table = MODELS

    def exists(self, name: str) -> bool:
        return _described(lambda: self.wire.call("sagemaker", "describe_model", {"ModelName": name}))


class RemoteEndpointConfigs(RemoteService):
    table = ENDPOINT_CONFIGS

    def exists(self, name: str) -> bool:
        return _described(lambda: self.wire.call("sagemaker", "describe_endpoint_config",
                                                 {"EndpointConfigName": name}))


class RemoteEndpoints(RemoteService):
    table = ENDPOINTS

    def exists(self, name: str) -> bool:
        return _described(lambda: self.describe_endpoint(name))

    def variant_names(self, name: str) -> list[str] | None:
        """The endpoint's production variant names (None when there is no such endpoint)."""
        try:
            described = self.describe_endpoint(name)
        except ValidationException:
            return None
        variants = described.get("ProductionVariants")
        if not variants:
            config = self.wire.call("sagemaker", "describe_endpoint_config",
                                    {"EndpointConfigName": described["EndpointConfigName"]})
            variants = config["ProductionVariants"]
        return [variant["VariantName"] for variant in variants]


class RemoteTransformJobs(RemoteService):
    table = TRANSFORM_JOBS

    def log_events(self, name: str, after_id: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
        """The job's log events after ``after_id`` (CloudWatch's shape plus ``id``, the next cursor)."""
        return _log_events(self.wire, TRANSFORM_LOG_GROUP, name, after_id, limit)


class RemoteAutoScaling(RemoteService):
    client_name = "application-autoscaling"
    table = AUTOSCALING


class RemoteAlarms(RemoteService):
    """CloudWatch metric alarms (``AlarmService``'s methods) through the server's CloudWatch API."""

    client_name = "cloudwatch"
    table = ALARMS
    # CloudWatch reports a ValidationException by its query-era code
    error_aliases = {"ValidationError": ValidationException.code}

    def get_alarm(self, name: str) -> dict[str, Any] | None:
        """The alarm as DescribeAlarms shows it, or None."""
        alarms = self.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        return dict(alarms[0]) if alarms else None


def _described(describe: Callable[[], Any]) -> bool:
    """Whether a Describe call finds its resource (SageMaker says "Could not find" with a ValidationException)."""
    try:
        describe()
    except (ValidationException, ResourceNotFound):
        return False
    return True


# -- logs and runtime ------------------------------------------------------------------------------


class RemoteLogs:
    """Training job logs through the server's CloudWatch Logs API, in ``LogService``'s shapes."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    def job_log_streams(self, job_name: str) -> list[dict[str, Any]]:
        streams: list[dict[str, Any]] = []
        request: dict[str, Any] = {"logGroupName": TRAINING_LOG_GROUP, "logStreamNamePrefix": f"{job_name}/"}
        while True:
            page = self.wire.call("logs", "describe_log_streams", request)
            streams.extend({"logStreamName": s["logStreamName"], "firstEventTimestamp": s["firstEventTimestamp"],
                            "lastEventTimestamp": s["lastEventTimestamp"], "storedBytes": s.get("storedBytes", 0)}
                           for s in page.get("logStreams", []))
            if not page.get("nextToken"):
                return streams
            request["nextToken"] = page["nextToken"]

    def job_events(self, job_name: str, after_id: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
        """Events of every stream of the job after ``after_id``: ``id`` is the cursor for the next call."""
        return _log_events(self.wire, TRAINING_LOG_GROUP, job_name, after_id, limit)


class RemoteRuntime:
    """InvokeEndpoint through the server's runtime; answers and errors as ``RuntimeService`` gives them."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        client = self.wire.client("sagemaker-runtime")
        known = client.meta.service_model.operation_model("InvokeEndpoint").input_shape.members
        params = {key: value for key, value in request.items() if key in known and value is not None}
        params["Body"] = as_bytes(request.get("Body"))
        if len(params["Body"]) > MAX_PAYLOAD_BYTES:
            raise RuntimeValidationError("1 validation error detected: Value at 'body' failed to satisfy constraint: "
                                         f"Member must have length less than or equal to {MAX_PAYLOAD_BYTES}")
        params.setdefault("ContentType", "application/octet-stream")
        try:
            response = client.invoke_endpoint(**params)
        except ClientError as error:
            raise _from_client_error(error) from None
        metadata = response.get("ResponseMetadata", {})
        result: dict[str, Any] = {
            "Body": StreamingBody(response["Body"].read()),
            "ContentType": response.get("ContentType", "application/octet-stream"),
            "InvokedProductionVariant": response.get("InvokedProductionVariant"),
            "ResponseMetadata": {"RequestId": metadata.get("RequestId", ""), "HTTPStatusCode": 200,
                                 "RetryAttempts": metadata.get("RetryAttempts", 0)},
        }
        if "CustomAttributes" in response:
            result["CustomAttributes"] = response["CustomAttributes"]
        return result

    def send_feedback(self, endpoint_name: str, reward: float, *, inference_id: str | None = None,
                      variant_name: str | None = None) -> str:
        """A bandit reward for a request or a variant (``POST /endpoints/<name>/feedback``); the variant credited."""
        status, headers, payload = self.wire.send("sagemaker", "POST", f"/endpoints/{quote(endpoint_name, safe='')}"
                                                  "/feedback", feedback_body(reward, inference_id, variant_name),
                                                  {"Content-Type": "application/json"})
        if status != 200:
            raise forgeml_error(_runtime_error(headers, payload), status)
        return str(json.loads(payload)["VariantName"])


def _runtime_error(headers: Any, payload: bytes) -> dict[str, Any]:
    """A runtime error answer in botocore's ``ClientError.response`` shape."""
    code = str(headers.get("X-Amzn-ErrorType") or "InternalFailure").split(":")[0]
    try:
        details = json.loads(payload)
    except ValueError:
        details = {"message": payload.decode("utf-8", "replace")}
    if not isinstance(details, dict):
        details = {"message": str(details)}
    message = details.get("message") or details.get("Message") or ""
    return {"Error": {"Code": code, "Message": message}, **{k: v for k, v in details.items()
                                                            if k not in ("message", "Message", "__type")}}


# -- artifacts -------------------------------------------------------------------------------------


class _UploadOnClose(io.BytesIO):
    """What ``open(uri, "wb")`` gives: written to the store, whole, when closed."""

    def __init__(self, store: RemoteArtifactStore, uri: str) -> None:
        super().__init__()
        self._store = store
        self._uri = uri

    def close(self) -> None:
        if not self.closed:
            self._store.put_bytes(self.getvalue(), self._uri)
        super().close()


class RemoteArtifactStore(FolderTransfers):
    """``ArtifactStore``'s methods over the server's S3 API: ``s3://bucket/key`` is what jobs read there.

    Only ``s3://`` URIs name something on the server; a local path or ``file://`` URI is refused
    with the ValidationException ``parse_s3_uri`` raises, since the server cannot see this machine.
    """

    uses_remote_s3 = True

    def __init__(self, wire: Wire) -> None:
        self.wire = wire

    @property
    def _s3(self) -> Any:
        return self.wire.client("s3")

    def _s3_call(self, operation: str, **params: Any) -> Any:
        from botocore.exceptions import ClientError

        try:
            return getattr(self._s3, operation)(**params)
        except ClientError as error:
            raise _storage_error(error, params) from None

    @staticmethod
    def local_path(uri: str) -> Path | None:
        """Never a local path: every object lives on the server (the URI is still checked)."""
        parse_s3_uri(uri)
        return None

    # -- buckets ------------------------------------------------------------------------------------
    def ensure_bucket(self, bucket: str) -> None:
        from botocore.exceptions import ClientError

        S3Location(bucket, "")
        parse_s3_uri(f"s3://{bucket}/")
        try:
            self._s3.create_bucket(Bucket=bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise _storage_error(error, {"Bucket": bucket}) from None

    # -- objects ------------------------------------------------------------------------------------
    def exists(self, uri: str) -> bool:
        """An object, or a "folder" holding objects (as a local path exists for both), or a bucket."""
        from botocore.exceptions import ClientError

        location = parse_s3_uri(uri)
        try:
            if not location.key:
                self._s3.head_bucket(Bucket=location.bucket)
                return True
            self._s3.head_object(Bucket=location.bucket, Key=location.key)
            return True
        except ClientError as error:
            if _error_code(error) not in S3_MISSING:
                raise _storage_error(error, {"Bucket": location.bucket, "Key": location.key}) from None
        if not location.key:
            return False
        folder = location.key.rstrip("/") + "/"
        try:
            listing = self._s3.list_objects_v2(Bucket=location.bucket, Prefix=folder, MaxKeys=1)
        except ClientError as error:
            if _error_code(error) in S3_MISSING:
                return False
            raise _storage_error(error, {"Bucket": location.bucket, "Key": folder}) from None
        return bool(listing.get("KeyCount") or listing.get("Contents"))

    def open(self, uri: str, mode: str = "rb") -> IO[Any]:
        """A whole object, read at once; ``"wb"`` gives a buffer stored when it is closed."""
        if mode in ("wb", "w"):
            parse_s3_uri(uri)
            buffer = _UploadOnClose(self, uri)
            return buffer if mode == "wb" else io.TextIOWrapper(buffer, encoding="utf-8", write_through=True)
        if mode not in ("rb", "r"):
            raise ValueError(f"a remote artifact opens for reading ('rb', 'r') or writing ('wb', 'w'), not {mode!r}")
        data = io.BytesIO(self.get_bytes(uri))
        return data if mode == "rb" else io.TextIOWrapper(data, encoding="utf-8")

    def put_file(self, local: str | Path, uri: str) -> None:
        from boto3.exceptions import S3UploadFailedError

        location = parse_s3_uri(uri)
        if not Path(local).is_file():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(local))
        try:
            self._s3.upload_file(str(local), location.bucket, location.key)
        except S3UploadFailedError as error:
            raise OSError(f"uploading {local} to {uri} failed: {error}") from None

    def put_bytes(self, data: bytes, uri: str) -> None:
        location = parse_s3_uri(uri)
        self._s3_call("put_object", Bucket=location.bucket, Key=location.key, Body=data)

    def get_bytes(self, uri: str) -> bytes:
        location = parse_s3_uri(uri)
        response = self._s3_call("get_object", Bucket=location.bucket, Key=location.key)
        data: bytes = response["Body"].read()
        return data

    def get_file(self, uri: str, local: str | Path, *, link: bool = False) -> None:
        """Download an object to ``local`` (``link`` is for a local store; here it is always a copy)."""
        target = Path(local)
        target.parent.mkdir(parents=True, exist_ok=True)
        location = parse_s3_uri(uri)
        response = self._s3_call("get_object", Bucket=location.bucket, Key=location.key)
        partial = target.with_name(f".{target.name}.part-{os.getpid()}")
        with open(partial, "wb") as handle:
            for chunk in response["Body"].iter_chunks(1024 * 1024):
                handle.write(chunk)
        os.replace(partial, target)

    def delete(self, uri: str) -> None:
        """The object, and every object below it as a folder (as the local store removes a directory)."""
        location = parse_s3_uri(uri)
        keys = [location.key] if location.key and not location.key.endswith("/") else []
        folder = location.key.rstrip("/") + "/" if location.key else ""
        keys += [obj.uri[len(f"s3://{location.bucket}/"):] for obj in self._listing(location.bucket, folder)]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start: start + DELETE_BATCH]
            self._s3_call("delete_objects", Bucket=location.bucket,
                          Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True})

    def list_objects(self, prefix_uri: str) -> list[StoredObject]:
        """Objects whose URI starts with ``prefix_uri``, sorted by key (``ArtifactStore.list_objects``).

        As in the local store, a prefix that is itself an object lists that object alone.
        """
        location = parse_s3_uri(prefix_uri)
        objects = sorted(self._listing(location.bucket, location.key), key=lambda obj: obj.uri)
        exact = [obj for obj in objects if obj.uri == prefix_uri]
        chosen = exact if exact and not prefix_uri.endswith("/") else objects
        return [StoredObject(obj.uri, _relative(prefix_uri, obj.uri), obj.size) for obj in chosen]

    def _listing(self, bucket: str, prefix: str) -> Iterator[StoredObject]:
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            page = self._s3_call("list_objects_v2", **request)
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    uri = f"s3://{bucket}/{item['Key']}"
                    yield StoredObject(uri, item["Key"], int(item.get("Size") or 0))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            request["ContinuationToken"] = token


def _relative(prefix_uri: str, uri: str) -> str:
    """The key without the prefix, or the object's file name when the prefix is the object itself."""
    rest = uri[len(prefix_uri):].lstrip("/")
    return rest or uri.rsplit("/", 1)[-1]


def _error_code(error: Any) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _storage_error(error: Any, params: Mapping[str, Any]) -> Exception:
    """What the local store raises in the same case: FileNotFoundError for a missing object or bucket."""
    code = _error_code(error)
    where = f"s3://{params.get('Bucket', '')}/{params.get('Key', '')}"
    if code in S3_MISSING:
        return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), where)
    if code in ("403", "AccessDenied"):
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), where)
    return _from_client_error(error)


# -- the platform ----------------------------------------------------------------------------------


class RemotePlatform:
    """``Platform``'s services, as the SDK uses them, answered by a forgeml server at ``endpoint_url``.

    Credentials come from the arguments, else boto3's usual chain (environment, ``profile_name``,
    shared credentials file); the region from ``region_name``, ``AWS_REGION``, the boto3 session,
    else us-east-1.
    """

    def __init__(self, endpoint_url: str, *, aws_access_key_id: str | None = None,
                 aws_secret_access_key: str | None = None, profile_name: str | None = None,
                 region_name: str | None = None) -> None:
        self.wire = Wire(endpoint_url, aws_access_key_id=aws_access_key_id,
                         aws_secret_access_key=aws_secret_access_key, profile_name=profile_name,
                         region_name=region_name)
        self.config = RemoteConfig(self.wire.endpoint_url, self.wire.region, self._caller_account)
        self.artifacts = RemoteArtifactStore(self.wire)
        self.training_jobs = RemoteTrainingJobs(self.wire)
        self.tuning_jobs = RemoteTuningJobs(self.wire)
        self.models = RemoteModels(self.wire)
        self.endpoint_configs = RemoteEndpointConfigs(self.wire)
        self.endpoints = RemoteEndpoints(self.wire)
        self.transform_jobs = RemoteTransformJobs(self.wire)
        self.autoscaling = RemoteAutoScaling(self.wire)
        self.runtime = RemoteRuntime(self.wire)
        self.logs = RemoteLogs(self.wire)
        self.alarms = RemoteAlarms(self.wire)

    def _caller_account(self) -> str:
        return str(self.wire.call("sts", "get_caller_identity", {})["Account"])

    def arn(self, resource: str, name: str) -> str:
        return make_arn(self.config.region, self.config.account_id, resource, name)

    def __repr__(self) -> str:
        return f"RemotePlatform({self.wire.endpoint_url!r})"
