"""IP Insights hyperparameters: SageMaker's names, defaults and ranges (reference §8.1)."""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.common.hyperparameters import mxnet_internal_keys
from forgeml.algorithms.hyperparameters import Float, HyperparameterError, HyperparameterSchema, Int

# SageMaker's documented model size limit; the entity table dominates it.
MODEL_BYTES_LIMIT = 8 * 1024**3

SCHEMA = HyperparameterSchema(
    "ipinsights",
    [
        Int("num_entity_vectors", required=True, minimum=1, maximum=250_000_000),
        Int("vector_dim", required=True, minimum=4, maximum=4096),
        Int("batch_metrics_publish_interval", 1000, minimum=1),
        Int("epochs", 10, minimum=1),
        Float("learning_rate", 0.001, minimum=1e-6, maximum=10.0),
        Int("mini_batch_size", 10000, minimum=1, maximum=500_000),
        Int("num_ip_encoder_layers", 1, minimum=0, maximum=100),
        Int("random_negative_sampling_rate", 1, minimum=0, maximum=500),
        Int("shuffled_negative_sampling_rate", 1, minimum=0, maximum=500),
        Float("weight_decay", 0.00001, minimum=0.0, maximum=10.0),
        # MXNet container keys (kvstore, GPUs, log level...): accepted without effect.
        *mxnet_internal_keys(),
    ],
)


def check(values: dict[str, Any]) -> None:
    """1 <= random + shuffled negative rates <= 500, and the model within SageMaker's 8 GB."""
    rates = values["random_negative_sampling_rate"] + values["shuffled_negative_sampling_rate"]
    if not 1 <= rates <= 500:
        raise HyperparameterError(
            "HyperParameters: random_negative_sampling_rate + shuffled_negative_sampling_rate must be "
            f"between 1 and 500, got {rates}"
        )
    size = values["num_entity_vectors"] * values["vector_dim"] * 4
    if size > MODEL_BYTES_LIMIT:
        raise HyperparameterError(
            f"HyperParameters: num_entity_vectors * vector_dim = {values['num_entity_vectors'] * values['vector_dim']} "
            "float32 weights exceed the 8 GB model size limit"
        )
