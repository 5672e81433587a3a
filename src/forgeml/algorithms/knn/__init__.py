"""SageMaker's k-NN (``knn``): sample, optionally project, index (Flat / IVFFlat / IVFPQ), vote.

This module only declares the algorithm; numpy/scikit-learn work lives in ``train``/``serve`` and
is imported when a job or an endpoint needs it.
"""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelSpec
from forgeml.algorithms.knn.hyperparameters import SCHEMA, check
from forgeml.algorithms.logging import progress_metric_definitions

_TRAINING_TYPES = ("text/csv", "application/x-recordio-protobuf")


class KNN(BuiltinAlgorithm):
    name = "knn"
    # The Algorithm dimension of k-NN's #metrics lines is UNVERIFIED (reference §0.4).
    display_name = "AWS/KNN"
    hyperparameters = SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=_TRAINING_TYPES),
        ChannelSpec("test", content_types=_TRAINING_TYPES),
    )
    default_content_type = "application/x-recordio-protobuf"
    metric_definitions = (
        {"Name": "test:accuracy", "Regex": r"#quality_metric: host=\S+, test accuracy <score>=(\S+)"},
        {"Name": "test:mse", "Regex": r"#quality_metric: host=\S+, test mse <loss>=(\S+)"},
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


ALGORITHM = KNN()
