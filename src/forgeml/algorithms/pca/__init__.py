"""SageMaker's PCA (``pca``): streaming covariance (regular) or random sketch (randomized).

This module only declares the algorithm; numpy/scipy work lives in ``train``/``serve`` and is
imported when a job or an endpoint needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelSpec, TrainingContext
from forgeml.algorithms.logging import progress_metric_definitions
from forgeml.algorithms.pca.hyperparameters import SCHEMA, check

_TRAINING_TYPES = ("text/csv", "application/x-recordio-protobuf")


class PCA(BuiltinAlgorithm):
    name = "pca"
    display_name = "PCA"  # the Algorithm dimension observed in SageMaker's #metrics lines
    hyperparameters = SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=_TRAINING_TYPES),
        ChannelSpec("test", content_types=_TRAINING_TYPES),
    )
    default_content_type = "application/x-recordio-protobuf"
    # SageMaker defines no objective metric for PCA: only the generic first-party definitions.
    metric_definitions = (
        *progress_metric_definitions(),
    )
    request_content_types = (
        "text/csv",
        "application/json",
        "application/jsonlines",
        "application/x-recordio-protobuf",
    )
    accept_types = ("application/json", "application/jsonlines", "application/x-recordio-protobuf")
    default_accept = "application/json"

    def check_hyperparameters(self, values: dict[str, Any]) -> None:
        check(values)

    def train(self, ctx: TrainingContext) -> None:
        from forgeml.algorithms.pca.train import train

        train(ctx)

    def load_model(self, model_dir: Path) -> Any:
        from forgeml.algorithms.pca.serve import load_model

        return load_model(model_dir)

    def invoke(self, model: Any, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        from forgeml.algorithms.pca.serve import invoke

        return invoke(model, body, content_type, accept)


ALGORITHM = PCA()
