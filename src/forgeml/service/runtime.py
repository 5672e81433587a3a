"""InvokeEndpoint from Python: find the endpoint's router and call it over a kept-alive connection.

The router (``forgeml.hosting.router``) already answers in the sagemaker-runtime protocol, errors
included; this client turns its answers into boto3-shaped responses and forgeml's runtime errors
(``ModelError``, ``ValidationError``, ...). Connections are per thread and per router, so a
Predictor used from many threads never shares a socket.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from forgeml.errors import (
    ForgeMLError,
    ModelError,
    ModelNotReadyException,
    RuntimeValidationError,
    ServiceUnavailable,
    ValidationException,
)

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
CLIENT_TIMEOUT_SECONDS = 70.0  # the model has 60 s; clients wait a little longer, as SageMaker advises
ERRORS: dict[str, type[ForgeMLError]] = {
    "ValidationError": RuntimeValidationError,
    "ModelNotReadyException": ModelNotReadyException,
    "ServiceUnavailable": ServiceUnavailable,
}


class StreamingBody(io.BytesIO):
    """The response body, readable like botocore's StreamingBody (``.read()``)."""


class RuntimeService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._local = threading.local()

    def _router(self, endpoint_name: str) -> str:
        try:
            url = self.platform.endpoints.router_url(endpoint_name)
        except ValidationException:
            raise RuntimeValidationError(f"Endpoint {endpoint_name} of account {self.platform.config.account_id} "
                                         "not found.") from None
        if url is None:
            status = self.platform.endpoints.describe_endpoint(endpoint_name)["EndpointStatus"]
            raise RuntimeValidationError(f"Endpoint {endpoint_name} of account {self.platform.config.account_id} is "
                                         f"not in service (its status is {status}).")
        return url

    def _connection(self, url: str) -> http.client.HTTPConnection:
        connections: dict[str, http.client.HTTPConnection] = self._local.__dict__.setdefault("connections", {})
        connection = connections.get(url)
        if connection is None:
            parts = urlsplit(url)
            connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                                    timeout=CLIENT_TIMEOUT_SECONDS)
            connections[url] = connection
        return connection

    def _post(self, endpoint_name: str, path: str, body: bytes, headers: dict[str, str]) -> http.client.HTTPResponse:
        """POST to the router; a closed kept-alive socket or a restarted host gets one fresh try."""
        for attempt in range(2):
            url = self._router(endpoint_name)
            connection = self._connection(url)
            try:
                connection.request("POST", path, body=body, headers=headers)
                return connection.getresponse()
            except (ConnectionError, http.client.HTTPException, OSError):
                connection.close()
                self._local.connections.pop(url, None)
                if attempt:
                    raise ServiceUnavailable(f"Endpoint {endpoint_name} did not answer; its host may be restarting. "
                                             "Retry shortly.") from None
        raise AssertionError("unreachable")

    def invoke_endpoint(self, *, EndpointName: str, Body: bytes | str | Any, ContentType: str | None = None,  # noqa: N803
                        Accept: str | None = None, CustomAttributes: str | None = None,  # noqa: N803
                        TargetVariant: str | None = None, InferenceId: str | None = None,  # noqa: N803
                        **_: Any) -> dict[str, Any]:
        """boto3's ``sagemaker-runtime`` ``invoke_endpoint``, against this platform's endpoint."""
        body = as_bytes(Body)
        if len(body) > MAX_PAYLOAD_BYTES:
            raise RuntimeValidationError(f"1 validation error detected: Value at 'body' failed to satisfy constraint: "
                                         f"Member must have length less than or equal to {MAX_PAYLOAD_BYTES}")
        headers = {"Content-Type": ContentType or "application/octet-stream"}
        if Accept:
            headers["Accept"] = Accept
        if CustomAttributes is not None:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = CustomAttributes
        if TargetVariant is not None:
            headers["X-Amzn-SageMaker-Target-Variant"] = TargetVariant
        if InferenceId is not None:
            headers["X-Amzn-SageMaker-Inference-Id"] = InferenceId
        response = self._post(EndpointName, f"/endpoints/{EndpointName}/invocations", body, headers)
        payload = response.read()
        if response.status != 200:
            raise _error(response, payload)
        result: dict[str, Any] = {
            "Body": StreamingBody(payload),
            "ContentType": response.getheader("Content-Type", "application/octet-stream"),
            "InvokedProductionVariant": response.getheader("X-Amzn-Invoked-Production-Variant"),
            "ResponseMetadata": {"RequestId": response.getheader("X-Amzn-RequestId") or str(uuid.uuid4()),
                                 "HTTPStatusCode": 200, "RetryAttempts": 0},
        }
        attributes = response.getheader("X-Amzn-SageMaker-Custom-Attributes")
        if attributes is not None:
            result["CustomAttributes"] = attributes
        return result

    def send_feedback(self, endpoint_name: str, reward: float, *, inference_id: str | None = None,
                      variant_name: str | None = None) -> str:
        """Report a bandit reward in [0, 1] for a request (by inference id) or a variant; the variant credited."""
        response = self._post(endpoint_name, f"/endpoints/{endpoint_name}/feedback",
                              feedback_body(reward, inference_id, variant_name), {"Content-Type": "application/json"})
        payload = response.read()
        if response.status != 200:
            raise _error(response, payload)
        return str(json.loads(payload)["VariantName"])


def feedback_body(reward: float, inference_id: str | None, variant_name: str | None) -> bytes:
    """The router's feedback request: a reward for a request (by inference id) or a variant."""
    feedback: dict[str, Any] = {"Reward": reward}
    if inference_id is not None:
        feedback["InferenceId"] = inference_id
    if variant_name is not None:
        feedback["VariantName"] = variant_name
    return json.dumps(feedback).encode()


def as_bytes(body: Any) -> bytes:
    """An InvokeEndpoint Body as bytes (bytes, text or a readable object, as boto3 accepts)."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if hasattr(body, "read"):
        data = body.read()
        return data.encode("utf-8") if isinstance(data, str) else bytes(data)
    raise RuntimeValidationError(f"Body must be bytes, a string or a file-like object, not {type(body).__name__}")


def _error(response: http.client.HTTPResponse, payload: bytes) -> ForgeMLError:
    """The runtime error the router's answer stands for."""
    code = (response.getheader("X-Amzn-ErrorType") or "InternalFailure").split(":")[0]
    try:
        details = json.loads(payload)
    except ValueError:
        details = {"message": payload.decode("utf-8", "replace")}
    message = str(details.get("message") or details.get("Message") or "")
    if code == "ModelError":
        return ModelError(message, int(details.get("OriginalStatusCode", 0)), str(details.get("OriginalMessage", "")),
                          str(details.get("LogStreamArn", "")))
    error_type = ERRORS.get(code)
    if error_type is not None:
        return error_type(message)
    error = ForgeMLError(message or f"the endpoint answered HTTP {response.status}")
    error.code = code
    error.http_status = response.status
    return error
