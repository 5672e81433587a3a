"""FM's channels as epochs of labelled mini-batches with ``feature_dim`` columns.

The batching and the feature checks are ``common.batches``; FM adds its label rules (one label
per record, 0/1 for a binary classifier) and hands the batches to the trainer as pairs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from forgeml.algorithms.base import ChannelInput
from forgeml.algorithms.common.batches import EpochBatches, one_label_per_record
from forgeml.algorithms.factorization_machines.model import Features
from forgeml.errors import ClientError


class LabelledBatches(EpochBatches):
    """One channel, conformed: ``pairs()`` yields an epoch of ``(features, labels)``."""

    def __init__(self, channel: ChannelInput, feature_dim: int, batch_size: int, classifier: bool) -> None:
        super().__init__(channel, feature_dim, batch_size, densify=False, need_labels=True)
        self.classifier = classifier

    def pairs(self) -> Iterator[tuple[Features, np.ndarray]]:
        for batch in self.epoch():
            assert batch.labels is not None  # need_labels
            yield batch.features, batch.labels

    def labels(self, labels: np.ndarray | None) -> np.ndarray:
        name = self.channel.name
        missing = (
            f"the {name} channel has records without a label; Factorization Machines needs "
            "label['values'] in every record"
        )
        values = one_label_per_record(labels, name, missing).astype(np.float64)
        if self.classifier and not np.isin(values, (0.0, 1.0)).all():
            bad = values[~np.isin(values, (0.0, 1.0))][0]
            raise ClientError(
                f"predictor_type=binary_classifier needs labels 0 or 1, "
                f"but the {name} channel has label {bad:g}"
            )
        return values
