"""STS's query protocol, for the one call SageMaker clients make: GetCallerIdentity.

The sagemaker SDK asks STS for the account id (its default bucket is ``sagemaker-<region>-<account>``)
and for the caller's ARN; forgeml answers with the configured account (``FORGEML_ACCOUNT_ID``) and
the access key that signed the request.  Any other action is refused as STS refuses an unknown one.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from starlette.types import ASGIApp, Receive, Scope, Send

from forgeml.server.errors import QUERY, STS_NAMESPACE, ClientGone, error_response

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

STS_VERSION = "2011-06-15"
DEFAULT_USER_ID = "AIDAFORGEML"
MAX_BODY = 64 * 1024
Headers = list[tuple[bytes, bytes]]


class _StsError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


async def _read_body(receive: Receive) -> bytes | None:
    """The form body, or None when the client went away; refuses bodies no STS call needs."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > MAX_BODY:
            raise _StsError(413, "RequestEntityTooLarge", "Request body must be at most 65536 bytes")
        if not message.get("more_body", False):
            return bytes(body)


def _parameters(scope: Scope, body: bytes) -> dict[str, str]:
    """Query-string parameters, overridden by the form body (the SDKs POST a form)."""
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    parameters = dict(parse_qsl(query, keep_blank_values=True))
    parameters.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return parameters


def caller_identity_xml(user_id: str, account_id: str, request_id: str) -> bytes:
    """The GetCallerIdentity answer, shaped as STS writes it."""
    arn = f"arn:aws:iam::{account_id}:user/forgeml"
    return (
        f'<GetCallerIdentityResponse xmlns="{STS_NAMESPACE}">'
        "<GetCallerIdentityResult>"
        f"<Arn>{escape(arn)}</Arn><UserId>{escape(user_id)}</UserId><Account>{escape(account_id)}</Account>"
        "</GetCallerIdentityResult>"
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        "</GetCallerIdentityResponse>"
    ).encode()


class StsApp:
    """``POST /`` with ``Action=GetCallerIdentity&Version=2011-06-15`` as a raw ASGI application."""

    def __init__(self, platform: Platform) -> None:
        self.account_id = platform.config.account_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request_id = str(uuid.uuid4())
        try:
            status, headers, body = await self._answer(scope, receive, request_id)
        except _StsError as err:
            status, headers, body = error_response(
                QUERY, err.status, err.code, err.message, request_id=request_id
            )
        except ClientGone:
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _answer(self, scope: Scope, receive: Receive, request_id: str) -> tuple[int, Headers, bytes]:
        if scope.get("method") not in ("POST", "GET"):
            raise _StsError(405, "InvalidAction", f"STS does not accept the method {scope.get('method')}")
        body = await _read_body(receive)
        if body is None:
            raise ClientGone()
        parameters = _parameters(scope, body)
        action = parameters.get("Action")
        version = parameters.get("Version", STS_VERSION)
        if not action:
            raise _StsError(400, "MissingAction", "Missing Action")
        if action != "GetCallerIdentity" or version != STS_VERSION:
            raise _StsError(400, "InvalidAction", f"Could not find operation {action} for version {version}")
        user_id = str(scope.get("forgeml.access_key_id") or DEFAULT_USER_ID)
        payload = caller_identity_xml(user_id, self.account_id, request_id)
        headers = [
            (b"content-type", b"text/xml"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        return 200, headers, payload


def create_sts_app(platform: Platform) -> ASGIApp:
    """STS GetCallerIdentity over ``platform``'s configured account, as an ASGI application."""
    return StsApp(platform)
