"""The access keys a signed-request server accepts, kept in ``$FORGEML_HOME/keys.json``.

It is its own module because the CLI (``forgeml keys``), the server's start-up and the SigV4 verifier
all need the key store, and none of them needs the middleware or the signature arithmetic to use it.
The first start also writes ``$FORGEML_HOME/credentials`` in the shared-credentials INI format under
profile ``forgeml`` so that ``boto3.Session(profile_name="forgeml")`` finds the default pair.
"""

from __future__ import annotations

import configparser
import fcntl
import hmac
import io
import json
import logging
import os
import secrets
import string
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forgeml.config import Config
from forgeml.errors import ResourceNotFound

# the logger keeps the name it had before the key store left forgeml.server.auth, so log filters still match
log = logging.getLogger("forgeml.server.auth")

CREDENTIALS_PROFILE = "forgeml"

_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


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

