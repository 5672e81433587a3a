"""AWS Signature Version 4 verification and the refusals AWS answers in each protocol's words.

Unmodified boto3 and sagemaker-SDK code signs every request with SigV4; the verifier recomputes the
signature from the request received and the secret the key store holds for the access key id, exactly
as botocore computed it, and refuses with the error codes AWS uses (the messages are AWS's wording as
remembered, not copied from a specification).  It is kept apart from the ASGI middleware so the
signature arithmetic can be read and tested without any transport around it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from forgeml.server.errors import QUERY, REST_XML, PayloadHashMismatch, protocol_of
from forgeml.server.keys import KeyStore

SIGNING_ALGORITHM = "AWS4-HMAC-SHA256"
SCOPE_TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOADS = frozenset({
    "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
})
LITERAL_PAYLOAD_HASHES = STREAMING_PAYLOADS | {UNSIGNED_PAYLOAD}

DEFAULT_SERVICES = frozenset({
    "sagemaker", "sagemaker-runtime", "logs", "monitoring", "application-autoscaling", "s3", "sts",
})

HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class AuthError(Exception):
    """A refused request: the AWS error code, its message and the HTTP status to answer with."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


# -- refusals in each protocol's words -----------------------------------------------------------

_BAD_SIGNATURE_JSON = ("The request signature we calculated does not match the signature you provided. Check your "
                       "AWS Secret Access Key and signing method. Consult the service documentation for details.")
_BAD_SIGNATURE_S3 = ("The request signature we calculated does not match the signature you provided. "
                     "Check your key and signing method.")
_BAD_TOKEN = "The security token included in the request is invalid."
_MISSING_TOKEN = "Request is missing Authentication Token"
_EXPIRED = "Signature expired: {request} is now earlier than {earliest} ({now} - {window} min.)"
_NOT_YET = "Signature not yet current: {request} is still later than {latest} ({now} + {window} min.)"
_SKEWED = "The difference between the request time and the current time is too large."
_BAD_HASH_HEADER = ("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
                    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER "
                    "or a valid sha256 value.")
_NO_HASH_HEADER = "Missing required header for this request: x-amz-content-sha256"
_UNSUPPORTED = "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."

# kind -> protocol family ("json" for json and rest-json, "query" for STS, "s3") -> (code, status, message)
_REFUSALS: dict[str, dict[str, tuple[str, int, str]]] = {
    "missing": {"json": ("MissingAuthenticationTokenException", 403, _MISSING_TOKEN),
                "query": ("MissingAuthenticationToken", 403, _MISSING_TOKEN),
                "s3": ("AccessDenied", 403, "Access Denied")},
    "unknown_key": {"json": ("UnrecognizedClientException", 403, _BAD_TOKEN),
                    "query": ("InvalidClientTokenId", 403, _BAD_TOKEN),
                    "s3": ("InvalidAccessKeyId", 403,
                           "The AWS Access Key Id you provided does not exist in our records.")},
    "bad_signature": {"json": ("InvalidSignatureException", 403, _BAD_SIGNATURE_JSON),
                      "query": ("SignatureDoesNotMatch", 403, _BAD_SIGNATURE_JSON),
                      "s3": ("SignatureDoesNotMatch", 403, _BAD_SIGNATURE_S3)},
    "expired": {"json": ("InvalidSignatureException", 403, _EXPIRED),
                "query": ("SignatureDoesNotMatch", 403, _EXPIRED),
                "s3": ("RequestTimeTooSkewed", 403, _SKEWED)},
    "not_yet": {"json": ("InvalidSignatureException", 403, _NOT_YET),
                "query": ("SignatureDoesNotMatch", 403, _NOT_YET),
                "s3": ("RequestTimeTooSkewed", 403, _SKEWED)},
    "presign_expired": {"json": ("InvalidSignatureException", 403, "Signature expired: {request} + {expires} s "
                                 "is now earlier than {now}."),
                        "query": ("SignatureDoesNotMatch", 403, "Signature expired: {request} + {expires} s "
                                  "is now earlier than {now}."),
                        "s3": ("AccessDenied", 403, "Request has expired")},
    "malformed": {"json": ("IncompleteSignatureException", 403, "{detail}"),
                  "query": ("IncompleteSignature", 403, "{detail}"),
                  "s3": ("AuthorizationHeaderMalformed", 400, "The authorization header is malformed; {detail}")},
    "malformed_query": {"json": ("IncompleteSignatureException", 403, "{detail}"),
                        "query": ("IncompleteSignature", 403, "{detail}"),
                        "s3": ("AuthorizationQueryParametersError", 400, "{detail}")},
    "bad_scope": {"json": ("InvalidSignatureException", 403, "{detail}"),
                  "query": ("SignatureDoesNotMatch", 403, "{detail}"),
                  "s3": ("AuthorizationHeaderMalformed", 400, "The authorization header is malformed; {detail}")},
    "unsupported": {"json": ("IncompleteSignatureException", 403, _UNSUPPORTED),
                    "query": ("IncompleteSignature", 403, _UNSUPPORTED),
                    "s3": ("InvalidRequest", 400, _UNSUPPORTED)},
    "bad_hash_header": {"json": ("IncompleteSignatureException", 403, _BAD_HASH_HEADER),
                        "query": ("IncompleteSignature", 403, _BAD_HASH_HEADER),
                        "s3": ("InvalidArgument", 400, _BAD_HASH_HEADER)},
    "no_hash_header": {"json": ("IncompleteSignatureException", 403, _NO_HASH_HEADER),
                       "query": ("IncompleteSignature", 403, _NO_HASH_HEADER),
                       "s3": ("InvalidRequest", 400, _NO_HASH_HEADER)},
    "payload_mismatch": {"json": ("InvalidSignatureException", 403, _BAD_SIGNATURE_JSON),
                         "query": ("SignatureDoesNotMatch", 403, _BAD_SIGNATURE_JSON),
                         "s3": (PayloadHashMismatch.code, PayloadHashMismatch.status,
                                "The provided 'x-amz-content-sha256' header does not match what was computed.")},
}


