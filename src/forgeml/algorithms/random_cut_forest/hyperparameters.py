"""Random Cut Forest hyperparameters (reference §7.1), with the container-only keys it accepts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from forgeml.algorithms.common.hyperparameters import mxnet_internal_keys
from forgeml.algorithms.hyperparameters import Bool, Hyperparameter, HyperparameterSchema, Int

EVAL_METRICS = ("accuracy", "precision_recall_fscore")


@dataclass(frozen=True)
class MetricList(Hyperparameter):
    """A non-empty list drawn from ``choices``: the SDK sends JSON (``["accuracy"]``); a plain
    comma-separated string is accepted too."""

    def rule_text(self) -> str:
        return "be a non-empty list drawn from [" + ", ".join(self.choices) + "]"

    def _convert(self, text: str) -> Any:
        items = json.loads(text) if text.startswith("[") else [t.strip() for t in text.split(",") if t.strip()]
        if not isinstance(items, list) or not items or any(item not in self.choices for item in items):
            raise ValueError(text)
        return list(dict.fromkeys(items))


SCHEMA = HyperparameterSchema(
    "randomcutforest",
    [
        Int("feature_dim", required=True, minimum=1, maximum=10000),
        Int("num_trees", 100, minimum=50, maximum=1000),
        Int("num_samples_per_tree", 256, minimum=1, maximum=2048),
        MetricList("eval_metrics", "json", list(EVAL_METRICS), choices=EVAL_METRICS),
        # Container-only keys (observed default configuration). The forest is built in one pass
        # over the data, read in mini_batch_size-row batches; SageMaker fixes epochs at 1.
        Int("mini_batch_size", 1000, minimum=1),
        Int("epochs", 1, minimum=1, maximum=1),
        # Sparse rows are densified for the cuts either way, so the forest does not depend on it.
        Bool("force_dense", True),
        # MXNet container keys, and the parameter server's port: accepted without effect.
        *mxnet_internal_keys(kvstore="dist_async", extra={"_ftp_port": "8999"}),
    ],
)
