"""K-Means inference: load the centroids from ``model_algo-1``, answer closest_cluster requests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forgeml.algorithms.common.artifact import MODEL_FILE, load_ndarray_model
from forgeml.algorithms.inference import decode_request, encode_response
from forgeml.algorithms.kmeans import KMeans
from forgeml.algorithms.kmeans.webscale import nearest_centers
from forgeml.errors import ClientError


@dataclass
class KMeansModel:
    """The k × feature_dim centroids, exactly as ``mx.nd.load('model_algo-1')[0]`` returns them."""

    centroids: np.ndarray

    @property
    def feature_dim(self) -> int:
        return int(self.centroids.shape[1])

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Closest centroid per row and the (unsquared) Euclidean distance to it."""
        labels, squared = nearest_centers(features, self.centroids)
        return labels, np.sqrt(squared)


def load_model(model_dir: Path) -> KMeansModel:
    arrays = load_ndarray_model(model_dir, "K-Means")
    values = list(arrays.values()) if isinstance(arrays, dict) else arrays
    if len(values) != 1 or values[0].ndim != 2:
        raise ClientError(f"{MODEL_FILE} must hold one (k, feature_dim) array of centroids")
    return KMeansModel(np.ascontiguousarray(values[0], dtype=np.float32))


def invoke(model: KMeansModel, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    features, response_type = decode_request(KMeans, body, content_type, accept, n_features=model.feature_dim)
    labels, distances = model.predict(features)
    # Cluster ids are floats in every response format (reference §5.4). Whether SageMaker's
    # distance_to_cluster is squared is UNVERIFIED; "distance" reads as the Euclidean distance.
    rows = [
        {"closest_cluster": float(label), "distance_to_cluster": float(np.float32(distance))}
        for label, distance in zip(labels.tolist(), distances.tolist(), strict=True)
    ]
    return encode_response(rows, response_type)
