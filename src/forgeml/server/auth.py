"""The ASGI middleware that refuses unsigned or wrongly signed requests before any API app sees them.

It owns the transport side of authentication: buffering small bodies, hashing streamed S3 bodies
against their claimed ``x-amz-content-sha256`` and draining refused bodies so connections stay
usable.  The key store lives in ``forgeml.server.keys`` and the signature checks in
``forgeml.server.sigv4``; their names are re-exported here so ``forgeml.server.auth`` stays the one
import for everything authentication.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from forgeml.server.errors import (
    REST_XML,
    ClientGone,
    PayloadHashMismatch,
    header_value,
    protocol_of,
    send_error,
)
from forgeml.server.keys import CREDENTIALS_PROFILE, KeyStore
from forgeml.server.sigv4 import (
    AMZ_DATE_FORMAT,
    DEFAULT_SERVICES,
    HEX_DIGEST,
    LITERAL_PAYLOAD_HASHES,
    MAX_PRESIGN_EXPIRES,
    SCOPE_TERMINATOR,
    SIGNING_ALGORITHM,
    STREAMING_PAYLOADS,
    UNSIGNED_PAYLOAD,
    AuthError,
    Signature,
    SigV4Verifier,
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    refusal,
    signing_key,
    string_to_sign,
)

__all__ = [
    "AMZ_DATE_FORMAT",
    "CREDENTIALS_PROFILE",
    "DEFAULT_SERVICES",
    "DRAIN_LIMIT_BYTES",
    "LITERAL_PAYLOAD_HASHES",
    "MAX_BODY_BYTES",
    "MAX_PRESIGN_EXPIRES",
    "SCOPE_TERMINATOR",
    "SIGNING_ALGORITHM",
    "STREAMING_PAYLOADS",
    "UNSIGNED_PAYLOAD",
    "AuthError",
    "AuthMiddleware",
    "KeyStore",
    "Receive",
    "Send",
    "SigV4Verifier",
    "Signature",
    "canonical_headers",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "refusal",
    "signing_key",
    "string_to_sign",
]

MAX_BODY_BYTES = 16 * 1024 * 1024

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


#: a refused request's unread body up to this size is read and dropped, keeping the connection open
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024


class AuthMiddleware:
    """Verifies every request's signature before the wrapped app sees it.

    JSON, runtime and STS bodies are small: they are buffered (over ``max_body_bytes`` is 413)
    and verified whole.  S3 bodies can be large and are streamed: S3 clients sign the payload hash
    into ``x-amz-content-sha256``, so the headers are verified up front and, when that hash is a
    hex digest, the body is hashed as the app reads it; a mismatch raises ``PayloadHashMismatch``
    from ``receive`` at the last chunk so the S3 app can refuse without storing anything.
    On success ``scope["forgeml.access_key_id"]`` names the key.  ``verifier=None`` lets all through.
    """

    def __init__(self, app: Any, verifier: SigV4Verifier | None, *, exempt_paths: tuple[str, ...] = ("/health",),
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.verifier = verifier
        self.exempt_paths = exempt_paths
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        exempt = scope.get("path") in self.exempt_paths and scope.get("method") in ("GET", "HEAD")
        if scope["type"] != "http" or self.verifier is None or exempt:
            await self.app(scope, receive, send)
            return
        protocol = protocol_of(scope)
        if protocol == REST_XML and _streams_unbuffered(scope):
            await self._streamed(self.verifier, scope, receive, send)
        else:
            await self._buffered(self.verifier, scope, receive, send, protocol)

    async def _refuse(self, send: Send, scope: MutableMapping[str, Any], protocol: str, error: AuthError, *,
                      receive: Receive | None = None) -> None:
        """Answer ``error``; with ``receive``, the unread body is drained first so the connection stays usable
        (closed instead when the body is too big to be worth reading)."""
        drained = True if receive is None else await _drain(receive, DRAIN_LIMIT_BYTES)
        await send_error(send, protocol, error.status, error.code, error.message, head=scope["method"] == "HEAD",
                         close=not drained)

    async def _too_large(self, send: Send, scope: MutableMapping[str, Any], protocol: str, receive: Receive) -> None:
        code = "EntityTooLarge" if protocol == REST_XML else "RequestEntityTooLarge"
        await self._refuse(send, scope, protocol, AuthError(
            code, f"The request body is larger than the {self.max_body_bytes} bytes this server accepts.", 413),
            receive=receive)

    async def _read_body(self, scope: MutableMapping[str, Any], receive: Receive) -> bytes | None:
        """The whole body, or None when it is over the limit; ClientGone if the client disconnected."""
        declared = header_value(scope["headers"], b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _buffered(self, verifier: SigV4Verifier, scope: MutableMapping[str, Any], receive: Receive,
                        send: Send, protocol: str) -> None:
        try:
            body = await self._read_body(scope, receive)
        except ClientGone:
            return
        if body is None:
            await self._too_large(send, scope, protocol, receive)
            return
        try:
            scope["forgeml.access_key_id"] = verifier.verify(
                scope["method"], _raw_path(scope), scope.get("query_string", b""), scope["headers"], body)
        except AuthError as error:
            await self._refuse(send, scope, protocol, error)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _streamed(self, verifier: SigV4Verifier, scope: MutableMapping[str, Any], receive: Receive,
                        send: Send) -> None:
        try:
            scope["forgeml.access_key_id"] = verifier.verify(
                scope["method"], _raw_path(scope), scope.get("query_string", b""), scope["headers"], None)
        except AuthError as error:
            await self._refuse(send, scope, REST_XML, error, receive=receive)
            return
        claimed = (header_value(scope["headers"], b"x-amz-content-sha256") or "").strip()
        if not HEX_DIGEST.fullmatch(claimed):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _hashing_receive(receive, claimed.lower()), tracking_send)
        except PayloadHashMismatch as mismatch:
            if started:
                raise
            await send_error(send, REST_XML, mismatch.status, mismatch.code, mismatch.message,
                             head=scope["method"] == "HEAD")


async def _drain(receive: Receive, limit: int) -> bool:
    """Read and drop what is left of a request body; False if more than ``limit`` bytes remain (or it ended)."""
    size = 0
    while size <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return False
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


def _raw_path(scope: MutableMapping[str, Any]) -> bytes:
    raw = scope.get("raw_path")
    if raw:
        return bytes(raw).split(b"?", 1)[0]
    return quote(str(scope.get("path") or "/"), safe="/~!$&'()*+,;=:@").encode()


def _streams_unbuffered(scope: MutableMapping[str, Any]) -> bool:
    """S3 requests that carry their payload hash (or are presigned) never need the body to verify."""
    if header_value(scope["headers"], b"x-amz-content-sha256") is not None:
        return True
    return b"X-Amz-Signature=" in bytes(scope.get("query_string") or b"")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the already-read body, then defers to the real one."""
    delivered = False

    async def replay() -> Any:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _hashing_receive(receive: Receive, claimed: str) -> Receive:
    """A ``receive`` that hashes the body as it passes and raises PayloadHashMismatch at its end."""
    digest = hashlib.sha256()

    async def hashing() -> Any:
        message = await receive()
        if message["type"] == "http.request":
            digest.update(message.get("body", b""))
            if not message.get("more_body", False):
                computed = digest.hexdigest()
                if computed != claimed:
                    raise PayloadHashMismatch(claimed, computed)
        return message

    return hashing
