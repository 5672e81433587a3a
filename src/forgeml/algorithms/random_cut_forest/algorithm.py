"""The Random Cut Forest declaration: channels, content types and metric regexes (reference §7)."""

from __future__ import annotations

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelSpec
from forgeml.algorithms.logging import progress_metric_definitions
from forgeml.algorithms.random_cut_forest.hyperparameters import SCHEMA

CSV = "text/csv"
RECORDIO = "application/x-recordio-protobuf"


class RandomCutForest(BuiltinAlgorithm):
    name = "randomcutforest"
    display_name = "RandomCutForest"
    hyperparameters = SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=(CSV, RECORDIO)),
        ChannelSpec("test", content_types=(CSV, RECORDIO)),
    )
    default_content_type = RECORDIO
    metric_definitions = (
        # SageMaker's regex for test:f1 is not published (UNVERIFIED); this matches the
        # #quality_metric line written for the anomalous class's F1.
        {"Name": "test:f1", "Regex": r"#quality_metric: host=\S+, test f1 <score>=(\S+)"},
        *progress_metric_definitions(),
    )
    # JSON Lines requests are presumably accepted like the other first-party algorithms (UNVERIFIED).
    request_content_types = ("text/csv", "application/json", "application/jsonlines", RECORDIO)
    accept_types = ("application/json", "application/jsonlines", RECORDIO)
    default_accept = "application/json"
