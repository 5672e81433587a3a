"""XGBoost's GPU path (tree_method=gpu_hist, device=cuda); skipped where no GPU is visible."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

from forgeml.algorithms.harness import ChannelData, train_builtin
from forgeml.algorithms.xgboost.gpu import gpu_available
from forgeml.data.csv_format import write_csv

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*Unknown file format"),
    pytest.mark.skipif(not gpu_available(0), reason="no CUDA GPU visible to a CUDA-enabled XGBoost"),
]


@pytest.mark.parametrize("hyperparameters", [{"tree_method": "gpu_hist"}, {"device": "cuda", "tree_method": "hist"}])
def test_gpu_training(tmp_path: Path, hyperparameters: dict[str, str]) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    for name, rows in (("train", slice(0, 400)), ("validation", slice(400, None))):
        (tmp_path / name).mkdir()
        write_csv(tmp_path / name / "data.csv", X[rows].astype(np.float32), y[rows].astype(np.float32))
    stream = io.StringIO()
    train_builtin(
        "xgboost",
        {"num_round": "20", "objective": "binary:logistic", "eval_metric": "auc", **hyperparameters},
        {"train": ChannelData(tmp_path / "train", "text/csv"), "validation": ChannelData(tmp_path / "validation", "text/csv")},
        tmp_path / "model",
        num_gpus=1,
        stream=stream,
    )
    booster = xgb.Booster(model_file=str(tmp_path / "model" / "xgboost-model"))
    config = json.loads(booster.save_config())
    assert config["learner"]["generic_param"]["device"].startswith("cuda")
    auc = [line for line in stream.getvalue().splitlines() if line.startswith("[19]#011")]
    assert auc and float(auc[0].split("validation-auc:")[1]) > 0.95
