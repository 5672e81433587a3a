"""The S3 ASGI application: parse the request (path or virtual-host style), route it to its
handler by method and sub-resource, and turn every failure into S3's error answer.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forgeml.errors import ValidationException
from forgeml.server.errors import ClientGone, PayloadHashMismatch
from forgeml.server.s3.buckets import BucketHandlers
from forgeml.server.s3.constants import UNSUPPORTED_OPERATION_NAMES
from forgeml.server.s3.errors import S3Error, _invalid_argument, _not_implemented
from forgeml.server.s3.listing import ListingHandlers
from forgeml.server.s3.messages import _Handler, _Request, _request_headers, _Response, _send
from forgeml.server.s3.multipart import MultipartHandlers
from forgeml.server.s3.store import LocalObjectStore
from forgeml.server.s3.xml_wire import _error

if TYPE_CHECKING:
    from forgeml.service.platform import Platform


logger = logging.getLogger("forgeml.server.s3")


def _virtual_host_domains() -> tuple[str, ...]:
    configured = os.environ.get("FORGEML_S3_DOMAIN", "")
    return ("localhost", *(part.strip().lower() for part in configured.split(",") if part.strip()))


def _bucket_from_host(host: str, domains: tuple[str, ...]) -> str | None:
    """``{bucket}.localhost:port`` (or ``{bucket}.<FORGEML_S3_DOMAIN>``) names the bucket in the host."""
    hostname = host.lower()
    if hostname.startswith("["):
        return None  # an IPv6 literal never carries a bucket
    hostname = hostname.rsplit(":", 1)[0]
    for domain in domains:
        suffix = f".{domain}"
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            return hostname[: -len(suffix)]
    return None


def _request_id() -> str:
    return uuid.uuid4().hex[:16].upper()


def _operation_name(method: str, target: str, subresource: str) -> str:
    known = UNSUPPORTED_OPERATION_NAMES.get((method, target, subresource))
    if known:
        return known
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete", "HEAD": "Head", "POST": "Post"}.get(
        method, method
    )
    words = "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", subresource))
    return f"{verb}{target.capitalize()}{words}"


class _BodyTracker:
    """Wraps ``receive`` to know whether a request's declared body was read to its end."""

    def __init__(self, scope: Scope, receive: Receive) -> None:
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"0").strip()
        self._declared = b"transfer-encoding" in headers or (length.isdigit() and int(length) > 0)
        self._receive = receive
        self._finished = False

    @property
    def unread(self) -> bool:
        return self._declared and not self._finished

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            self._finished = True
        return message


