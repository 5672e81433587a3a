"""Fixtures shared by the hosting SDK tests: one Linear Learner model, trained once per test run.

Endpoint cleanup is not here: the root ``forgeml_home`` fixture deletes every endpoint a test leaves behind.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def ll_weights() -> np.ndarray:
    """The rule ``ll_tarball`` learns (label 1 when features @ weights > 0), so tests can derive expected labels."""
    weights = np.array([2.0, -2.0, 1.0, 0.0])
    weights.setflags(write=False)
    return weights


@pytest.fixture(scope="session")
def ll_tarball(tmp_path_factory: pytest.TempPathFactory, ll_weights: np.ndarray) -> Path:
    """A binary Linear Learner of four features as model.tar.gz; trained in process, since a job would be slower."""
    from forgeml.algorithms.harness import ChannelData, train_builtin
    from forgeml.data.csv_format import write_csv

    root = tmp_path_factory.mktemp("ll")
    features = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    (root / "train").mkdir()
    write_csv(root / "train" / "data.csv", features, (features @ ll_weights > 0).astype(np.float32))
    train_builtin("linear-learner", {"predictor_type": "binary_classifier", "feature_dim": "4", "epochs": "3"},
                  {"train": ChannelData(root / "train", "text/csv")}, root / "model", root / "output",
                  stream=io.StringIO())
    archive = root / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted((root / "model").iterdir()):
            tar.add(path, arcname=path.name)
    return archive
