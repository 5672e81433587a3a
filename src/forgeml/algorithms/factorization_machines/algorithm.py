"""The Factorization Machines declaration: channels, content types and SageMaker's metric regexes."""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelSpec
from forgeml.algorithms.factorization_machines import hyperparameters
from forgeml.algorithms.logging import progress_metric_definitions

RECORDIO = "application/x-recordio-protobuf"

# (metric as logged, maximize?) for both predictor types
_METRICS = (
    ("binary_classification_accuracy", True),
    ("binary_classification_cross_entropy", False),
    ("binary_f_1.000", True),
    ("rmse", False),
)


def _name(metric: str) -> str:
    return "binary_f_beta" if metric == "binary_f_1.000" else metric


def _definitions() -> tuple[dict[str, str], ...]:
    """SageMaker's FM MetricDefinitions (reference §4.4): test, train final, :epoch and :batch."""
    found: list[dict[str, str]] = []
    for metric, maximize in _METRICS:
        tag = "<score>" if maximize else "<loss>"
        found.append({"Name": f"test:{_name(metric)}", "Regex": rf"#quality_metric: host=\S+, test {metric} {tag}=(\S+)"})
    for metric, maximize in _METRICS:
        tag = "<score>" if maximize else "<loss>"
        name = _name(metric)
        found.append({"Name": f"train:{name}", "Regex": rf"#quality_metric: host=\S+, train {metric} {tag}=(\S+)"})
        found.append(
            {
                "Name": f"train:{name}:epoch",
                "Regex": rf"#quality_metric: host=\S+, epoch=\S+, train {metric} {tag}=(\S+)",
            }
        )
        found.append(
            {
                "Name": f"train:{name}:batch",
                "Regex": rf"#quality_metric: host=\S+, epoch=\S+, batch=\S+ train {metric} {tag}=(\S+)",
            }
        )
    found.extend(progress_metric_definitions())
    return tuple(found)


class FactorizationMachines(BuiltinAlgorithm):
    name = "factorization-machines"
    display_name = "AWS/FactorizationMachines"  # the #metrics Algorithm dimension is UNVERIFIED for FM
    hyperparameters = hyperparameters.SCHEMA
    channels = (
        ChannelSpec("train", required=True, content_types=(RECORDIO,)),
        ChannelSpec("test", content_types=(RECORDIO,)),
    )
    default_content_type = RECORDIO
    metric_definitions = _definitions()
    request_content_types = ("application/json", "application/jsonlines", RECORDIO)
    accept_types = ("application/json", "application/jsonlines", RECORDIO)
    default_accept = "application/json"

    def check_hyperparameters(self, values: dict[str, Any]) -> None:
        hyperparameters.check(values)