def _family(protocol: str) -> str:
    return "s3" if protocol == REST_XML else "query" if protocol == QUERY else "json"


def refusal(kind: str, protocol: str, **details: Any) -> AuthError:
    """The AuthError AWS would answer for ``kind`` in ``protocol`` (see ``_REFUSALS``)."""
    code, status, template = _REFUSALS[kind][_family(protocol)]
    return AuthError(code, template.format(**details), status)


# -- signature version 4 -------------------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """What a request claims: who signed it, for which scope, over which headers, and when."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str
    presigned: bool = False
    expires: int = 0

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{SCOPE_TERMINATOR}"


def _collect_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    collected: dict[str, list[str]] = {}
    for name, value in headers:
        collected.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return collected


def _query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    """The query's decoded (name, value) pairs in order; a bare ``uploads`` is ``("uploads", "")``."""
    pairs = []
    for part in query_string.decode("latin-1").split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote(name), unquote(value)))
    return pairs


def canonical_query(pairs: list[tuple[str, str]]) -> str:
    """Names and values URI-encoded (only ``-_.~`` left bare), sorted by name then value."""
    encoded = sorted((quote(name, safe="-_.~"), quote(value, safe="-_.~")) for name, value in pairs)
    return "&".join(f"{name}={value}" for name, value in encoded)


