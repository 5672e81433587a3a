"""SageMaker's K-Means (``kmeans``): web-scale mini-batch k-means with a local Lloyd's reduction.

This module only declares the algorithm; numpy work lives in ``train``/``serve`` and is imported
when a job or an endpoint needs it.
"""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelSpec
from forgeml.algorithms.kmeans.hyperparameters import SCHEMA, check
from forgeml.algorithms.logging import progress_metric_definitions

_TRAINING_TYPES = ("text/csv", "application/x-recordio-protobuf")


class KMeans(BuiltinAlgorithm):
    name = "kmeans"
    # the ``Algorithm`` dimension observed in SageMaker's K-Means #metrics lines
    display_name = "AWS/KMeansWebscale"
    hyperparameters = SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=_TRAINING_TYPES),
        ChannelSpec("test", content_types=_TRAINING_TYPES),
    )
    default_content_type = "application/x-recordio-protobuf"
    metric_definitions = (
        {"Name": "test:msd", "Regex": r"#quality_metric: host=\S+, test msd <loss>=(\S+)"},
        {"Name": "test:ssd", "Regex": r"#quality_metric: host=\S+, test ssd <loss>=(\S+)"},
        {"Name": "train:msd", "Regex": r"#quality_metric: host=\S+, train msd <loss>=(\S+)"},
        *progress_metric_definitions(),
    )
    request_content_types = (
        "text/csv",
        "application/json",
        "application/jsonlines",
        "application/x-recordio-protobuf",
    )
    accept_types = (
        "application/json",
        "application/jsonlines",
        "text/csv",
        "application/x-recordio-protobuf",
    )
    default_accept = "application/json"

    def check_hyperparameters(self, values: dict[str, Any]) -> None:
        check(values)


ALGORITHM = KMeans()
