"""The ``BuiltinAlgorithm`` declaration; training and serving code is imported when first used."""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelSpec
from forgeml.algorithms.linear_learner.hyperparameters import SCHEMA, check_hyperparameters
from forgeml.algorithms.linear_learner.metrics import METRIC_DEFINITIONS

_TRAINING_TYPES = ("application/x-recordio-protobuf", "text/csv")


class LinearLearner(BuiltinAlgorithm):
    """SageMaker's Linear Learner: binary, multiclass and regression linear models."""

    name = "linear-learner"
    display_name = "Linear Learner"
    hyperparameters = SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=_TRAINING_TYPES),
        ChannelSpec("validation", content_types=_TRAINING_TYPES),
        ChannelSpec("test", content_types=_TRAINING_TYPES),
    )
    default_content_type = "application/x-recordio-protobuf"
    metric_definitions = METRIC_DEFINITIONS
    request_content_types = (
        "text/csv",
        "application/json",
        "application/jsonlines",
        "application/x-recordio-protobuf",
    )
    accept_types = (
        "application/json",
        "application/jsonlines",
        "application/x-recordio-protobuf",
        "text/csv",
    )
    default_accept = "application/json"

    def check_hyperparameters(self, values: dict[str, Any]) -> None:
        check_hyperparameters(values)
