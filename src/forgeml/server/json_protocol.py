"""AWS's JSON 1.1 protocol: ``POST /`` with ``X-Amz-Target: <Prefix>.<Operation>`` and a JSON object.

SageMaker, CloudWatch Logs and Application Auto Scaling all speak it. A ``JsonService`` names its
target prefix, the botocore service model that types its requests, and a table from operation name
to one service call. ``JsonApi`` is the ASGI app in front of them: it reads the body (16 MiB at
most), decodes and type-checks it, runs the call on a worker thread (the service layer blocks on
the metadata store) and encodes the answer.

botocore is the judge of every answer: it reads timestamps as epoch seconds, so each ``datetime``
the services return becomes a float, and ``None`` members are left out. Errors are
``{"__type": code, "message": ...}`` with the error's HTTP status; anything unexpected is a 500
``InternalFailure`` whose details go to the server log, never to the client.

Requests are typed against botocore's service model before a service sees them: a string where a
structure belongs, a float where an integer belongs, and so on, is a ``SerializationException``
(400), as AWS's own deserializers answer. Members the model does not know are left for the service
to refuse, since it names the members it takes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from forgeml.errors import ForgeMLError
from forgeml.service.validation import member_path

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: one call into the service layer: the platform and the decoded request; None answers ``{}``
Operation = Callable[["Platform", dict[str, Any]], Mapping[str, Any] | None]

MIB = 1024 * 1024
MAX_BODY_BYTES = 16 * MIB
CONTENT_TYPE = b"application/x-amz-json-1.1"
INTERNAL_MESSAGE = "We encountered an internal error. Please try again."

log = logging.getLogger("forgeml.server")


class SerializationException(ForgeMLError):
    """The body is not JSON, not an object, or a member has the wrong JSON type."""

    code = "SerializationException"
    http_status = 400


class UnknownOperationException(ForgeMLError):
    code = "UnknownOperationException"
    http_status = 400


class RequestEntityTooLarge(ForgeMLError):
    code = "RequestEntityTooLarge"
    http_status = 413


@dataclass(frozen=True)
class JsonService:
    """One JSON 1.1 service: its ``X-Amz-Target`` prefix, botocore model name and operations."""

    prefix: str
    model_name: str
    operations: Mapping[str, Operation]


# -- encoding ------------------------------------------------------------------------------------


def to_wire(value: Any) -> Any:
    """The JSON-ready form of a service answer: datetimes as epoch seconds, None members dropped."""
    if isinstance(value, Mapping):
        return {key: to_wire(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day).timestamp()
    return value


def encode(value: Mapping[str, Any] | None) -> bytes:
    return json.dumps(to_wire(value or {}), separators=(",", ":"), allow_nan=False).encode()


def error_body(error: ForgeMLError) -> bytes:
    return json.dumps(error.to_dict(), separators=(",", ":")).encode()


# -- decoding ------------------------------------------------------------------------------------


def decode(body: bytes) -> dict[str, Any]:
    """The request object; an empty body is ``{}`` (botocore always sends at least that)."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as exc:
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise SerializationException(f"The request body is not valid JSON: {reason}") from None
    if not isinstance(value, dict):
        raise SerializationException(f"The request body must be a JSON object, not {_json_type(value)}")
    return value


def parse_target(target: str) -> tuple[str, str]:
    prefix, dot, operation = target.rpartition(".")
    if not dot or not prefix or not operation:
        raise UnknownOperationException(f"X-Amz-Target '{target}' must look like <Service>.<Operation>")
    return prefix, operation


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


@cache
def _service_model(name: str) -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


def operation_model(model_name: str, operation: str) -> Any:
    """botocore's model of an operation, or None when the service has no such operation."""
    model = _service_model(model_name)
    if operation not in model.operation_names:
        return None
    return model.operation_model(operation)


class _Typer:
    """Checks a decoded request against a botocore input shape; converts ISO timestamps to epoch seconds."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, value: Any, path: str, expected: str) -> None:
        shown = value if isinstance(value, str | int | float) and not isinstance(value, bool) else _json_type(value)
        self.errors.append(f"Value '{shown}' at '{member_path(path) or 'input'}' cannot be read as {expected} "
                           f"(it is {_json_type(value)})")

    def check(self, shape: Any, value: Any, path: str) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape, value, path)
        if kind == "list":
            if not isinstance(value, list):
                self.fail(value, path, "a list")
                return value
            member = shape.member
            return [self.check(member, item, f"{path}.{index + 1}") for index, item in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                self.fail(value, path, "a map")
                return value
            item_shape = shape.value
            return {key: self.check(item_shape, item, f"{path}.{key}") for key, item in value.items()}
        return self._scalar(kind, value, path)

    def _structure(self, shape: Any, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            self.fail(value, path, "a structure")
            return value
        members = shape.members
        result = {}
        for key, item in value.items():
            if item is None:
                continue  # null is absent, as AWS reads it
            member = members.get(key)
            result[key] = item if member is None else self.check(member, item, f"{path}.{key}" if path else key)
        return result

    def _scalar(self, kind: str, value: Any, path: str) -> Any:
        if kind == "string":
            if not isinstance(value, str):
                self.fail(value, path, "a string")
        elif kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(value, path, "an integer")
        elif kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(value, path, "a number")
        elif kind == "boolean":
            if not isinstance(value, bool):
                self.fail(value, path, "a boolean")
        elif kind == "timestamp":
            return self._timestamp(value, path)
        elif kind == "blob" and not isinstance(value, str):
            self.fail(value, path, "base64-encoded bytes")
        return value

    def _timestamp(self, value: Any, path: str) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return value
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # not ISO 8601 either: reported below
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        self.fail(value, path, "a timestamp (epoch seconds)")
        return value


def typed_request(model_name: str, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """The request checked against botocore's input shape (a SerializationException lists every mismatch)."""
    model = operation_model(model_name, operation)
    if model is None or model.input_shape is None:
        return request
    typer = _Typer()
    typed = typer.check(model.input_shape, request, "")
    if typer.errors:
        count = len(typer.errors)
        raise SerializationException(f"{count} serialization error{'s' if count > 1 else ''} detected: "
                                     + "; ".join(typer.errors))
    return typed


