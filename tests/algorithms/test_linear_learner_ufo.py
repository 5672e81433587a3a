"""Acceptance: seed 000's Linear Learner job on the UFO sightings RecordIO files, File and Pipe mode.

SageMaker reported validation multiclass_accuracy 0.9470 and macro F1 0.914 for this job. The data
lives in the shared workspace folder; the test skips cleanly where it is absent.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import IO

import pytest

from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.linear_learner import ALGORITHM
from forgeml.runtime.pipe import PipeFeeder


def open_object(path: str) -> IO[bytes]:
    """The PipeFeeder's opener: the feeder reads and closes the handle."""
    return open(path, "rb")  # noqa: SIM115


SHARED = Path(__file__).resolve().parents[2].parent / "shared"
UFO = SHARED / "data" / "ufo"
TRAIN = UFO / "ufo_sightings_train_recordIO_protobuf.data"
VALIDATION = UFO / "ufo_sightings_validation_recordIO_protobuf.data"

# the seed's set_hyperparameters call (num_models left on auto, as in the tuning-era job)
SEED_HYPERPARAMETERS = {
    "feature_dim": "22",
    "predictor_type": "multiclass_classifier",
    "num_classes": "3",
    "epochs": "15",
    "l1": "0.0005953224641699573",
    "learning_rate": "0.04380096472026997",
    "mini_batch_size": "2977",
    "use_bias": "true",
    "wd": "0.0019134739491125144",
}


@pytest.fixture
def ufo() -> Path:
    if not (TRAIN.is_file() and VALIDATION.is_file()):
        pytest.skip(
            f"{UFO} is not present (the shared data folder is only there in the development workspace)"
        )
    return UFO


def metric(log: str, name: str) -> float:
    values = [v for line in log.splitlines() if (v := ALGORITHM.match_metric(name, line)) is not None]
    assert values, f"{name} was not emitted"
    return values[-1]


def check_seed_run(log: str, model_dir: Path) -> None:
    assert metric(log, "validation:multiclass_accuracy") >= 0.94
    assert metric(log, "validation:macro_f_beta") >= 0.90
    assert metric(log, "validation:multiclass_top_k_accuracy") == 1.0
    per_epoch = [
        v
        for line in log.splitlines()
        if (v := ALGORITHM.match_metric("validation:objective_loss", line)) is not None
    ]
    assert len(per_epoch) == 15 and per_epoch[-1] < 0.25 and per_epoch[-1] < per_epoch[0]
    best = json.loads(re.search(r"Best model found for hyperparameters: (\{.*\})", log).group(1))  # type: ignore[union-attr]
    # values the user set are the chosen model's values
    assert best["learning_rate"] == 0.04380096472026997 and best["wd"] == 0.0019134739491125144
    assert best["l1"] == 0.0005953224641699573 and best["optimizer"] == "adam"
    model = ALGORITHM.load_model(model_dir)
    body = (UFO / "sample_request.json").read_text()
    request = json.loads(body)["data"].encode()
    answer = json.loads(ALGORITHM.invoke(model, request, "text/csv", "application/json")[0])["predictions"]
    assert len(answer) == 1 and answer[0]["predicted_label"] in (0, 1, 2) and len(answer[0]["score"]) == 3


def test_seed_000_file_mode(ufo: Path, tmp_path: Path) -> None:
    stream = io.StringIO()
    channels = {"train": ChannelData(TRAIN), "validation": ChannelData(VALIDATION)}
    train_builtin("linear-learner", SEED_HYPERPARAMETERS, channels, tmp_path / "model", stream=stream)
    check_seed_run(stream.getvalue(), tmp_path / "model")


def test_seed_000_pipe_mode(ufo: Path, tmp_path: Path) -> None:
    """The seed's job ran with input_mode='Pipe' for both channels."""
    feeders = [
        PipeFeeder(channel=name, folder=tmp_path / "pipes", objects=[str(path)], opener=open_object)
        for name, path in (("train", TRAIN), ("validation", VALIDATION))
    ]
    for feeder in feeders:
        feeder.start()
    stream = io.StringIO()
    channels = {
        name: ChannelData(tmp_path / "pipes" / name, "application/x-recordio-protobuf", "Pipe")
        for name in ("train", "validation")
    }
    try:
        train_builtin("linear-learner", SEED_HYPERPARAMETERS, channels, tmp_path / "model", stream=stream)
    finally:
        for feeder in feeders:
            feeder.close()
    check_seed_run(stream.getvalue(), tmp_path / "model")
