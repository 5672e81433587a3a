"""The SageMaker runtime on the server: ``POST /endpoints/{name}/invocations`` (and ``/feedback``).

Each endpoint's router (``forgeml.hosting.router``) already speaks the sagemaker-runtime protocol,
errors included (``ModelError`` 424 with ``OriginalStatusCode``, ``ValidationError`` ...), so the
proxy only finds the router and forwards: method, path, body, ``Content-Type``, ``Accept`` and the
``X-Amzn-SageMaker-*`` headers go out; the router's status, headers and body come back as they are.

Routers are reached over kept-alive connections (``UpstreamPool``, one per router URL). A router's
URL is cached for a couple of seconds; when its router stops answering (the host restarted on a
new port, or the endpoint is gone) the pool is dropped and the URL read again, once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import anyio.to_thread

from forgeml.errors import ForgeMLError, RuntimeValidationError, ServiceUnavailable, ValidationException
from forgeml.hosting.upstream import UpstreamError, UpstreamPool, UpstreamResponse, UpstreamTimeout
from forgeml.server.errors import REST_JSON, error_response
from forgeml.server.json_protocol import BodyTooLarge, read_body
from forgeml.service.names import NAME_PATTERN
from forgeml.service.validation import Checker

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
OPERATIONS = ("invocations", "feedback")
#: the model has 60 s (the router's own limit); the proxy waits a little longer for the router's answer
UPSTREAM_TIMEOUT_SECONDS = 70.0
URL_TTL_SECONDS = 2.0
_FORWARDED = (b"content-type", b"accept")
_SAGEMAKER_HEADER = b"x-amzn-sagemaker-"
#: headers that describe one connection or one message's framing, which the server writes itself
_NOT_RETURNED = frozenset({b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"date",
                           b"server"})

log = logging.getLogger("forgeml.server")


class RuntimeProxy:
    """The ASGI app for ``/endpoints/...``; ``close`` (at shutdown) closes the routers' connections."""

    def __init__(self, platform: Platform, *, url_ttl: float = URL_TTL_SECONDS,
                 timeout: float = UPSTREAM_TIMEOUT_SECONDS) -> None:
        self.platform = platform
        self.url_ttl = url_ttl
        self.timeout = timeout
        self._urls: dict[str, tuple[str, float]] = {}
        self._pools: dict[str, UpstreamPool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            name, operation = self._operation(scope)
            body = await read_body(scope, receive, MAX_PAYLOAD_BYTES)
            headers = [(key, value) for key, value in scope["headers"]
                       if key in _FORWARDED or key.startswith(_SAGEMAKER_HEADER)]
            response = await self._forward(name, f"/endpoints/{name}/{operation}".encode(), headers, body)
        except ForgeMLError as error:
            await _send_error(send, error.http_status, error.code, error.message)
            return
        except BodyTooLarge as refused:
            await _send_error(send, 400, "ValidationError", "1 validation error detected: Value at 'body' failed to "
                              "satisfy constraint: Member must have length less than or equal to "
                              f"{MAX_PAYLOAD_BYTES}", close=not refused.drained)
            return
        except ConnectionAbortedError:
            return
        headers = [(key, value) for key, value in response.headers if key not in _NOT_RETURNED]
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def close(self) -> None:
        pools = list(self._pools.values())
        self._pools.clear()
        self._urls.clear()
        for pool in pools:
            await pool.close()

    # -- request ------------------------------------------------------------------------------------

    def _operation(self, scope: Scope) -> tuple[str, str]:
        """(endpoint name, operation), from the path as sent: an encoded ``/`` stays inside the name."""
        raw = scope.get("raw_path")
        path = bytes(raw).split(b"?", 1)[0].decode("latin-1") if raw else quote(scope["path"])
        parts = [unquote(part) for part in path.split("/")]
        if scope["method"] != "POST" or len(parts) != 4 or parts[1] != "endpoints" or parts[3] not in OPERATIONS:
            error = ForgeMLError(f"{scope['method']} {scope['path']} is not a runtime operation; the runtime serves "
                                 "POST /endpoints/{EndpointName}/invocations")
            error.code, error.http_status = "UnknownOperationException", 404
            raise error
        name = parts[2]
        check = Checker()
        check.string(name, "EndpointName", min_len=1, max_len=63, pattern=NAME_PATTERN)
        if check.errors:
            raise RuntimeValidationError(f"1 validation error detected: {check.errors[0]}")
        return name, parts[3]

    # -- forwarding ---------------------------------------------------------------------------------

    async def _forward(self, name: str, path: bytes, headers: list[tuple[bytes, bytes]],
                       body: bytes) -> UpstreamResponse:
        """Send to the endpoint's router; a router that does not answer gets one retry at a fresh URL."""
        for attempt in range(2):
            url = await self._router_url(name, fresh=attempt > 0)
            pool = self._pools.get(url)
            if pool is None:
                pool = self._pools[url] = UpstreamPool(url)
            try:
                return await pool.request(b"POST", path, headers, body, self.timeout)
            except UpstreamTimeout:
                raise ServiceUnavailable(f"Endpoint {name} did not answer within {self.timeout:g} s.") from None
            except UpstreamError as exc:
                # refused or cut off: the host may have restarted on another port, or the endpoint is gone
                log.info("router of endpoint %s at %s did not answer: %s", name, url, exc)
                if self._pools.get(url) is pool:
                    del self._pools[url]
                    await pool.close()
                self._urls.pop(name, None)
        raise ServiceUnavailable(f"Endpoint {name} did not answer; its host may be restarting. Retry shortly.")

    async def _router_url(self, name: str, *, fresh: bool) -> str:
        cached = self._urls.get(name)
        now = time.monotonic()
        if cached is not None and not fresh and cached[1] > now:
            return cached[0]
        url = await anyio.to_thread.run_sync(self._lookup, name)
        self._urls[name] = (url, time.monotonic() + self.url_ttl)
        return url

    def _lookup(self, name: str) -> str:
        """The router's URL, or the runtime's ValidationError for a missing or not-serving endpoint."""
        account = self.platform.config.account_id
        endpoints = self.platform.endpoints
        try:
            url = endpoints.router_url(name)
            if url is not None:
                return url
            status = endpoints.describe_endpoint(name)["EndpointStatus"]
        except ValidationException:
            raise RuntimeValidationError(f"Endpoint {name} of account {account} not found.") from None
        raise RuntimeValidationError(f"Endpoint {name} of account {account} is not in service (its status is "
                                     f"{status}).")


async def _send_error(send: Send, status: int, code: str, message: str, *, close: bool = False) -> None:
    status, headers, body = error_response(REST_JSON, status, code, message)
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