class S3App(BucketHandlers, ListingHandlers, MultipartHandlers):
    """The S3 REST-XML subset as a raw ASGI application (see the module docstring)."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.store = LocalObjectStore(platform.config.local_s3_root, platform.config.region)
        self.account_id = platform.config.account_id
        self.domains = _virtual_host_domains()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request_id = _request_id()
        head = scope["method"] == "HEAD"
        body = _BodyTracker(scope, receive)
        try:
            response = await self._answer(scope, body.receive)
        except ClientGone:
            return
        except S3Error as err:
            response = _error(err, request_id)
        except PayloadHashMismatch as err:
            response = _error(S3Error(400, err.code, err.message), request_id)
        except ValidationException as err:
            response = _error(_invalid_argument(err.message), request_id)
        except Exception:
            logger.exception("S3 %s %s failed", scope.get("method"), scope.get("path"))
            response = _error(
                S3Error(500, "InternalError", "We encountered an internal error. Please try again."),
                request_id,
            )
        if body.unread:
            # Answered before the body was read (often without "100 Continue"): the client may not
            # send it, so the connection cannot carry another request.
            response.headers.append(("Connection", "close"))
        await _send(send, response, request_id, head)

    async def _answer(self, scope: Scope, receive: Receive) -> _Response:
        if self.platform.artifacts.uses_remote_s3:
            raise _not_implemented(
                "S3 over a remote artifact store: forgeml's artifacts live in the S3 service at "
                "FORGEML_S3_ENDPOINT_URL; point S3 clients there"
            )
        request = self._parse(scope, receive)
        expected_owner = request.headers.get("x-amz-expected-bucket-owner")
        if expected_owner is not None and expected_owner != self.account_id:
            raise S3Error(403, "AccessDenied", "Access Denied")
        if not request.bucket:
            if request.method == "GET":
                return await self._list_buckets(request)
            raise S3Error(
                405, "MethodNotAllowed", "The specified method is not allowed against this resource."
            )
        if not request.key:
            return await self._bucket_operation(request)
        return await self._object_operation(request)

    def _parse(self, scope: Scope, receive: Receive) -> _Request:
        headers = _request_headers(scope)
        path = str(scope.get("path") or "/")
        query = dict(
            parse_qsl(bytes(scope.get("query_string") or b"").decode("latin-1"), keep_blank_values=True)
        )
        host_bucket = _bucket_from_host(headers.get("host", ""), self.domains)
        if host_bucket is not None:
            bucket, key = host_bucket, path[1:]
        else:
            bucket, _, key = path[1:].partition("/")
        return _Request(
            str(scope["method"]).upper(),
            bucket,
            key,
            query,
            headers,
            receive,
            str(scope.get("scheme", "http")),
        )

    # -- dispatch -----------------------------------------------------------------------------------
    async def _bucket_operation(self, request: _Request) -> _Response:
        subresources = request.subresources
        method = request.method
        handlers: dict[tuple[str, str], _Handler] = {
            ("GET", ""): self._list_objects,
            ("GET", "location"): self._bucket_location,
            ("GET", "versioning"): self._bucket_versioning,
            ("PUT", ""): self._create_bucket,
            ("HEAD", ""): self._head_bucket,
            ("DELETE", ""): self._delete_bucket,
            ("POST", "delete"): self._delete_objects,
        }
        return await self._route(request, "bucket", handlers, subresources, method)

    async def _object_operation(self, request: _Request) -> _Response:
        method = request.method
        subresources = request.subresources
        copying = "x-amz-copy-source" in request.headers
        if "uploadId" in request.query and not subresources:
            upload_handlers: dict[str, _Handler] = {
                "PUT": self._upload_part_copy if copying else self._upload_part,
                "GET": self._list_parts,
                "DELETE": self._abort_upload,
                "POST": self._complete_upload,
            }
            if method in upload_handlers:
                return await upload_handlers[method](request)
        if method == "PUT" and not subresources and copying:
            return await self._copy_object(request)
        handlers: dict[tuple[str, str], _Handler] = {
            ("GET", ""): self._get_object,
            ("HEAD", ""): self._get_object,
            ("PUT", ""): self._put_object,
            ("DELETE", ""): self._delete_object,
            ("POST", "uploads"): self._create_upload,
        }
        return await self._route(request, "object", handlers, subresources, method)

    @staticmethod
    async def _route(
        request: _Request,
        target: str,
        handlers: dict[tuple[str, str], _Handler],
        subresources: set[str],
        method: str,
    ) -> _Response:
        if len(subresources) > 1:
            raise _not_implemented(_operation_name(method, target, sorted(subresources)[0]))
        subresource = next(iter(subresources), "")
        handler = handlers.get((method, subresource))
        if handler is not None:
            return await handler(request)
        if method not in ("GET", "PUT", "DELETE", "HEAD", "POST"):
            raise S3Error(
                405, "MethodNotAllowed", "The specified method is not allowed against this resource."
            )
        raise _not_implemented(_operation_name(method, target, subresource))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_s3_app(platform: Platform) -> ASGIApp:
    """The S3 REST-XML subset over ``platform``'s artifact folder, as an ASGI application."""
    return S3App(platform)
