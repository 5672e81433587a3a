"""The channels as Linear Learner reads them: checked batches, in memory or streamed.

File mode reads a channel once into memory and serves shuffled mini-batches from it. Pipe mode
streams every pass from the next epoch's FIFO (``ChannelInput`` waits for it to appear); the first
pass also fills the scaler sample, which is trained on as part of epoch 0, so memory holds the
sample plus one batch. Every batch is checked against the job's settings (the feature and label
checks shared with the other algorithms are ``common.batches``), and problems become ClientErrors
that say what to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import scipy.sparse as sp

from forgeml.algorithms.base import ChannelInput
from forgeml.algorithms.common.batches import conform_features, one_label_per_record
from forgeml.algorithms.linear_learner.hyperparameters import BINARY, MULTICLASS
from forgeml.data.dataset import RecordBatch
from forgeml.errors import ClientError

Features: TypeAlias = np.ndarray | sp.csr_matrix


@dataclass
class Batch:
    """Rows ready for the maths: float32 features (dense or CSR) and 1-D float32 labels.

    (Neither CSV nor RecordIO-protobuf carries per-record weights, so there are none here.)
    """

    features: Features
    labels: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.features.shape[0])

    def take(self, index: np.ndarray) -> Batch:
        return Batch(self.features[index], self.labels[index])

    def rows_between(self, start: int, stop: int) -> Batch:
        return Batch(self.features[start:stop], self.labels[start:stop])


def stack(batches: list[Batch]) -> Batch:
    """Row-wise concatenation of checked batches (all the same width)."""
    if len(batches) == 1:
        return batches[0]
    features: Features
    if any(sp.issparse(b.features) for b in batches):
        features = sp.vstack([sp.csr_matrix(b.features) for b in batches], format="csr", dtype=np.float32)
    else:
        features = np.concatenate([b.features for b in batches], axis=0)
    return Batch(features, np.concatenate([b.labels for b in batches]))


class BatchChecker:
    """Validates batches against ``feature_dim`` and the predictor type's label rules.

    With ``feature_dim=auto`` the train channel's first batch fixes the width; every later batch
    and every other channel must agree. Sparse batches narrower than the width are widened (a
    sparse record's width is only as large as its ``shape``).
    """

    def __init__(self, predictor_type: str, num_classes: int | None, feature_dim: int | None) -> None:
        self.predictor_type = predictor_type
        self.num_classes = num_classes
        self.declared = feature_dim is not None
        self.feature_dim = feature_dim

    def __call__(self, batch: RecordBatch, channel: str) -> Batch:
        return Batch(self._features(batch.features, channel), self._labels(batch.labels, channel))

    def _features(self, features: Features, channel: str) -> Features:
        width = int(features.shape[1])
        if self.feature_dim is None:
            self.feature_dim = width
        expected = self.feature_dim
        if not self.declared and width != expected and not (sp.issparse(features) and width < expected):
            raise ClientError(
                f"the {channel} channel has {width} features but earlier records have {expected}; "
                "every record needs the same number of features (set feature_dim to check it up front)"
            )
        return conform_features(features, expected, channel)

    def _labels(self, labels: np.ndarray | None, channel: str) -> np.ndarray:
        missing = (
            f"the {channel} channel has no labels: Linear Learner needs one label per record "
            "(CSV: the first column; RecordIO-protobuf: label['values'])"
        )
        values = one_label_per_record(labels, channel, missing)
        if self.predictor_type == BINARY:
            bad = values[(values != 0) & (values != 1)]
            if bad.size:
                raise ClientError(
                    f"the {channel} channel has label {float(bad[0])!r} but predictor_type=binary_classifier needs labels 0 or 1"
                )
        elif self.predictor_type == MULTICLASS:
            classes = int(self.num_classes or 0)
            bad = values[(values < 0) | (values >= classes) | (values != np.floor(values))]
            if bad.size:
                raise ClientError(
                    f"the {channel} channel has label {float(bad[0])!r} but num_classes={classes} needs integer labels "
                    f"from 0 to {classes - 1}"
                )
        return values


class TrainData:
    """The train channel, pass by pass; ``sample`` is the scaler's sample (also the calibration
    sample when no validation channel exists)."""

    def __init__(
        self,
        channel: ChannelInput,
        checker: BatchChecker,
        batch_size: int,
        sample_size: int,
        rng: np.random.Generator,
    ) -> None:
        self.channel = channel
        self.checker = checker
        self.batch_size = batch_size
        self.rng = rng
        self.in_memory: Batch | None = None
        self._pending: Iterator[RecordBatch] | None = None
        self._buffered: list[Batch] = []
        if channel.input_mode == "Pipe":
            self.sample = self._fill_sample(sample_size)
        else:
            whole = channel.read()
            if whole.n_rows == 0:
                raise ClientError(f"the {channel.name} channel has no records")
            self.in_memory = checker(whole, channel.name)
            rows = self.in_memory.rows
            if rows <= sample_size:
                self.sample = self.in_memory
            else:
                self.sample = self.in_memory.take(np.sort(rng.choice(rows, sample_size, replace=False)))

    @property
    def sparse(self) -> bool:
        return sp.issparse(self.sample.features)

    def _fill_sample(self, sample_size: int) -> Batch:
        stream = self.channel.iter_batches(self.batch_size)
        rows = 0
        for raw in stream:
            if raw.n_rows == 0:
                continue
            batch = self.checker(raw, self.channel.name)
            self._buffered.append(batch)
            rows += batch.rows
            if rows >= sample_size:
                break
        if rows == 0:
            raise ClientError(f"the {self.channel.name} channel has no records")
        self._pending = stream
        sample = stack(self._buffered)
        return sample.rows_between(0, sample_size) if rows > sample_size else sample

    def epoch(self, index: int) -> Iterator[Batch]:
        """Mini-batches for one epoch (shuffled in File mode; stream order in Pipe mode)."""
        if self.in_memory is not None:
            data = self.in_memory
            order = self.rng.permutation(data.rows)
            for start in range(0, data.rows, self.batch_size):
                yield data.take(order[start : start + self.batch_size])
            return
        if index == 0 and self._pending is not None:
            buffered, stream = self._buffered, self._pending
            self._buffered, self._pending = [], None
            yield from buffered
        else:
            stream = self.channel.iter_batches(self.batch_size)
        for raw in stream:
            if raw.n_rows:
                yield self.checker(raw, self.channel.name)


class EvalData:
    """A validation or test channel, read in passes of ``chunk_rows`` rows."""

    def __init__(self, channel: ChannelInput, checker: BatchChecker, chunk_rows: int) -> None:
        self.channel = channel
        self.checker = checker
        self.chunk_rows = chunk_rows
        self.in_memory: Batch | None = None
        if channel.input_mode != "Pipe":
            whole = channel.read()
            if whole.n_rows == 0:
                raise ClientError(f"the {channel.name} channel has no records")
            self.in_memory = checker(whole, channel.name)

    def chunks(self) -> Iterator[Batch]:
        """One full pass over the channel (Pipe mode: the next FIFO)."""
        if self.in_memory is not None:
            data = self.in_memory
            for start in range(0, data.rows, self.chunk_rows):
                yield data.rows_between(start, start + self.chunk_rows)
            return
        seen = 0
        for raw in self.channel.iter_batches(self.chunk_rows):
            if raw.n_rows:
                seen += raw.n_rows
                yield self.checker(raw, self.channel.name)
        if seen == 0:
            raise ClientError(f"the {self.channel.name} channel has no records")
