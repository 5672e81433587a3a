"""Shared fixtures: every test gets its own FORGEML_HOME, so tests never see each other's jobs."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def forgeml_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "forgeml-home"
    monkeypatch.setenv("FORGEML_HOME", str(home))
    monkeypatch.delenv("FORGEML_DATABASE_URL", raising=False)
    monkeypatch.delenv("FORGEML_S3_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("FORGEML_STOP_GRACE_SECONDS", "2")
    yield home
    if (home / "endpoint").exists():  # endpoints run in their own processes: none may outlive its test
        delete_endpoints(home)


def delete_endpoints(home: Path, timeout: float = 15.0) -> None:
    """Delete every endpoint under ``home``; kill the host of any that is not gone within ``timeout``."""
    import os
    import signal
    import time

    from forgeml.config import Config
    from forgeml.errors import ValidationException
    from forgeml.service.platform import Platform
    from forgeml.store import endpoints as repo

    platform = Platform.get(Config.from_env(home))
    names = [e["EndpointName"] for e in platform.endpoints.list_endpoints(MaxResults=100)["Endpoints"]]
    for name in names:
        try:
            platform.endpoints.delete_endpoint(name)
        except ValidationException:
            continue
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        names = [n for n in names if platform.endpoints.exists(n)]
        time.sleep(0.05)
    for name in names:
        row = repo.get_endpoint(platform.db, name)
        if row and row["runner_pid"]:
            try:
                os.killpg(row["runner_pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue


@pytest.fixture
def session(forgeml_home: Path):  # type: ignore[no-untyped-def]
    from forgeml import Session

    return Session(forgeml_home, poll_interval=0.05)


@pytest.fixture
def write_script(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a script-mode source folder: write_script("train.py", code) -> folder."""

    def write(name: str, code: str, folder: str = "src") -> Path:
        source = tmp_path / folder
        source.mkdir(exist_ok=True)
        (source / name).write_text(textwrap.dedent(code))
        return source

    return write


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present (the shared data folder is only there in the development workspace)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _stop_zygote_after_tests() -> Iterator[None]:
    """Tests start the warm fork server like any user would; stop it when they are done."""
    yield
    from forgeml.executors import zygote

    zygote.shutdown()
