"""The k-NN model: index, neighbour labels, metadata, and the artifact's three files (§3.6)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.common.artifact import MODEL_FILE
from forgeml.algorithms.knn import faiss_file
from forgeml.algorithms.knn.index import FlatIndex, IVFIndex
from forgeml.algorithms.knn.reduction import Reducer
from forgeml.errors import ClientError

LABELS_FILE = MODEL_FILE + ".labels"
METADATA_FILE = MODEL_FILE + ".json"
# bound on the (rows × k × k) label-comparison block used for voting
_VOTE_CELLS = 1 << 24


def majority_vote(neighbour_labels: np.ndarray) -> np.ndarray:
    """Most frequent label per row; a tie goes to the tied label whose first neighbour is nearest.

    SageMaker's tie-breaking is UNVERIFIED; preferring the nearer neighbour is the usual choice.
    """
    n, k = neighbour_labels.shape
    winners = np.empty(n, dtype=np.float32)
    step = max(1, _VOTE_CELLS // (k * k))
    for start in range(0, n, step):
        block = neighbour_labels[start : start + step]
        counts = (block[:, :, None] == block[:, None, :]).sum(axis=2)
        winners[start : start + step] = block[np.arange(block.shape[0]), counts.argmax(axis=1)]
    return winners


@dataclass
class Preprocess:
    """Rows as the index stores them: reduced, zero-padded to the index width, normalised for COSINE."""

    reducer: Reducer | None
    width: int
    normalize: bool = False

    def __call__(self, features: Any) -> np.ndarray:
        if self.reducer is not None:
            rows = self.reducer.transform(features)
        else:
            rows = np.asarray(features.toarray() if sp.issparse(features) else features, dtype=np.float32)
        if rows.shape[1] < self.width:  # IVFPQ needs a width divisible by faiss_index_pq_m
            padding = np.zeros((rows.shape[0], self.width - rows.shape[1]), dtype=np.float32)
            rows = np.concatenate([rows, padding], axis=1)
        if self.normalize:
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            rows = rows / np.where(norms > 0, norms, 1.0)
        return np.ascontiguousarray(rows, dtype=np.float32)


@dataclass
class KNNModel:
    """What inference needs; ``k`` and ``predictor_type`` come from the editable ``.json`` file."""

    k: int
    predictor_type: str
    index: FlatIndex | IVFIndex
    labels: np.ndarray  # float32, the label of index id i at position i
    feature_dim: int
    prepare: Preprocess
    index_type: str = "faiss.Flat"
    index_metric: str = "L2"

    def neighbours(self, features: Any) -> tuple[np.ndarray, np.ndarray]:
        """Distances (FAISS order: nearest first) and labels of the k nearest stored points."""
        k = min(self.k, self.index.ntotal)
        distances, ids = self.index.search(self.prepare(features), k)
        return distances, self.labels[ids]

    def predict_from(self, neighbour_labels: np.ndarray) -> np.ndarray:
        if self.predictor_type == "classifier":
            return majority_vote(neighbour_labels)
        return neighbour_labels.mean(axis=1, dtype=np.float64).astype(np.float32)

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"k": self.k, "predictor_type": self.predictor_type}
        if self.prepare.reducer is not None:
            meta["dimension_reduction"] = self.prepare.reducer.to_json()
        meta.update(
            {
                "normalize": self.prepare.normalize,
                "index_type": self.index_type,
                "index_metric": self.index_metric,
                "feature_dim": self.feature_dim,
                "version": "1.0",
            }
        )
        return meta

    def save(self, model_dir: Path) -> None:
        model_dir = Path(model_dir)
        (model_dir / MODEL_FILE).write_bytes(faiss_file.dumps(self.index))
        np.asarray(self.labels, dtype="<f4").tofile(model_dir / LABELS_FILE)
        (model_dir / METADATA_FILE).write_text(json.dumps(self.metadata()))


def load(model_dir: Path) -> KNNModel:
    model_dir = Path(model_dir)
    for name in (MODEL_FILE, LABELS_FILE, METADATA_FILE):
        if not (model_dir / name).is_file():
            raise ClientError(f"the k-NN model artifact has no {name}")
    try:
        meta = json.loads((model_dir / METADATA_FILE).read_text())
        index = faiss_file.loads((model_dir / MODEL_FILE).read_bytes())
    except (ValueError, faiss_file.FaissFormatError) as exc:
        raise ClientError(f"the k-NN model artifact cannot be read: {exc}") from exc
    labels = np.fromfile(model_dir / LABELS_FILE, dtype="<f4").astype(np.float32)
    if labels.shape[0] != index.ntotal:
        raise ClientError(
            f"{LABELS_FILE} holds {labels.shape[0]} labels for an index of {index.ntotal} points"
        )
    reduction = meta.get("dimension_reduction")
    reducer = Reducer.from_json(reduction) if reduction else None
    feature_dim = int(meta.get("feature_dim") or (reducer.input_dim if reducer else index.dim))
    return KNNModel(
        k=int(meta["k"]),
        predictor_type=str(meta["predictor_type"]),
        index=index,
        labels=labels,
        feature_dim=feature_dim,
        prepare=Preprocess(reducer, index.dim, bool(meta.get("normalize", False))),
        index_type=str(meta.get("index_type", "faiss.Flat")),
        index_metric=str(meta.get("index_metric", "L2")),
    )
