"""The endpoint router: SageMaker's runtime path in front of an endpoint's model-server workers.

``POST /endpoints/{name}/invocations`` (and ``POST /invocations``) picks a variant (weights, the
``X-Amzn-SageMaker-Target-Variant`` header, or the bandit), picks the least busy instance of it,
forwards the body with ``Content-Type``, ``Accept``, custom attributes and inference id, and answers
with the worker's body plus ``X-Amzn-Invoked-Production-Variant``. A worker's non-2xx answer becomes
SageMaker's ``ModelError`` (HTTP 424); a worker that died before answering has the request retried
on another instance (or on its replacement, for a few seconds). Each request is counted in its
variant's metrics (alarms, autoscaling), offered to data capture, and copied to shadow variants in
the background. ``POST /endpoints/{name}/feedback`` takes bandit rewards.

The host thread swaps ``RouterApp.table`` (an immutable ``RoutingTable``) whenever the fleet changes:
the request path reads one attribute and never locks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from forgeml.hosting.bandit import FeedbackLog, ThompsonSampling
from forgeml.hosting.capture import CaptureWriter
from forgeml.hosting.metrics import InvocationMetrics
from forgeml.hosting.upstream import UpstreamError, UpstreamPool, UpstreamResponse, UpstreamTimeout

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
#: how long a request waits for a replacement when every instance of its variant has died
REPLACEMENT_WAIT_SECONDS = 5.0
MODEL_TIMEOUT_SECONDS = 60.0

CONTENT_TYPE = b"content-type"
ACCEPT = b"accept"
CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
INFERENCE_ID = b"x-amzn-sagemaker-inference-id"
TARGET_VARIANT = b"x-amzn-sagemaker-target-variant"
INVOKED_VARIANT = b"x-amzn-invoked-production-variant"
JSON_TYPE = b"application/json"

log = logging.getLogger("forgeml.hosting")


@dataclass(frozen=True, eq=False)
class Target:
    """One instance of a variant: a worker process reached through its connection pool."""

    instance_id: str
    pool: UpstreamPool


@dataclass(frozen=True, eq=False)
class Route:
    """A variant as the router sees it: its instances and where its invocations are counted."""

    name: str
    targets: tuple[Target, ...]
    metrics: InvocationMetrics
    rotation: itertools.count[int] = field(default_factory=itertools.count)

    def pick(self, exclude: set[str]) -> Target | None:
        """The instance with the fewest requests in flight, rotating among equals."""
        targets = self.targets
        if len(targets) == 1:
            only = targets[0]
            return None if only.instance_id in exclude else only
        start = next(self.rotation) % max(len(targets), 1)
        best: Target | None = None
        for offset in range(len(targets)):
            candidate = targets[(start + offset) % len(targets)]
            if candidate.instance_id in exclude:
                continue
            if best is None or candidate.pool.in_flight < best.pool.in_flight:
                best = candidate
        return best


class Fleet:
    """The production variants of one endpoint config, with their traffic weights."""

    __slots__ = ("routes", "weights", "_by_name", "_cumulative")

    def __init__(self, routes: tuple[Route, ...], weights: tuple[float, ...]) -> None:
        self.routes = routes
        self.weights = weights
        self._by_name = {r.name: r for r in routes}
        total = sum(weights)
        self._cumulative = tuple(itertools.accumulate(w / total for w in weights)) if total > 0 else ()

    def route(self, name: str) -> Route | None:
        return self._by_name.get(name)

    def choose(self, draw: float) -> Route:
        """The variant for a uniform draw in [0, 1): traffic share = weight / sum of weights."""
        for route, edge in zip(self.routes, self._cumulative, strict=False):
            if draw < edge:
                return route
        return self.routes[-1]


@dataclass(frozen=True, eq=False)
class RoutingTable:
    """Everything a request needs, swapped whole by the host.

    During a blue/green update ``green`` receives ``green_fraction`` of the traffic.
    """

    blue: Fleet
    shadows: tuple[Route, ...] = ()
    green: Fleet | None = None
    green_fraction: float = 0.0
    bandit: ThompsonSampling | None = None
    capture: CaptureWriter | None = None


class RouterApp:
    """The ASGI app serving one endpoint's runtime API."""

    def __init__(self, endpoint_name: str, *, region: str, account_id: str) -> None:
        self.endpoint_name = endpoint_name
        self.account_id = account_id
        self._path = f"/endpoints/{endpoint_name}/invocations"
        self._feedback_path = f"/endpoints/{endpoint_name}/feedback"
        self._log_group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
        self._log_arn = f"arn:aws:logs:{region}:{account_id}:log-group:{self._log_group}"
        self.table: RoutingTable | None = None
        self.feedback = FeedbackLog()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._random = random.random
        self._background: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if method == "POST" and (path == self._path or path == "/invocations"):
                await self._invoke(scope, receive, send)
            elif method == "POST" and path == self._feedback_path:
                await self._feedback(receive, send)
            elif path == "/ping" and method in ("GET", "HEAD"):
                await _respond(send, 200 if self.table is not None else 503, b"", [])
            elif path.startswith("/endpoints/") and path.endswith("/invocations"):
                name = path[len("/endpoints/"):-len("/invocations")]
                await self._error(send, 400, "ValidationError",
                                  f"Endpoint {name} of account {self.account_id} not found.")
            else:
                await self._error(send, 404, "UnknownOperationException", f"{method} {path} is not an operation "
                                  "of this endpoint (POST /endpoints/{name}/invocations)")
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.loop = asyncio.get_running_loop()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    # -- invocations ------------------------------------------------------------------------------
    async def _invoke(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = time.perf_counter()
        forwarded: list[tuple[bytes, bytes]] = []
        content_type: bytes | None = None
        target_variant: bytes | None = None
        inference_id: bytes | None = None
        declared = -1
        for name, value in scope["headers"]:
            if name == CONTENT_TYPE:
                content_type = value
                forwarded.append((name, value))
            elif name in (ACCEPT, CUSTOM_ATTRIBUTES):
                forwarded.append((name, value))
            elif name == INFERENCE_ID:
                inference_id = value
                forwarded.append((name, value))
            elif name == TARGET_VARIANT:
                target_variant = value
            elif name == b"content-length":
                declared = int(value) if value.isdigit() else -1
        if declared > MAX_PAYLOAD_BYTES:
            await self._too_large(send, declared)
            return
        body = await _read_body(receive)
        if body is None:
            return
        if len(body) > MAX_PAYLOAD_BYTES:
            await self._too_large(send, len(body))
            return
        table = self.table
        if table is None:
            await self._error(send, 429, "ModelNotReadyException",
                              f"Endpoint {self.endpoint_name} is not ready to serve requests yet.")
            return
        route = self._choose(table, target_variant)
        if route is None:
            await self._error(send, 400, "ValidationError", f"Endpoint {self.endpoint_name} does not have a variant "
                              f"named {target_variant.decode('latin-1') if target_variant else ''}.")
            return
        sent = time.perf_counter()
        try:
            response = await self._forward(route, forwarded, body)
        except UpstreamTimeout:
            route.metrics.record(504, (time.perf_counter() - sent) * 1e6, 0.0)
            await self._model_error(send, 0, f"could not get a response from the model within "
                                             f"{MODEL_TIMEOUT_SECONDS:g} seconds", route.name)
            return
        except UpstreamError as exc:
            route.metrics.record(503, 0.0, (time.perf_counter() - received) * 1e6)
            await self._error(send, 503, "ServiceUnavailable", f"Variant {route.name} of endpoint "
                              f"{self.endpoint_name} has no live instance to serve the request ({exc}); retry.")
            return
        answered = time.perf_counter()
        status = response.status
        variant = route.name.encode()
        if 200 <= status < 300:
            headers = [(INVOKED_VARIANT, variant)]
            answer_type = response.header(CONTENT_TYPE)
            if answer_type is not None:
                headers.append((CONTENT_TYPE, answer_type))
            attributes = response.header(CUSTOM_ATTRIBUTES)
            if attributes is not None:
                headers.append((CUSTOM_ATTRIBUTES, attributes))
            await _respond(send, 200, response.body, headers)
        else:
            await self._model_error(send, status, response.body.decode("utf-8", "replace"), route.name)
        route.metrics.record(status, (answered - sent) * 1e6, (sent - received + time.perf_counter() - answered) * 1e6)
        capture = table.capture
        sampled = capture is not None and capture.sampled()
        if sampled and capture is not None:
            capture.add(route.name, body, _text(content_type), response.body if status < 300 else None,
                        _text(response.header(CONTENT_TYPE)), inference_id=_text(inference_id))
        if table.bandit is not None and inference_id is not None:
            self.feedback.remember(inference_id.decode("latin-1"), route.name)
        for shadow in table.shadows:
            self._spawn(self._shadow(shadow, forwarded, body, content_type, inference_id, capture if sampled else None))

    def _choose(self, table: RoutingTable, target_variant: bytes | None) -> Route | None:
        fleet = table.blue
        if table.green is not None and self._random() < table.green_fraction:
            fleet = table.green
        if target_variant is not None:
            name = target_variant.decode("latin-1")
            route = fleet.route(name)
            if route is None and table.green is not None:
                route = (table.blue if fleet is table.green else table.green).route(name)
            return route
        if table.bandit is not None and fleet is table.blue:
            return fleet.route(table.bandit.choose()) or fleet.choose(self._random())
        return fleet.choose(self._random())

    async def _forward(self, route: Route, headers: list[tuple[bytes, bytes]], body: bytes) -> UpstreamResponse:
        """Send to an instance of the variant; retry elsewhere when one dies before answering."""
        tried: set[str] = set()
        deadline = time.monotonic() + REPLACEMENT_WAIT_SECONDS
        while True:
            target = route.pick(tried)
            if target is None:
                if time.monotonic() > deadline:
                    raise UpstreamError(f"every instance of {route.name} failed")
                await asyncio.sleep(0.05)  # the host replaces dead workers: look at the newest table
                route = self._current_route(route)
                tried = {t for t in tried if any(t == r.instance_id for r in route.targets)}
                continue
            try:
                return await target.pool.request(b"POST", b"/invocations", headers, body, MODEL_TIMEOUT_SECONDS)
            except UpstreamTimeout:
                raise
            except UpstreamError as exc:
                if not exc.retryable:
                    raise
                log.warning("instance %s of %s failed (%s); retrying elsewhere", target.instance_id, route.name, exc)
                tried.add(target.instance_id)

    def _current_route(self, route: Route) -> Route:
        table = self.table
        if table is None:
            return route
        for fleet in (table.blue, table.green):
            found = fleet.route(route.name) if fleet is not None else None
            if found is not None and found.metrics is route.metrics:
                return found
        for shadow in table.shadows:
            if shadow.name == route.name:
                return shadow
        return route

    async def _shadow(self, route: Route, headers: list[tuple[bytes, bytes]], body: bytes, content_type: bytes | None,
                      inference_id: bytes | None, capture: CaptureWriter | None) -> None:
        """A copy of the request for a shadow variant: measured and captured, never returned."""
        sent = time.perf_counter()
        try:
            response = await self._forward(route, headers, body)
        except UpstreamError as exc:
            route.metrics.record(503, 0.0, 0.0)
            log.info("shadow variant %s did not answer: %s", route.name, exc)
            return
        route.metrics.record(response.status, (time.perf_counter() - sent) * 1e6, 0.0)
        if capture is not None:
            capture.add(route.name, body, _text(content_type), response.body if response.status < 300 else None,
                        _text(response.header(CONTENT_TYPE)), inference_id=_text(inference_id))

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- bandit feedback ----------------------------------------------------------------------
    async def _feedback(self, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        table = self.table
        if body is None:
            return
        try:
            feedback = json.loads(body)
            reward = float(feedback["Reward"])
        except (ValueError, KeyError, TypeError):
            await self._error(send, 400, "ValidationError", 'The feedback body must be JSON with a numeric "Reward" '
                              'and an "InferenceId" or a "VariantName".')
            return
        if table is None or table.bandit is None:
            await self._error(send, 400, "ValidationError", f"Endpoint {self.endpoint_name} does not use bandit "
                              "routing (tag its endpoint config with forgeml:routing=bandit).")
            return
        variant = feedback.get("VariantName")
        if variant is None and feedback.get("InferenceId") is None:
            await self._error(send, 400, "ValidationError", 'The feedback must name the request ("InferenceId") or '
                              'the variant ("VariantName") it rewards.')
            return
        if variant is None:
            variant = self.feedback.variant_for(str(feedback["InferenceId"]))
            if variant is None:
                await self._error(send, 400, "ValidationError", f"No recent request had the inference id "
                                  f"{feedback['InferenceId']}.")
                return
        try:
            table.bandit.reward(str(variant), reward)
        except ValueError as exc:
            await self._error(send, 400, "ValidationError", str(exc))
            return
        await _respond(send, 200, json.dumps({"VariantName": variant}).encode(), [(CONTENT_TYPE, JSON_TYPE)])

    # -- errors -------------------------------------------------------------------------------
    async def _model_error(self, send: Send, status: int, message: str, variant: str) -> None:
        kind = "client" if 400 <= status < 500 else "server"
        text = (f"Received {kind} error ({status}) from model with message \"{message}\". See the log group "
                f"{self._log_group} (variant {variant}) for more information.")
        payload = {"ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL", "Message": text, "OriginalStatusCode": status,
                   "OriginalMessage": message, "LogStreamArn": self._log_arn}
        await _respond(send, 424, json.dumps(payload).encode(),
                       [(CONTENT_TYPE, JSON_TYPE), (b"x-amzn-errortype", b"ModelError"),
                        (INVOKED_VARIANT, variant.encode())])

    async def _too_large(self, send: Send, size: int) -> None:
        await self._error(send, 400, "ValidationError", f"1 validation error detected: Value at 'body' failed to "
                          f"satisfy constraint: Member must have length less than or equal to {MAX_PAYLOAD_BYTES} "
                          f"(the body has {size} bytes)")

    async def _error(self, send: Send, status: int, code: str, message: str) -> None:
        await _respond(send, status, json.dumps({"message": message}).encode(),
                       [(CONTENT_TYPE, JSON_TYPE), (b"x-amzn-errortype", code.encode())])


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"x-amzn-requestid", uuid.uuid4().hex.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes | None:
    """The request body (stopping early past the payload limit); None if the client went away."""
    message = await receive()
    if message["type"] != "http.request":
        return None
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False) and size <= MAX_PAYLOAD_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
    return b"".join(chunks)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
