"""CloudWatch metric alarms, in both wire forms botocore's ``cloudwatch`` client may use.

An UpdateEndpoint's ``AutoRollbackConfiguration`` names CloudWatch alarms, and users create those with
``boto3.client("cloudwatch")``. CloudWatch's model offers three protocols; botocore picks the first
it ranks highest, and 1.43 picks JSON 1.0 (``POST /``, ``X-Amz-Target:
GraniteServiceVersion20100801.<Operation>``). Smithy RPC v2 CBOR, the model's own first choice, is
served too (``POST /service/GraniteServiceVersion20100801/operation/<Operation>``, ``smithy-protocol:
rpc-v2-cbor``, CBOR bodies, timestamps as CBOR tag 1 in epoch seconds, and an empty body for
operations without output), so a client that prefers it works the same.

PutMetricAlarm, DescribeAlarms, DeleteAlarms and SetAlarmState are one call each into
``platform.alarms``, made the way the in-process ``forgeml.sdk.cloudwatch.CloudWatchClient`` makes
them; the service validates. A CBOR request is decoded to the plain values a JSON one carries
(timestamps as epoch seconds, byte strings as base64 text); both are typed against botocore's model.

CloudWatch is query-compatible: its clients send ``x-amzn-query-mode: true`` and read the error code
from ``x-amzn-query-error``, so a ``ValidationException`` reaches the user as ``ValidationError``,
the code CloudWatch has always used. Errors carry the status CloudWatch's model gives their code
(``ResourceNotFound`` is 404); bodies are ``{"__type", "message"}`` in the request's encoding
(``server.errors.error_response``).
"""

from __future__ import annotations

import base64
import io
import logging
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import cbor2

from forgeml.errors import ForgeMLError
from forgeml.server import json_protocol
from forgeml.server.errors import (
    CBOR_CONTENT_TYPE,
    JSON,
    JSON_QUERY,
    RPC_V2_CBOR,
    SMITHY_PROTOCOL_HEADER,
    error_response,
    header_value,
    protocol_of,
)
from forgeml.server.json_protocol import (
    INTERNAL_MESSAGE,
    MAX_BODY_BYTES,
    BodyTooLarge,
    Operation,
    Receive,
    RequestEntityTooLarge,
    Scope,
    Send,
    SerializationException,
    UnknownOperationException,
    operation_model,
    read_body,
    typed_request,
)
from forgeml.service.validation import Checker

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

#: CloudWatch's Smithy service name: the ``X-Amz-Target`` prefix and the RPC v2 path's service
SERVICE_NAME = "GraniteServiceVersion20100801"
MODEL_NAME = "cloudwatch"
RPC_PATH_PREFIX = f"/service/{SERVICE_NAME}/operation/"
JSON_CONTENT_TYPE = b"application/x-amz-json-1.0"
TIMESTAMP_TAG = 1

Headers = list[tuple[bytes, bytes]]

log = logging.getLogger("forgeml.server")


def _delete_alarms(platform: Platform, request: dict[str, Any]) -> None:
    _only_members(request, ("AlarmNames",))
    names: Any = request.get("AlarmNames")  # absent or mistyped: the service says so
    platform.alarms.delete_alarms(names)


def _set_alarm_state(platform: Platform, request: dict[str, Any]) -> None:
    """StateReasonData (JSON for humans) is accepted and not kept, as in process."""
    _only_members(request, ("AlarmName", "StateValue", "StateReason", "StateReasonData"))
    name: Any = request.get("AlarmName")  # absent or mistyped: the service says so
    state: Any = request.get("StateValue")
    reason: Any = request.get("StateReason")
    platform.alarms.set_alarm_state(name, state, reason)


def _only_members(request: Mapping[str, Any], members: tuple[str, ...]) -> None:
    """Services that take bare arguments cannot name unknown members themselves: refuse them here."""
    check = Checker()
    check.unknown_members(request, "", members)
    check.raise_if_any()


