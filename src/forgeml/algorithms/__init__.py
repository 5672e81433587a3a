"""Built-in algorithms: one package each, behind the ``BuiltinAlgorithm`` interface."""

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelInput, ChannelSpec, TrainingContext
from forgeml.algorithms.registry import available, canonical_name, get_algorithm

__all__ = [
    "BuiltinAlgorithm",
    "ChannelInput",
    "ChannelSpec",
    "TrainingContext",
    "available",
    "canonical_name",
    "get_algorithm",
]