# -- the ASGI app --------------------------------------------------------------------------------


class BodyTooLarge(Exception):
    """The body is over the limit; ``drained`` tells whether all of it was read (the connection may stay open)."""

    def __init__(self, drained: bool) -> None:
        super().__init__("the request body is too large")
        self.drained = drained


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body, refusing one over ``limit`` bytes.

    An oversize body is still read to its end (and dropped) up to four times the limit, so the
    client, still sending, gets the refusal rather than a reset connection; beyond that, or when
    Content-Length already says so, it is refused at once and the connection closed.
    """
    drain_limit = 4 * limit
    for name, value in scope.get("headers") or []:
        if name == b"content-length" and value.isdigit() and int(value) > drain_limit:
            raise BodyTooLarge(drained=False)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("the client went away before sending its whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > drain_limit:
            raise BodyTooLarge(drained=False)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            if size > limit:
                raise BodyTooLarge(drained=True)
            return b"".join(chunks)


class JsonApi:
    """Serves the JSON 1.1 services; ``handle(target, body)`` is the whole protocol, minus HTTP."""

    def __init__(self, platform: Platform, services: Iterable[JsonService], *,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.platform = platform
        self.services = {service.prefix: service for service in services}
        self.max_body_bytes = max_body_bytes

    def load_models(self) -> None:
        """Read botocore's service models now (a quarter second) rather than in the first request."""
        for service in self.services.values():
            _service_model(service.model_name)

    def handle(self, target: str, body: bytes) -> tuple[int, bytes, str | None]:
        """Decode, call one operation, encode: the HTTP status, the JSON body and a refusal's error code."""
        try:
            prefix, name = parse_target(target)
            service = self.services.get(prefix)
            if service is None:
                raise UnknownOperationException(f"Unknown service in X-Amz-Target '{target}'; this server serves "
                                                f"{', '.join(sorted(self.services))}")
            operation = service.operations.get(name)
            if operation is None:
                raise UnknownOperationException(_unknown_operation(service, name))
            request = typed_request(service.model_name, name, decode(body))
            return 200, encode(operation(self.platform, request)), None
        except ForgeMLError as error:
            return error.http_status, error_body(error), error.code
        except Exception:
            log.exception("internal error serving %s", target)
            failure = _internal_failure()
            return failure.http_status, error_body(failure), failure.code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = ""
        for name, value in scope["headers"]:
            if name == b"x-amz-target":
                target = value.decode("latin-1")
                break
        if scope["method"] != "POST":
            wrong_method = UnknownOperationException(f"{scope['method']} is not how AWS JSON operations are "
                                                     "called: POST / with X-Amz-Target")
            await respond(send, wrong_method.http_status, error_body(wrong_method), error_code=wrong_method.code)
            return
        try:
            body = await read_body(scope, receive, self.max_body_bytes)
        except BodyTooLarge as refused:
            error = RequestEntityTooLarge(f"The request body is larger than {self.max_body_bytes} bytes")
            await respond(send, error.http_status, error_body(error), error_code=error.code,
                          close=not refused.drained)
            return
        except ConnectionAbortedError:
            return
        status, payload, code = await anyio.to_thread.run_sync(self.handle, target, body)
        await respond(send, status, payload, error_code=code)


def _unknown_operation(service: JsonService, name: str) -> str:
    known = operation_model(service.model_name, name) is not None
    if known:
        return (f"forgeml does not serve {service.prefix}.{name}; the operations it serves for this service are: "
                f"{', '.join(sorted(service.operations))}")
    return f"Unknown operation {service.prefix}.{name}"


def _internal_failure() -> ForgeMLError:
    error = ForgeMLError(INTERNAL_MESSAGE)
    error.code = "InternalFailure"
    error.http_status = 500
    return error


async def respond(send: Send, status: int, body: bytes, *, error_code: str | None = None,
                  close: bool = False) -> None:
    headers = [(b"content-type", CONTENT_TYPE), (b"content-length", str(len(body)).encode()),
               (b"x-amzn-requestid", str(uuid.uuid4()).encode())]
    if error_code is not None:
        headers.append((b"x-amzn-errortype", error_code.encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
