"""Fixtures for endpoint tests: trained model artifacts, models in the store, waiting.

The root conftest's ``forgeml_home`` deletes every endpoint a test left behind, so no host or
worker process outlives its test."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

FEATURES = 4
WEIGHTS = np.array([1.0, -2.0, 0.5, 0.0])


def write_training_data(folder: Path, algorithm: str) -> Path:
    """A small training channel in a format the algorithm reads (labels follow a linear rule)."""
    from forgeml.amazon.common import write_numpy_to_dense_tensor
    from forgeml.data.csv_format import write_csv

    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, FEATURES)).astype(np.float32)
    labels = (features @ WEIGHTS > 0).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    if algorithm == "ipinsights":
        lines = [f"user{int(u)}, 10.0.{int(u)}.{int(h)}\n" for u, h in zip(rng.integers(0, 20, 600), rng.integers(0, 256, 600),
                                                                        strict=True)]
        (folder / "events.csv").write_text("".join(lines))
    elif algorithm == "factorization-machines":
        with open(folder / "part-0.pbr", "wb") as handle:
            write_numpy_to_dense_tensor(handle, features, labels)
    else:
        write_csv(folder / "data.csv", features, None if algorithm in ("pca", "randomcutforest") else labels)
    return folder


def train_tarball(root: Path, algorithm: str, hyperparameters: dict[str, str]) -> Path:
    """Train a tiny model in process and pack it as SageMaker's model.tar.gz."""
    from forgeml.algorithms.harness import ChannelData, train_builtin

    model_dir = root / "model"
    content_type = {"factorization-machines": "application/x-recordio-protobuf", "pca": "text/csv;label_size=0",
                    "randomcutforest": "text/csv;label_size=0"}.get(algorithm, "text/csv")
    channel = ChannelData(write_training_data(root / "train", algorithm), content_type)
    train_builtin(algorithm, hyperparameters, {"train": channel}, model_dir, root / "output", stream=io.StringIO())
    archive = root / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return archive


@pytest.fixture(scope="session")
def linear_learner_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tarball(tmp_path_factory.mktemp("ll"), "linear-learner",
                         {"predictor_type": "binary_classifier", "feature_dim": str(FEATURES), "epochs": "3"})


@pytest.fixture
def platform(forgeml_home: Path) -> Any:
    """The platform on the test's FORGEML_HOME (whose teardown deletes the endpoints a test left)."""
    from forgeml.service.platform import Platform

    return Platform.get()


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


@pytest.fixture
def train_model() -> Callable[[Path, str, dict[str, str]], Path]:
    """train_model(folder, algorithm, hyperparameters) -> a model.tar.gz trained on FEATURES columns."""
    return train_tarball
