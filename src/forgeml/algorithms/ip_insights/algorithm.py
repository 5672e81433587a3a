"""The IP Insights declaration: channels, content types and metric regexes (reference §8)."""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelSpec
from forgeml.algorithms.ip_insights import hyperparameters
from forgeml.algorithms.logging import progress_metric_definitions

CSV = "text/csv"


class IPInsights(BuiltinAlgorithm):
    name = "ipinsights"
    display_name = "AWS/IPInsights"  # the #metrics Algorithm dimension is UNVERIFIED for IP Insights
    hyperparameters = hyperparameters.SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=(CSV,), input_modes=("File",)),
        ChannelSpec("validation", content_types=(CSV,), input_modes=("File",)),
    )
    default_content_type = CSV
    metric_definitions = (
        {
            "Name": "validation:discriminator_auc",
            "Regex": r"#quality_metric: host=\S+, epoch=\S+, validation discriminator_auc <score>=(\S+)",
        },
        {
            "Name": "train:binary_classification_accuracy",
            "Regex": r"#quality_metric: host=\S+, epoch=\S+, batch=\S+ train binary_classification_accuracy <score>=(\S+)",
        },
        {
            "Name": "train:binary_classification_accuracy:epoch",
            "Regex": r"#quality_metric: host=\S+, epoch=\S+, train binary_classification_accuracy <score>=(\S+)",
        },
        {
            "Name": "train:binary_classification_cross_entropy",
            "Regex": r"#quality_metric: host=\S+, epoch=\S+, batch=\S+ train binary_classification_cross_entropy <loss>=(\S+)",
        },
        {
            "Name": "train:binary_classification_cross_entropy:epoch",
            "Regex": r"#quality_metric: host=\S+, epoch=\S+, train binary_classification_cross_entropy <loss>=(\S+)",
        },
        *progress_metric_definitions(),
    )
    request_content_types = (CSV, "application/json", "application/jsonlines")
    accept_types = ("application/json", "application/jsonlines")
    default_accept = "application/json"

    def check_hyperparameters(self, values: dict[str, Any]) -> None:
        hyperparameters.check(values)
