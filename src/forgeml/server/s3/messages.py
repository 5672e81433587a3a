"""An S3 request and response as the handlers see them, and how a response goes out over ASGI."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from starlette.types import Receive, Scope, Send

from forgeml.server.s3.constants import NEUTRAL_QUERY


@dataclass
class _Request:
    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]
    receive: Receive
    scheme: str

    @property
    def subresources(self) -> set[str]:
        return {name for name in self.query if name not in NEUTRAL_QUERY and not name.startswith("X-Amz-")}

    def location(self) -> str:
        host = self.headers.get("host", "localhost")
        return f"{self.scheme}://{host}/{self.bucket}/{quote(self.key, safe='/')}"


@dataclass
class _Response:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    stream: AsyncGenerator[bytes, None] | None = None
    length: int | None = None  # Content-Length of a streamed (or HEAD) body


_Handler = Callable[[_Request], Awaitable[_Response]]


def _request_headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers") or []:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


async def _send(send: Send, response: _Response, request_id: str, head: bool) -> None:
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
    if response.status not in (204, 304):
        length = response.length if response.length is not None else len(response.body)
        headers.append((b"content-length", str(length).encode()))
    headers.append((b"x-amz-request-id", request_id.encode()))
    headers.append((b"x-amz-id-2", base64.b64encode(uuid.uuid4().bytes).decode().encode()))
    stream = response.stream
    try:
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if stream is None or head:
            body = b"" if head or response.status in (204, 304) else response.body
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        async for block in stream:
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        if stream is not None:
            await stream.aclose()
