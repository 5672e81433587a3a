"""Signed-request authentication: AWS Signature Version 4 checked against forgeml's own access keys.

Unmodified boto3 and sagemaker-SDK code signs every request with SigV4; the server recomputes the
signature from the request it received and the secret it holds for the access key id, exactly as
botocore computed it, and refuses with the error codes AWS uses (the messages are AWS's wording as
remembered, not copied from a specification).  Keys live in ``$FORGEML_HOME/keys.json``; the
first start also writes ``$FORGEML_HOME/credentials`` in the shared-credentials INI format under
profile ``forgeml`` so that ``boto3.Session(profile_name="forgeml")`` finds them.
"""

from __future__ import annotations

import configparser
import fcntl
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import string
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from forgeml.config import Config
from forgeml.errors import ResourceNotFound
from forgeml.server.errors import QUERY, REST_XML, PayloadHashMismatch, header_value, protocol_of, send_error

log = logging.getLogger(__name__)

SIGNING_ALGORITHM = "AWS4-HMAC-SHA256"
SCOPE_TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
CREDENTIALS_PROFILE = "forgeml"
MAX_BODY_BYTES = 16 * 1024 * 1024
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

_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"

class AuthError(Exception):
    """A refused request: the AWS error code, its message and the HTTP status to answer with."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


# -- access keys ---------------------------------------------------------------------------------


def _new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def _new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a 0600 file, so readers never see half of it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class KeyStore:
    """The access keys the server accepts, in ``$FORGEML_HOME/keys.json`` (mode 0600).

    Writers take an exclusive lock on ``keys.lock`` and replace the file atomically, so the CLI and
    several server workers can share it; readers re-read it only when it changed on disk, so a key
    revoked from the CLI is refused by a running server on its next request.
    """

    def __init__(self, config: Config) -> None:
        self.home = config.home
        self.path = config.home / "keys.json"
        self.credentials_path = config.home / "credentials"
        self._lock_path = config.home / "keys.lock"
        self._cached: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read(self) -> dict[str, Any]:
        """The store's content, from the cache while the file's identity and size are unchanged."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {"default": None, "keys": []}
        identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if self._cached is not None and self._cached[0] == identity:
            return self._cached[1]
        data: dict[str, Any] = json.loads(self.path.read_text())
        self._cached = (identity, data)
        return data

    def _write(self, data: dict[str, Any]) -> None:
        _write_private(self.path, json.dumps(data, indent=2) + "\n")
        self._cached = None

    def _add_key(self, data: dict[str, Any]) -> tuple[str, str]:
        taken = {key["AccessKeyId"] for key in data["keys"]}
        access_key_id = _new_access_key_id()
        while access_key_id in taken:
            access_key_id = _new_access_key_id()
        secret = _new_secret()
        data["keys"].append({"AccessKeyId": access_key_id, "SecretAccessKey": secret,
                             "CreateDate": datetime.now(UTC).isoformat(), "Status": "Active"})
        return access_key_id, secret

    @staticmethod
    def _active(data: dict[str, Any], access_key_id: str | None) -> dict[str, Any] | None:
        for key in data["keys"]:
            if key["AccessKeyId"] == access_key_id and key["Status"] == "Active":
                return key
        return None

    def _profile_pair(self) -> tuple[str, str] | None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(self.credentials_path)
        except configparser.Error:
            return None
        if not parser.has_section(CREDENTIALS_PROFILE):
            return None
        section = parser[CREDENTIALS_PROFILE]
        if "aws_access_key_id" not in section or "aws_secret_access_key" not in section:
            return None
        return section["aws_access_key_id"], section["aws_secret_access_key"]

    def _write_profile(self, access_key_id: str, secret: str) -> None:
        """Set profile ``forgeml`` in the credentials file, keeping any other profiles in it."""
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(self.credentials_path)
        except configparser.Error:
            parser = configparser.ConfigParser(interpolation=None)
        parser[CREDENTIALS_PROFILE] = {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret}
        text = io.StringIO()
        parser.write(text)
        _write_private(self.credentials_path, text.getvalue())

    def ensure_default(self) -> tuple[str, str]:
        """The pair in the credentials file, creating it (and the file) when there is no working one.

        Later calls return the same pair.  If the ``forgeml`` profile's key was revoked or the file
        was removed, a new default pair is made, so the credentials file always holds a key that works.
        """
        with self._locked():
            data = self._read()
            data = {"default": data.get("default"), "keys": [dict(key) for key in data["keys"]]}
            profile = self._profile_pair()
            if profile is not None:
                key = self._active(data, profile[0])
                if key is not None and hmac.compare_digest(key["SecretAccessKey"], profile[1]):
                    return profile
            default = self._active(data, data["default"])
            if default is None:
                access_key_id, secret = self._add_key(data)
                data["default"] = access_key_id
                self._write(data)
                log.warning("created access key %s; its secret is in %s (profile %s)", access_key_id,
                            self.credentials_path, CREDENTIALS_PROFILE)
            else:
                access_key_id, secret = default["AccessKeyId"], default["SecretAccessKey"]
            self._write_profile(access_key_id, secret)
            return access_key_id, secret

    def create(self) -> tuple[str, str]:
        """A new active pair; the secret is only ever returned here."""
        with self._locked():
            data = self._read()
            data = {"default": data.get("default"), "keys": [dict(key) for key in data["keys"]]}
            pair = self._add_key(data)
            self._write(data)
            return pair

    def list(self) -> list[dict[str, Any]]:
        """Every key's id, status, creation time and whether it is the credentials-file default."""
        data = self._read()
        return [{"AccessKeyId": key["AccessKeyId"], "Status": key["Status"],
                 "CreateDate": datetime.fromisoformat(key["CreateDate"]),
                 "Default": key["AccessKeyId"] == data.get("default")} for key in data["keys"]]

    def revoke(self, access_key_id: str) -> None:
        """Mark a key Inactive: requests signed with it are refused from now on (idempotent)."""
        with self._locked():
            data = self._read()
            data = {"default": data.get("default"), "keys": [dict(key) for key in data["keys"]]}
            for key in data["keys"]:
                if key["AccessKeyId"] == access_key_id:
                    key["Status"] = "Inactive"
                    self._write(data)
                    return
        raise ResourceNotFound(f"The Access Key with id {access_key_id} cannot be found.")

    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of an active key; None for unknown and revoked ids alike."""
        key = self._active(self._read(), access_key_id)
        return None if key is None else str(key["SecretAccessKey"])


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
        if body is not None and _HEX_DIGEST.fullmatch(payload_hash) and \
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
            if claimed not in LITERAL_PAYLOAD_HASHES and not _HEX_DIGEST.fullmatch(claimed):
                raise refusal("bad_hash_header", protocol)
            return claimed
        if signature.presigned and signature.service == "s3":
            return UNSIGNED_PAYLOAD
        if body is None:
            raise refusal("no_hash_header", protocol)
        return hashlib.sha256(body).hexdigest()


def _amz_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime(AMZ_DATE_FORMAT)


# -- ASGI middleware -----------------------------------------------------------------------------

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


class _ClientGone(Exception):
    """The client disconnected before its whole body arrived: there is no one left to answer."""


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
        """The whole body, or None when it is over the limit; _ClientGone if the client disconnected."""
        declared = header_value(scope["headers"], b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
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
        except _ClientGone:
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
        if not _HEX_DIGEST.fullmatch(claimed):
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