OPERATIONS: dict[str, Operation] = {
    "PutMetricAlarm": lambda p, r: p.alarms.put_metric_alarm(r),
    "DescribeAlarms": lambda p, r: p.alarms.describe_alarms(**r),
    "DeleteAlarms": _delete_alarms,
    "SetAlarmState": _set_alarm_state,
}


# -- CBOR ----------------------------------------------------------------------------------------


def decode_cbor(body: bytes) -> dict[str, Any]:
    """The request map as plain values; an empty body is ``{}`` (an input with no members)."""
    if not body:
        return {}
    stream = io.BytesIO(body)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORError, ValueError, OverflowError, RecursionError) as exc:
        raise SerializationException(f"The request body is not valid CBOR: {exc}") from None
    if stream.tell() != len(body):
        raise SerializationException(f"The request body has {len(body) - stream.tell()} bytes after its CBOR item")
    if not isinstance(value, dict):
        raise SerializationException(f"The request body must be a CBOR map, not {type(value).__name__}")
    plain: dict[str, Any] = _plain(value, "")
    return plain


def _plain(value: Any, path: str) -> Any:
    """What the JSON form would have carried: datetimes as epoch seconds, bytes as base64 text."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationException(f"Map keys must be text strings; '{path or 'input'}' has the key {key!r}")
            result[key] = _plain(item, f"{path}.{key}" if path else key)
        return result
    if isinstance(value, list):
        return [_plain(item, f"{path}.{index + 1}") for index, item in enumerate(value)]
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise SerializationException(f"The CBOR item at '{path or 'input'}' is a {type(value).__name__}, which "
                                 "RPC v2 CBOR does not use (tags other than 1, simple values, undefined)")


def to_cbor_wire(value: Any) -> Any:
    """A service answer ready for CBOR: datetimes as tag-1 epoch seconds, None members dropped."""
    if isinstance(value, Mapping):
        return {key: to_cbor_wire(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [to_cbor_wire(item) for item in value]
    if isinstance(value, datetime):
        return cbor2.CBORTag(TIMESTAMP_TAG, value.timestamp())
    if isinstance(value, date):
        return cbor2.CBORTag(TIMESTAMP_TAG, datetime(value.year, value.month, value.day).timestamp())
    return value


# -- one request ---------------------------------------------------------------------------------


def _rpc_operation(path: str) -> str:
    """The operation a ``/service/<Service>/operation/<Operation>`` path names, if the service is CloudWatch."""
    parts = path.split("/")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "service" or parts[3] != "operation" or not parts[4]:
        raise UnknownOperationException(f"'{path}' is not an RPC v2 operation: POST "
                                        "/service/<Service>/operation/<Operation>")
    if parts[2] != SERVICE_NAME:
        raise UnknownOperationException(f"Unknown service '{parts[2]}'; this server serves {SERVICE_NAME} "
                                        "(CloudWatch) over RPC v2 CBOR")
    return parts[4]


def _json_operation(target: str) -> str:
    prefix, name = json_protocol.parse_target(target)
    if prefix != SERVICE_NAME:
        raise UnknownOperationException(f"Unknown service in X-Amz-Target '{target}'")
    return name


def _served(name: str) -> Operation:
    operation = OPERATIONS.get(name)
    if operation is not None:
        return operation
    if operation_model(MODEL_NAME, name) is not None:
        raise UnknownOperationException(f"forgeml does not serve CloudWatch's {name}; the operations it serves are: "
                                        f"{', '.join(sorted(OPERATIONS))}")
    raise UnknownOperationException(f"Unknown operation {SERVICE_NAME}.{name}")


def _modeled_status(operation: str | None, code: str, default: int) -> int:
    """The HTTP status CloudWatch's model gives ``code`` for this operation (ResourceNotFound: 404)."""
    model = operation_model(MODEL_NAME, operation) if operation else None
    for shape in model.error_shapes if model is not None else ():
        error = shape.metadata.get("error") or {}
        if error.get("code", shape.name) == code and error.get("httpStatusCode"):
            return int(error["httpStatusCode"])
    return default


