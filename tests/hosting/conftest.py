"""Fixtures for endpoint tests: a trained Linear Learner artifact, models in the store, and cleanup
that deletes every endpoint a test left behind (so no host or worker process outlives its test)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FEATURES = 4
WEIGHTS = np.array([1.0, -2.0, 0.5, 0.0])


def _train(root: Path, algorithm: str, hyperparameters: dict[str, str]) -> Path:
    from forgeml.algorithms.harness import ChannelData, train_builtin
    from forgeml.data.csv_format import write_csv

    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, FEATURES)).astype(np.float32)
    labels = (features @ WEIGHTS > 0).astype(np.float32)
    (root / "train").mkdir(parents=True, exist_ok=True)
    write_csv(root / "train" / "data.csv", features, labels)
    model_dir = root / "model"
    train_builtin(algorithm, hyperparameters, {"train": ChannelData(root / "train", "text/csv")}, model_dir,
                  root / "output", stream=io.StringIO())
    archive = root / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


@pytest.fixture(scope="session")
def linear_learner_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tmp_path_factory.mktemp("ll"), "linear-learner",
                  {"predictor_type": "binary_classifier", "feature_dim": str(FEATURES), "epochs": "3"})


@pytest.fixture
def platform(forgeml_home: Path) -> Iterator[Any]:
    from forgeml.service.platform import Platform

    instance = Platform.get()
    yield instance
    _delete_all_endpoints(instance)


def _delete_all_endpoints(platform: Any) -> None:
    """Delete what a test left; kill hosts that do not go within a few seconds."""
    from forgeml.errors import ValidationException

    names = [e["EndpointName"] for e in platform.endpoints.list_endpoints(MaxResults=100)["Endpoints"]]
    for name in names:
        try:
            platform.endpoints.delete_endpoint(name)
        except ValidationException:
            continue
    deadline = time.monotonic() + 15
    while names and time.monotonic() < deadline:
        names = [n for n in names if platform.endpoints.exists(n)]
        time.sleep(0.05)
    from forgeml.store import endpoints as repo

    for name in names:
        row = repo.get_endpoint(platform.db, name)
        if row and row["runner_pid"]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(row["runner_pid"], signal.SIGKILL)


@pytest.fixture
def make_model(platform: Any, linear_learner_tarball: Path) -> Callable[..., str]:
    """Upload an artifact and create a model for it: make_model(name, tarball=LL, image="linear-learner", env=...)."""
    from forgeml.sdk.image_uris import retrieve

    def make(name: str, tarball: Path | None = None, image: str | None = None,
             environment: dict[str, str] | None = None) -> str:
        uri = f"s3://models/{name}/model.tar.gz"
        platform.artifacts.ensure_bucket("models")
        platform.artifacts.put_file(tarball or linear_learner_tarball, uri)
        container: dict[str, Any] = {"Image": image or retrieve("linear-learner", platform.config.region),
                                     "ModelDataUrl": uri}
        if environment:
            container["Environment"] = environment
        platform.models.create_model({"ModelName": name, "PrimaryContainer": container})
        return name

    return make


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """wait_for(lambda: value-or-None, timeout) -> the first truthy value; fails the test on timeout."""

    def wait(probe: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
            time.sleep(0.05)

    return wait
