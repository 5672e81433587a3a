"""The XGBoost built-in algorithm's declaration: what SageMaker's ``sagemaker-xgboost`` image offers.

Only light modules are imported here (the registry loads this in every job); training, loading
and serving import XGBoost when they run.
"""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelSpec
from forgeml.algorithms.xgboost.hyperparameters import SCHEMA, check
from forgeml.algorithms.xgboost.metrics import metric_definitions

TRAINING_CONTENT_TYPES = ("text/libsvm", "text/csv", "application/x-parquet", "application/x-recordio-protobuf")


class XGBoostAlgorithm(BuiltinAlgorithm):
    name = "xgboost"
    display_name = "XGBoost"
    hyperparameters = SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=TRAINING_CONTENT_TYPES),
        ChannelSpec("validation", content_types=TRAINING_CONTENT_TYPES),
    )
    default_content_type = "text/libsvm"
    metric_definitions = metric_definitions()
    request_content_types = ("text/csv", "text/libsvm", "text/x-libsvm", "application/x-recordio-protobuf")
    accept_types = ("text/csv", "application/json", "application/jsonlines", "application/x-recordio-protobuf")
    default_accept = "text/csv"

    def check_hyperparameters(self, values: dict[str, Any]) -> None:
        check(values)
