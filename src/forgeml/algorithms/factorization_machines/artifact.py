"""The FM model artifact: ``model_algo-1``, a zip of MXNet module files (reference §4.6).

The zip holds ``symbol.json`` (the network as an MXNet symbol graph), ``params`` (an MXNet NDArray
file with ``arg:w0_weight`` (1,), ``arg:w1_weight`` (d, 1) and ``arg:v`` (d, k)) and ``meta.json``
(``training_parameters``). SageMaker's FM notebooks unzip it, rename the two MXNet files to
``model-symbol.json`` / ``model-0000.params`` and call ``mx.module.Module.load('./model', 0)`` to
read ``v``, ``w1_weight`` and ``w0_weight``; this layout keeps that working. The layout comes from
a third-party observation (UNVERIFIED against AWS docs), so ``load`` reads only the params and meta.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from forgeml.algorithms.common.artifact import MODEL_FILE, load_params_zip, model_file, save_params_zip
from forgeml.algorithms.factorization_machines.model import FMModel

MXNET_VERSION = 10600


def _symbol_graph(classifier: bool) -> dict[str, Any]:
    """An MXNet symbol graph computing the FM (dense form), as MXNet's ``tojson`` lays it out."""
    nodes: list[dict[str, Any]] = []

    def add(op: str, name: str, inputs: list[int], attrs: dict[str, str] | None = None) -> int:
        node: dict[str, Any] = {"op": op, "name": name, "inputs": [[i, 0, 0] for i in inputs]}
        if attrs:
            node["attrs"] = attrs
        nodes.append(node)
        return len(nodes) - 1

    data = add("null", "data", [])
    w1 = add("null", "w1_weight", [])
    linear = add("dot", "linear", [data, w1])
    w0 = add("null", "w0_weight", [])
    with_bias = add("broadcast_add", "linear_plus_bias", [linear, w0])
    v = add("null", "v", [])
    xv = add("dot", "xv", [data, v])
    xv_sq = add("square", "xv_square", [xv])
    x_sq = add("square", "x_square", [data])
    v_sq = add("square", "v_square", [v])
    x2v2 = add("dot", "x2v2", [x_sq, v_sq])
    diff = add("elemwise_sub", "pairwise_diff", [xv_sq, x2v2])
    summed = add("sum", "pairwise_sum", [diff], {"axis": "1", "keepdims": "True"})
    half = add("_mul_scalar", "pairwise", [summed], {"scalar": "0.5"})
    total = add("elemwise_add", "fm", [with_bias, half])
    label = add("null", "out_label", [])
    add("LogisticRegressionOutput" if classifier else "LinearRegressionOutput", "out", [total, label])
    return {
        "nodes": nodes,
        "arg_nodes": [i for i, node in enumerate(nodes) if node["op"] == "null"],
        "node_row_ptr": list(range(len(nodes) + 1)),
        "heads": [[len(nodes) - 1, 0, 0]],
        "attrs": {"mxnet_version": ["int", MXNET_VERSION]},
    }


def save(model: FMModel, model_dir: Path, training_parameters: dict[str, Any]) -> Path:
    """Write ``model_dir/model_algo-1``."""
    params = {
        "arg:w0_weight": model.w0.astype(np.float32).reshape(1),
        "arg:w1_weight": model.w.astype(np.float32).reshape(-1, 1),
        "arg:v": model.v.astype(np.float32),
    }
    meta = {
        "training_parameters": {
            **training_parameters,
            "feature_dim": model.feature_dim,
            "num_factors": model.num_factors,
            "predictor_type": model.predictor_type,
        }
    }
    symbol = json.dumps(_symbol_graph(model.is_classifier), indent=2)
    return save_params_zip(model_dir / MODEL_FILE, params, meta, extra={"symbol.json": symbol})


def load(model_dir: Path) -> FMModel:
    """Read ``model_algo-1`` back into an ``FMModel``."""
    arrays, meta = load_params_zip(model_file(model_dir))
    parameters = meta["training_parameters"]
    return FMModel(
        predictor_type=parameters["predictor_type"],
        w0=arrays["arg:w0_weight"].astype(np.float32).reshape(1),
        w=arrays["arg:w1_weight"].astype(np.float32).reshape(-1),
        v=arrays["arg:v"].astype(np.float32),
    )