def _ok(protocol: str, operation: str, result: Mapping[str, Any] | None) -> tuple[int, Headers, bytes]:
    request_id = (b"x-amzn-requestid", str(uuid.uuid4()).encode())
    if protocol != RPC_V2_CBOR:
        body = json_protocol.encode(result)
        return 200, [(b"content-type", JSON_CONTENT_TYPE), (b"content-length", str(len(body)).encode()),
                     request_id], body
    has_output = operation_model(MODEL_NAME, operation).output_shape is not None
    body = cbor2.dumps(to_cbor_wire(result or {})) if has_output else b""
    headers = [(SMITHY_PROTOCOL_HEADER, b"rpc-v2-cbor"), (b"content-length", str(len(body)).encode()), request_id]
    if body:
        headers.append((b"content-type", CBOR_CONTENT_TYPE))
    return 200, headers, body


def _refusal(protocol: str, error: ForgeMLError, operation: str | None = None) -> tuple[int, Headers, bytes]:
    status = _modeled_status(operation, error.code, error.http_status)
    return error_response(protocol, status, error.code, error.message)


class CloudWatchApi:
    """Serves CloudWatch's alarm operations; ``handle`` is the whole protocol, minus HTTP."""

    def __init__(self, platform: Platform, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.platform = platform
        self.max_body_bytes = max_body_bytes

    def load_models(self) -> None:
        """Read botocore's CloudWatch model now rather than in the first request."""
        operation_model(MODEL_NAME, "PutMetricAlarm")

    def handle(self, protocol: str, where: str, body: bytes) -> tuple[int, Headers, bytes]:
        """Decode, call one operation, encode: the HTTP status, headers and body.

        ``protocol`` is ``rpc-v2-cbor`` (``where`` is the path), or ``json``/``json-query`` (``where``
        is the ``X-Amz-Target``).
        """
        name: str | None = None
        try:
            name = _rpc_operation(where) if protocol == RPC_V2_CBOR else _json_operation(where)
            operation = _served(name)
            decoded = decode_cbor(body) if protocol == RPC_V2_CBOR else json_protocol.decode(body)
            result = operation(self.platform, typed_request(MODEL_NAME, name, decoded))
            return _ok(protocol, name, result)
        except ForgeMLError as error:
            return _refusal(protocol, error, name)
        except Exception:
            log.exception("internal error serving CloudWatch %s", name or where)
            return error_response(protocol, 500, "InternalFailure", INTERNAL_MESSAGE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        protocol = protocol_of(scope)
        if protocol not in (JSON, JSON_QUERY, RPC_V2_CBOR):  # mounted on its own, not behind create_app's routing
            protocol = RPC_V2_CBOR
        if scope["method"] != "POST":
            await _send(send, *_refusal(protocol, UnknownOperationException(
                f"{scope['method']} is not how CloudWatch operations are called: POST "
                f"{RPC_PATH_PREFIX}<Operation>, or POST / with X-Amz-Target")))
            return
        try:
            body = await read_body(scope, receive, self.max_body_bytes)
        except BodyTooLarge as refused:
            status, headers, payload = _refusal(protocol, RequestEntityTooLarge(
                f"The request body is larger than {self.max_body_bytes} bytes"))
            if not refused.drained:
                headers = [*headers, (b"connection", b"close")]
            await _send(send, status, headers, payload)
            return
        except ConnectionAbortedError:
            return
        where = str(scope["path"]) if protocol == RPC_V2_CBOR else header_value(scope["headers"], b"x-amz-target")
        await _send(send, *await anyio.to_thread.run_sync(self.handle, protocol, where or "", body))


def serves(scope: Scope) -> bool:
    """Whether a JSON request is CloudWatch's (its ``X-Amz-Target`` names CloudWatch's service)."""
    target = header_value(scope.get("headers") or [], b"x-amz-target") or ""
    return target.startswith(f"{SERVICE_NAME}.")


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