def _without_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal plus collapsing of empty segments, as AWS services expect."""
    kept: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if kept:
                kept.pop()
        else:
            kept.append(segment)
    leading = "/" if path.startswith("/") else ""
    trailing = "/" if path.endswith("/") and kept else ""
    return leading + "/".join(kept) + trailing


def canonical_uri(raw_path: bytes, service: str) -> str:
    """The path as signed: S3 signs the wire path as is; other services encode it a second time."""
    path = raw_path.split(b"?", 1)[0].decode("latin-1") or "/"
    if service == "s3":
        return path
    return quote(_without_dot_segments(path) or "/", safe="/~")


def canonical_headers(headers: dict[str, list[str]], names: tuple[str, ...]) -> str:
    """``name:value`` lines for the signed headers: values trimmed, inner whitespace collapsed."""
    lines = []
    for name in names:
        values = headers.get(name, [])
        lines.append(f"{name}:{','.join(' '.join(value.split()) for value in values)}")
    return "\n".join(lines) + "\n"


def canonical_request(method: str, uri: str, query: str, headers: dict[str, list[str]],
                      signed_headers: tuple[str, ...], payload_hash: str) -> str:
    return "\n".join([method.upper(), uri, query, canonical_headers(headers, signed_headers),
                      ";".join(signed_headers), payload_hash])


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, SCOPE_TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    return "\n".join([SIGNING_ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])


def _parse_credential(credential: str, kind: str, protocol: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts) or parts[4] != SCOPE_TERMINATOR:
        raise refusal(kind, protocol, detail=f"Credential must have exactly 5 slash-delimited elements, e.g. "
                      f"keyid/date/region/service/{SCOPE_TERMINATOR}, got '{credential}'.")
    return parts[0], parts[1], parts[2], parts[3]


def _parse_authorization(value: str, headers: dict[str, list[str]], protocol: str) -> Signature:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != SIGNING_ALGORITHM:
        raise refusal("unsupported", protocol)
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, _, field = item.strip().partition("=")
        fields[name.strip()] = field.strip()
    for required in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(required):
            raise refusal("malformed", protocol, detail=f"Authorization header requires '{required}' parameter.")
    amz_date = (headers.get("x-amz-date") or [""])[0].strip()
    if not amz_date:
        raise refusal("malformed", protocol, detail="Authorization header requires the 'X-Amz-Date' header.")
    key_id, date, region, service = _parse_credential(fields["Credential"], "malformed", protocol)
    signed = tuple(name.strip().lower() for name in fields["SignedHeaders"].split(";"))
    return Signature(key_id, date, region, service, signed, fields["Signature"], amz_date)


def _parse_presigned(params: dict[str, str], protocol: str) -> Signature:
    if params.get("X-Amz-Algorithm") != SIGNING_ALGORITHM:
        raise refusal("unsupported", protocol)
    for required in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"):
        if not params.get(required):
            raise refusal("malformed_query", protocol, detail=f"Query-string authentication requires the "
                          f"{required} parameter.")
    raw_expires = params.get("X-Amz-Expires", str(MAX_PRESIGN_EXPIRES))
    if not raw_expires.isdigit() or not 1 <= int(raw_expires) <= MAX_PRESIGN_EXPIRES:
        raise refusal("malformed_query", protocol, detail=f"X-Amz-Expires must be a number of seconds from 1 to "
                      f"{MAX_PRESIGN_EXPIRES}, got '{raw_expires}'.")
    key_id, date, region, service = _parse_credential(params["X-Amz-Credential"], "malformed_query", protocol)
    signed = tuple(name.strip().lower() for name in params["X-Amz-SignedHeaders"].split(";"))
    return Signature(key_id, date, region, service, signed, params["X-Amz-Signature"], params["X-Amz-Date"],
                     presigned=True, expires=int(raw_expires))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}"


class SigV4Verifier:
    """Checks AWS Signature Version 4 (``AWS4-HMAC-SHA256``) the way botocore signs.

    Both the ``Authorization`` header and query-string (presigned URL) forms are accepted, for any
    region and any service in ``services`` (None accepts every service name); the credential
    scope's own region and service are used to derive the signing key.  For
    ``STREAMING-AWS4-HMAC-SHA256-PAYLOAD`` uploads only the seed signature (the headers) is
    verified, not the per-chunk signatures; ``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` and
    ``UNSIGNED-PAYLOAD`` bodies are, as their names say, not covered by the signature.
    """

    def __init__(self, keys: KeyStore, *, max_skew_seconds: float = 900.0,
                 services: frozenset[str] | None = DEFAULT_SERVICES,
                 clock: Callable[[], float] = time.time) -> None:
        self.keys = keys
        self.max_skew_seconds = max_skew_seconds
        self.services = services
        self.clock = clock

    def verify(self, method: str, raw_path: bytes, query_string: bytes, headers: list[tuple[bytes, bytes]],
               body: bytes | None) -> str:
        """The access key id that signed the request, or AuthError.

        ``body=None`` means the body has not been read (S3 streams it): the payload hash is then
        taken from ``x-amz-content-sha256`` and checking the body against it is the caller's job.
        """
        path = raw_path.split(b"?", 1)[0]
        protocol = protocol_of({"method": method, "path": unquote(path.decode("latin-1")),
                                "headers": headers, "query_string": query_string})
        header_map = _collect_headers(headers)
        pairs = _query_pairs(query_string)
        signature = self._claimed_signature(header_map, pairs, protocol)
        secret = self.keys.secret_for(signature.access_key_id)
        if secret is None:
            raise refusal("unknown_key", protocol)
        self._check_scope(signature, protocol)
        self._check_time(signature, protocol)
        payload_hash = self._payload_hash(signature, header_map, body, protocol)
        if signature.presigned:
            pairs = [(name, value) for name, value in pairs if name != "X-Amz-Signature"]
        request = canonical_request(method, canonical_uri(path, signature.service), canonical_query(pairs),
                                    header_map, signature.signed_headers, payload_hash)
        key = signing_key(secret, signature.date, signature.region, signature.service)
        expected = hmac.new(key, string_to_sign(signature.amz_date, signature.scope, request).encode(),
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.signature.lower()):
            raise refusal("bad_signature", protocol)
        if body is not None and HEX_DIGEST.fullmatch(payload_hash) and \
                hashlib.sha256(body).hexdigest() != payload_hash.lower():
            raise refusal("payload_mismatch", protocol)
        return signature.access_key_id

    def _claimed_signature(self, headers: dict[str, list[str]], pairs: list[tuple[str, str]],
                           protocol: str) -> Signature:
        authorization = headers.get("authorization")
        if authorization:
            return _parse_authorization(authorization[0], headers, protocol)
        params = dict(pairs)
        if "X-Amz-Signature" in params or "X-Amz-Algorithm" in params:
            return _parse_presigned(params, protocol)
        if "AWSAccessKeyId" in params and "Signature" in params:
            raise refusal("unsupported", protocol)  # a Signature Version 2 presigned URL
        raise refusal("missing", protocol)

    def _check_scope(self, signature: Signature, protocol: str) -> None:
        if self.services is not None and signature.service not in self.services:
            raise refusal("bad_scope", protocol, detail=f"Credential should be scoped to a valid service, one of "
                          f"{', '.join(sorted(self.services))}; got '{signature.service}'.")
        if "host" not in signature.signed_headers:
            raise refusal("malformed", protocol, detail="'Host' must be a 'SignedHeader' in the AWS Authorization.")
        if signature.amz_date[:8] != signature.date:
            raise refusal("bad_scope", protocol, detail=f"Date in Credential scope does not match YYYYMMDD from "
                          f"ISO-8601 version of date from HTTP: '{signature.date}' != '{signature.amz_date[:8]}', "
                          f"from '{signature.amz_date}'.")

    def _check_time(self, signature: Signature, protocol: str) -> None:
        try:
            signed_at = datetime.strptime(signature.amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise refusal("malformed", protocol, detail=f"Date must be in ISO-8601 'basic format' "
                          f"(YYYYMMDD'T'HHMMSS'Z'). Got '{signature.amz_date}'.") from None
        now = self.clock()
        stamp = {"request": signature.amz_date, "now": _amz_date(now), "window": _minutes(self.max_skew_seconds),
                 "earliest": _amz_date(now - self.max_skew_seconds), "latest": _amz_date(now + self.max_skew_seconds)}
        if signed_at > now + self.max_skew_seconds:
            raise refusal("not_yet", protocol, **stamp)
        if signature.presigned:
            if now > signed_at + signature.expires:
                raise refusal("presign_expired", protocol, expires=signature.expires, **stamp)
        elif signed_at < now - self.max_skew_seconds:
            raise refusal("expired", protocol, **stamp)

    @staticmethod
    def _payload_hash(signature: Signature, headers: dict[str, list[str]], body: bytes | None,
                      protocol: str) -> str:
        values = headers.get("x-amz-content-sha256")
        if values:
            claimed = values[0].strip()
            if claimed not in LITERAL_PAYLOAD_HASHES and not HEX_DIGEST.fullmatch(claimed):
                raise refusal("bad_hash_header", protocol)
            return claimed
        if signature.presigned and signature.service == "s3":
            return UNSIGNED_PAYLOAD
        if body is None:
            raise refusal("no_hash_header", protocol)
        return hashlib.sha256(body).hexdigest()


def _amz_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime(AMZ_DATE_FORMAT)

