"""The forgeml server's ASGI application: one app in front of every service it speaks.

``create_app(platform)`` routes each request by the AWS protocol it uses (``server.errors.protocol_of``):

* ``GET /health``: ``{"status": "ok", "version": ...}``, never authenticated (the path is reserved:
  other methods are refused there, so no unauthenticated request reaches another service);
* ``POST /`` with ``X-Amz-Target``: the JSON services, by target prefix: SageMaker
  (``SageMaker.``), CloudWatch Logs (``Logs_20140328.``), Application Auto Scaling
  (``AnyScaleFrontendService.``), CloudWatch alarms (``GraniteServiceVersion20100801.``, JSON 1.0);
* ``POST /service/GraniteServiceVersion20100801/operation/<Operation>`` with ``smithy-protocol:
  rpc-v2-cbor``: CloudWatch alarms in Smithy RPC v2 CBOR;
* ``POST /endpoints/{name}/invocations``: the SageMaker runtime (forwarded to the endpoint's router);
* ``POST /`` with a form body: STS;
* everything else: S3 (path-style).

With ``auth`` on, every request but ``/health`` must be signed (AWS Signature Version 4) with a key
of the platform's key store; the first start creates one and writes ``$FORGEML_HOME/credentials``.
One line per request goes to the ``forgeml.server`` logger at INFO (method, path or operation,
status, milliseconds); bodies, headers and keys are never logged.

``app_from_env`` is the factory ``forgeml server --workers N`` gives uvicorn, so each worker process
builds its own app over ``Platform.get()``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio.to_thread

import forgeml
from forgeml.server import autoscaling_api, cloudwatch_api, logs_api, sagemaker_api
from forgeml.server.errors import (
    JSON,
    JSON_QUERY,
    QUERY,
    REST_JSON,
    REST_XML,
    RPC_V2_CBOR,
    protocol_of,
    send_error,
)
from forgeml.server.json_protocol import JsonApi
from forgeml.server.runtime_proxy import RuntimeProxy

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: set to "0" in the environment of ``app_from_env``'s processes to serve without authentication
AUTH_ENV = "FORGEML_SERVER_AUTH"
HEALTH_PATH = "/health"

log = logging.getLogger("forgeml.server")


class ForgeMLServer:
    """Routes a request to the app for its protocol; closes the runtime's connections at shutdown."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.json = JsonApi(platform, [sagemaker_api.SERVICE, logs_api.SERVICE, autoscaling_api.SERVICE])
        self.cloudwatch = cloudwatch_api.CloudWatchApi(platform)
        self.runtime = RuntimeProxy(platform)
        self.s3 = _optional_app("forgeml.server.s3", "create_s3_app", platform, REST_XML)
        self.sts = _optional_app("forgeml.server.sts", "create_sts_app", platform, QUERY)
        self._health = json.dumps({"status": "ok", "version": forgeml.__version__}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        if scope["path"] == HEALTH_PATH:
            # the path is the server's own, whatever the method: it skips authentication, so it must
            # never reach S3 (a bucket called "health" is not addressable path-style)
            await self._send_health(scope, send)
            return
        protocol = protocol_of(scope)
        if protocol == RPC_V2_CBOR or (protocol in (JSON, JSON_QUERY) and cloudwatch_api.serves(scope)):
            await self.cloudwatch(scope, receive, send)
        elif protocol in (JSON, JSON_QUERY):
            await self.json(scope, receive, send)
        elif protocol == REST_JSON:
            await self.runtime(scope, receive, send)
        elif protocol == QUERY:
            await self.sts(scope, receive, send)
        else:
            await self.s3(scope, receive, send)

    async def _send_health(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_error(send, JSON, 405, "MethodNotAllowed", f"{HEALTH_PATH} answers GET and HEAD only")
            return
        body = b"" if scope["method"] == "HEAD" else self._health
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self._health)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await anyio.to_thread.run_sync(self.json.load_models)
                await anyio.to_thread.run_sync(self.cloudwatch.load_models)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _optional_app(module: str, factory: str, platform: Platform, protocol: str) -> ASGIApp:
    """The S3 or STS app; while its module is not installed, an app that says so in the protocol's shape."""
    import importlib

    try:
        create = getattr(importlib.import_module(module), factory)
    except (ImportError, AttributeError):
        log.warning("%s is not available: its requests are answered 501", module)

        async def unavailable(scope: Scope, receive: Receive, send: Send) -> None:
            await send_error(send, protocol, 501, "NotImplemented",
                             f"This server does not serve {scope['method']} {scope['path']} ({module} is missing).",
                             head=scope["method"] == "HEAD")

        return unavailable
    app: ASGIApp = create(platform)
    return app


class RequestLog:
    """One INFO line per request: method, path (or ``X-Amz-Target``), status and milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info("%s %s %s %.1f ms", scope["method"], _what(scope), status or "-",
                         (time.perf_counter() - started) * 1000)


def _what(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-amz-target":
            return value.decode("latin-1")
    return str(scope["path"])


def create_app(platform: Platform, *, auth: bool = True) -> ASGIApp:
    """The server's ASGI app over ``platform``; with ``auth``, requests must be signed with a key it knows."""
    app: ASGIApp = ForgeMLServer(platform)
    if auth:
        from forgeml.server.auth import AuthMiddleware, KeyStore, SigV4Verifier

        keys = KeyStore(platform.config)
        keys.ensure_default()
        app = AuthMiddleware(app, SigV4Verifier(keys), exempt_paths=(HEALTH_PATH,))
    return RequestLog(app)


def app_from_env() -> ASGIApp:
    """uvicorn's factory for worker processes: the app over ``Platform.get()`` (FORGEML_HOME etc.)."""
    from forgeml.service.platform import Platform

    return create_app(Platform.get(), auth=os.environ.get(AUTH_ENV, "1") != "0")
