"""SageMaker's PCA (``pca``): streaming covariance (regular) or random sketch (randomized).

This module only declares the algorithm; numpy/scipy work lives in ``train``/``serve`` and is
imported when a job or an endpoint needs it.
"""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelSpec
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


ALGORITHM = PCA()
