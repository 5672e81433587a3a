"""Loading ``xgboost-model`` artifacts and predicting with them, as the container's server does.

Every regular, non-hidden file of the model folder is a model: pickled Boosters (1.0-1, 1.2-x
images) are tried first, then XGBoost's own formats (UBJSON, JSON) read from memory. Several
files (k-fold) make an ensemble unless ``SAGEMAKER_INFERENCE_ENSEMBLE=false``: probabilities and
values are averaged, class outputs (``multi:softmax``, ``binary:hinge``) go to a majority vote.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import xgboost as xgb

from forgeml.algorithms.base import InferenceError
from forgeml.algorithms.logging import num_threads
from forgeml.errors import ClientError

VOTING_OBJECTIVES = ("multi:softmax", "binary:hinge")
PICKLE_PROTOCOL_2_PLUS = b"\x80"


@dataclass
class XGBoostModel:
    """One booster, or the k-fold ensemble, plus what serving needs to know about it."""

    boosters: list[xgb.Booster]
    #: boosting rounds to predict with, per booster (a 1.x pickle's early-stopping best round)
    rounds: list[int]
    objective: str
    num_class: int
    num_features: int
    #: gblinear has no in-place prediction; it goes through a DMatrix
    linear: bool = False

    def _predict_one(self, booster: xgb.Booster, rounds: int, features: np.ndarray | sp.csr_matrix) -> np.ndarray:
        if self.linear:
            return np.asarray(booster.predict(xgb.DMatrix(features, missing=np.nan), iteration_range=(0, rounds)))
        return np.asarray(booster.inplace_predict(features, iteration_range=(0, rounds)))

    def predict(self, features: np.ndarray | sp.csr_matrix) -> np.ndarray:
        """What ``Booster.predict`` returns for the objective, averaged or voted over the ensemble."""
        outputs = [
            self._predict_one(booster, rounds, features)
            for booster, rounds in zip(self.boosters, self.rounds, strict=True)
        ]
        if len(outputs) == 1:
            return outputs[0]
        if self.objective in VOTING_OBJECTIVES:
            rows = np.arange(len(outputs[0]))
            votes = np.zeros((max(self.num_class, 2), len(rows)), dtype=np.int64)
            for output in outputs:
                np.add.at(votes, (output.astype(np.int64), rows), 1)
            return np.argmax(votes, axis=0).astype(np.float32)
        return np.mean(outputs, axis=0).astype(np.float32)


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"([0-9]+)", path.name)]


def _load_file(path: Path) -> xgb.Booster:
    raw = path.read_bytes()
    pickle_error: Exception | None = None
    if raw[:1] == PICKLE_PROTOCOL_2_PLUS:
        try:
            booster = pickle.loads(raw)
        except Exception as exc:  # a pickle from an XGBoost this one cannot read
            pickle_error = exc
        else:
            if isinstance(booster, xgb.Booster):
                return booster
            pickle_error = TypeError(f"the pickle holds a {type(booster).__name__}, not an xgboost Booster")
    try:
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        return booster
    except xgb.core.XGBoostError as exc:
        reasons = [str(e).split("Stack trace:")[0].strip() for e in (pickle_error, exc) if e is not None]
        raise ClientError(f"Model at {path} cannot be loaded:\n" + "\n".join(reasons)) from exc


def _rounds(booster: xgb.Booster) -> int:
    total = booster.num_boosted_rounds()
    best = booster.attr("best_iteration")
    return min(total, int(best) + 1) if best is not None else total


def load(model_dir: Path) -> XGBoostModel:
    files = sorted(
        (p for p in Path(model_dir).iterdir() if p.is_file() and not p.name.startswith(".")), key=_natural_key
    )
    if not files:
        raise ClientError(f"no model file found in {model_dir}")
    if os.environ.get("SAGEMAKER_INFERENCE_ENSEMBLE", "true").lower() == "false":
        files = files[:1]
    boosters = [_load_file(path) for path in files]
    threads = num_threads()
    for booster in boosters:
        booster.set_param({"nthread": threads})
    learner = json.loads(boosters[0].save_config())["learner"]
    return XGBoostModel(
        boosters=boosters,
        rounds=[_rounds(b) for b in boosters],
        objective=learner["objective"]["name"],
        num_class=int(learner["learner_model_param"].get("num_class", "0") or 0),
        num_features=boosters[0].num_features(),
        linear=learner["gradient_booster"]["name"] == "gblinear",
    )


def fit_width(features: np.ndarray | sp.csr_matrix, model: XGBoostModel, what: str) -> np.ndarray | sp.csr_matrix:
    """Sparse rows are as wide as their largest index: pad them to the model's feature count."""
    width = int(features.shape[1])
    if sp.issparse(features) and width < model.num_features:
        matrix = sp.csr_matrix(features)
        return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], model.num_features))
    if width != model.num_features:
        raise InferenceError(
            f"Feature size of {what} inference data {width} is not consistent with feature size of trained model "
            f"{model.num_features}."
        )
    return features
