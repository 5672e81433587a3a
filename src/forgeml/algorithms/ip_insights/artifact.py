"""The IP Insights artifact: ``model_algo-1``, a zip of MXNet-format parameters and metadata.

SageMaker's artifact for IP Insights is undocumented (UNVERIFIED). Like the other MXNet-based
first-party models it is a zip: ``params`` is an MXNet NDArray file (``mx.nd.load`` reads it) with
``arg:entity_embedding_weight`` (num_entity_vectors, vector_dim), ``arg:ip_embedding_weight``
(prefix rows, vector_dim) and ``arg:ip_encoder_dense<i>_weight`` / ``_bias`` in MXNet's
``FullyConnected`` layout; ``meta.json`` records the hyperparameters and the entity hash and IP
prefix layout the embeddings were trained with.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from forgeml.algorithms.common.artifact import MODEL_FILE, load_params_zip, model_file, save_params_zip
from forgeml.algorithms.ip_insights import encoding
from forgeml.algorithms.ip_insights.model import IPInsightsModel

ENTITY_HASH = "blake2b-64(utf-8 entity) mod num_entity_vectors"


def save(model: IPInsightsModel, model_dir: Path) -> Path:
    arrays = {"arg:entity_embedding_weight": model.entity_table, "arg:ip_embedding_weight": model.ip_table}
    for layer, (weight, bias) in enumerate(zip(model.weights, model.biases, strict=True)):
        arrays[f"arg:ip_encoder_dense{layer}_weight"] = weight
        arrays[f"arg:ip_encoder_dense{layer}_bias"] = bias
    meta = {
        "training_parameters": {
            "num_entity_vectors": model.num_entity_vectors,
            "vector_dim": model.vector_dim,
            "num_ip_encoder_layers": len(model.weights),
        },
        "entity_hash": ENTITY_HASH,
        "ip_prefix_rows": {
            "slash8": encoding.SLASH8_ROWS,
            "slash16": encoding.SLASH16_ROWS,
            "slash24_buckets": encoding.SLASH24_BUCKETS,
        },
    }
    return save_params_zip(model_dir / MODEL_FILE, arrays, meta, compression=zipfile.ZIP_STORED)


def load(model_dir: Path) -> IPInsightsModel:
    arrays, meta = load_params_zip(model_file(model_dir))
    layers = int(meta["training_parameters"]["num_ip_encoder_layers"])
    return IPInsightsModel(
        entity_table=arrays["arg:entity_embedding_weight"].astype(np.float32),
        ip_table=arrays["arg:ip_embedding_weight"].astype(np.float32),
        weights=[arrays[f"arg:ip_encoder_dense{i}_weight"].astype(np.float32) for i in range(layers)],
        biases=[arrays[f"arg:ip_encoder_dense{i}_bias"].astype(np.float32) for i in range(layers)],
    )
