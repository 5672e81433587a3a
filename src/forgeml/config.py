"""Where forgeml keeps its state, read once from the environment.

Everything that differs between a laptop and a team server is configuration, never code: the
metadata store URL, the artifact store (a folder, or an S3 endpoint), the executor and its pool size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "000000000000"


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} must be an integer") from exc
    if value < 1:
        raise ValueError(f"environment variable {name}={raw!r} must be at least 1")
    return value


@dataclass(frozen=True)
class Config:
    """A resolved configuration. ``Config.from_env()`` is what every entry point uses."""

    home: Path
    database_url: str
    region: str = DEFAULT_REGION
    account_id: str = DEFAULT_ACCOUNT_ID
    s3_endpoint_url: str | None = None
    max_concurrent_jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    stop_grace_seconds: float = 30.0
    executor: str = "local"

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Config:
        root = Path(home or os.environ.get("FORGEML_HOME") or Path.home() / ".forgeml").expanduser()
        root = root.resolve()
        database_url = os.environ.get("FORGEML_DATABASE_URL") or f"sqlite:///{root / 'forgeml.db'}"
        return cls(
            home=root,
            database_url=database_url,
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
            account_id=os.environ.get("FORGEML_ACCOUNT_ID", DEFAULT_ACCOUNT_ID),
            s3_endpoint_url=os.environ.get("FORGEML_S3_ENDPOINT_URL") or None,
            max_concurrent_jobs=_int_env("FORGEML_MAX_CONCURRENT_JOBS", os.cpu_count() or 1),
            stop_grace_seconds=float(os.environ.get("FORGEML_STOP_GRACE_SECONDS", "30")),
            executor=os.environ.get("FORGEML_EXECUTOR", "local"),
        )

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    @property
    def local_s3_root(self) -> Path:
        """Where ``s3://bucket/key`` lives when no S3 endpoint is configured."""
        return self.home / "s3"

    def to_env(self) -> dict[str, str]:
        """The variables that make a child process resolve this same configuration."""
        env = {
            "FORGEML_HOME": str(self.home),
            "FORGEML_DATABASE_URL": self.database_url,
            "AWS_DEFAULT_REGION": self.region,
            "FORGEML_ACCOUNT_ID": self.account_id,
            "FORGEML_MAX_CONCURRENT_JOBS": str(self.max_concurrent_jobs),
            "FORGEML_STOP_GRACE_SECONDS": str(self.stop_grace_seconds),
            "FORGEML_EXECUTOR": self.executor,
        }
        if self.s3_endpoint_url:
            env["FORGEML_S3_ENDPOINT_URL"] = self.s3_endpoint_url
        return env
