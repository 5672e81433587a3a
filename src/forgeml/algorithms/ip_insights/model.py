"""The IP Insights network: an entity embedding table, a prefix-aware IP encoder, a dot product.

``score(entity, ip) = <entity_table[hash(entity)], encoder(ip)>`` where ``encoder`` sums the IP's
/8, /16 and hashed /24 rows of ``ip_table`` and passes the sum through ``num_ip_encoder_layers``
fully connected ``vector_dim -> vector_dim`` layers (ReLU between layers, the last one linear, so
the embedding can take either sign). Weights follow MXNet's ``FullyConnected`` convention
``y = x W^T + b``. The score is the log-odds that the pair is real; training applies a sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forgeml.algorithms.ip_insights.encoding import IP_TABLE_ROWS, ip_prefix_rows

_CHUNK = 1 << 16  # rows per chunk when scoring large inputs


@dataclass
class EncoderPass:
    """What the backward pass needs from one forward pass of the IP encoder."""

    rows: np.ndarray  # (n, 3) ip_table rows
    inputs: list[np.ndarray]  # the input of each dense layer
    pre_activations: list[np.ndarray]  # each layer's x W^T + b


@dataclass
class IPInsightsModel:
    entity_table: np.ndarray
    ip_table: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @property
    def vector_dim(self) -> int:
        return int(self.entity_table.shape[1])

    @property
    def num_entity_vectors(self) -> int:
        return int(self.entity_table.shape[0])

    def encode(self, ips: np.ndarray) -> tuple[np.ndarray, EncoderPass]:
        """IP embeddings (n, vector_dim) and the pass needed to backpropagate through them."""
        rows = ip_prefix_rows(ips)
        table = self.ip_table
        h = table[rows[:, 0]] + table[rows[:, 1]] + table[rows[:, 2]]
        inputs: list[np.ndarray] = []
        pre: list[np.ndarray] = []
        last = len(self.weights) - 1
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            inputs.append(h)
            z = h @ weight.T + bias
            pre.append(z)
            h = np.maximum(z, 0.0) if layer < last else z
        return h, EncoderPass(rows, inputs, pre)

    def backward(self, grad_out: np.ndarray, cache: EncoderPass) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Gradients of the layers' weights and biases, and of the summed prefix embedding."""
        grad_w: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        grad_b: list[np.ndarray] = [np.empty(0)] * len(self.weights)
        grad = grad_out
        last = len(self.weights) - 1
        for layer in range(last, -1, -1):
            if layer < last:
                grad = grad * (cache.pre_activations[layer] > 0)
            grad_w[layer] = grad.T @ cache.inputs[layer]
            grad_b[layer] = grad.sum(axis=0)
            grad = grad @ self.weights[layer]
        return grad_w, grad_b, grad

    def ip_embedding(self, ips: np.ndarray) -> np.ndarray:
        parts = [self.encode(ips[i : i + _CHUNK])[0] for i in range(0, ips.shape[0], _CHUNK)]
        return np.concatenate(parts) if parts else np.zeros((0, self.vector_dim), dtype=np.float32)

    def dot_products(self, entity_rows: np.ndarray, ips: np.ndarray) -> np.ndarray:
        """The score of each (entity row, IP) pair."""
        scores = np.empty(entity_rows.shape[0], dtype=np.float64)
        for start in range(0, entity_rows.shape[0], _CHUNK):
            stop = start + _CHUNK
            embedded = self.encode(ips[start:stop])[0]
            scores[start:stop] = np.einsum("ij,ij->i", self.entity_table[entity_rows[start:stop]], embedded)
        return scores


def initial_model(num_entity_vectors: int, vector_dim: int, layers: int, rng: np.random.Generator) -> IPInsightsModel:
    """Embeddings with unit expected norm; Glorot-uniform dense layers with zero biases."""
    scale = 1.0 / np.sqrt(vector_dim)
    limit = np.sqrt(6.0 / (2 * vector_dim))
    return IPInsightsModel(
        entity_table=rng.normal(0.0, scale, size=(num_entity_vectors, vector_dim)).astype(np.float32),
        ip_table=rng.normal(0.0, scale / np.sqrt(3.0), size=(IP_TABLE_ROWS, vector_dim)).astype(np.float32),
        weights=[rng.uniform(-limit, limit, size=(vector_dim, vector_dim)).astype(np.float32) for _ in range(layers)],
        biases=[np.zeros(vector_dim, dtype=np.float32) for _ in range(layers)],
    )
