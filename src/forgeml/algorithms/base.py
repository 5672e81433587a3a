"""The interface every built-in algorithm implements.

An algorithm is a declaration (name, hyperparameter schema, channels, content types, metric
definitions) plus three behaviours: ``train`` (inside a job, reading channels and writing
``model_dir``), ``load_model`` (from an extracted ``model.tar.gz``) and ``invoke`` (one inference
request in SageMaker's content types). The platform, the tuner and the model server only talk to
this interface, so an algorithm is a package that can be written and tested on its own.
"""

from __future__ import annotations

import importlib
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.algorithms.hyperparameters import HyperparameterSchema
from forgeml.algorithms.logging import AlgorithmLogger
from forgeml.errors import ClientError, ValidationException

if TYPE_CHECKING:
    from forgeml.data.dataset import RecordBatch


@dataclass(frozen=True)
class ChannelSpec:
    """A channel the algorithm reads: whether it is required and which content types it takes."""

    name: str
    required: bool = False
    content_types: tuple[str, ...] = ()
    input_modes: tuple[str, ...] = ("File", "Pipe")


@dataclass
class ChannelInput:
    """A channel as delivered to a running job.

    File mode: ``path`` is the folder holding the channel's files. Pipe mode: ``path`` is where the
    channel's folder would be; its FIFOs ``<name>_0``, ``<name>_1``, ... (one per epoch, each
    readable once) sit beside it, as SageMaker's ``/opt/ml/input/data/<name>_<epoch>``.
    """

    name: str
    path: Path
    content_type: str
    input_mode: str = "File"
    _epochs_read: int = 0

    def read(self) -> RecordBatch:
        """The whole channel in memory (Pipe mode reads the next epoch's FIFO once)."""
        from forgeml.data.channel import iter_channel, read_channel
        from forgeml.data.dataset import concat_batches

        if self.input_mode == "Pipe":
            return concat_batches(list(iter_channel(self._next_pipe(), self.content_type, channel=self.name)))
        return read_channel(self.path, self.content_type, channel=self.name)

    def iter_batches(self, batch_size: int = 1000) -> Iterator[RecordBatch]:
        """Stream the channel in batches, with bounded memory (one pass = one epoch in Pipe mode)."""
        from forgeml.data.channel import iter_channel

        source = self._next_pipe() if self.input_mode == "Pipe" else self.path
        return iter_channel(source, self.content_type, batch_size=batch_size, channel=self.name)

    def _next_pipe(self, timeout: float = 60.0) -> Path:
        """The next epoch's FIFO; SageMaker may create it a moment after the last one ended."""
        fifo = self.path.parent / f"{self.name}_{self._epochs_read}"
        self._epochs_read += 1
        deadline = time.monotonic() + timeout
        while not fifo.exists():
            if time.monotonic() > deadline:
                raise ClientError(f"Pipe mode: the FIFO {fifo.name} for channel '{self.name}' did not appear")
            time.sleep(0.01)
        return fifo


@dataclass
class TrainingContext:
    """Everything a built-in algorithm's ``train`` may use; nothing else about the platform."""

    job_name: str
    hyperparameters: dict[str, Any]
    raw_hyperparameters: dict[str, str]
    channels: dict[str, ChannelInput]
    model_dir: Path
    output_data_dir: Path
    checkpoint_dir: Path | None = None
    current_host: str = "algo-1"
    hosts: list[str] = field(default_factory=lambda: ["algo-1"])
    num_cpus: int = 1
    num_gpus: int = 0
    log: AlgorithmLogger = field(default_factory=AlgorithmLogger)

    def channel(self, name: str) -> ChannelInput | None:
        return self.channels.get(name)


class UnsupportedContentType(ValidationException):
    """A request body or Accept type the algorithm does not serve (HTTP 415 at the endpoint)."""

    code = "UnsupportedContentType"
    http_status = 415


class InferenceError(ClientError):
    """A request body the handler cannot use; becomes SageMaker's ModelError at an endpoint."""


class BuiltinAlgorithm:
    """Subclass this and fill in the declarations; the package's train/serve modules do the work."""

    #: the registry key, as in SageMaker's image repository (``linear-learner``, ``xgboost``)
    name: str
    #: the ``Algorithm`` dimension in ``#metrics`` lines (``Linear Learner``)
    display_name: str
    hyperparameters: HyperparameterSchema
    channels: tuple[ChannelSpec, ...]
    #: the training content type assumed when a channel sets none
    default_content_type: str = "application/x-recordio-protobuf"
    #: SageMaker's MetricDefinitions for the algorithm: [{"Name": ..., "Regex": ...}]
    metric_definitions: tuple[dict[str, str], ...] = ()
    request_content_types: tuple[str, ...] = ()
    accept_types: tuple[str, ...] = ("application/json",)
    default_accept: str = "application/json"
    #: whether ``train`` can use several hosts; otherwise the platform runs it on one host
    supports_distributed: bool = False

    # -- validation at job creation ---------------------------------------------------------------
    def validate_hyperparameters(self, raw: dict[str, str]) -> dict[str, Any]:
        """Typed hyperparameters; override ``check_hyperparameters`` for rules across parameters."""
        values = self.hyperparameters.validate(raw)
        self.check_hyperparameters(values)
        return values

    def check_hyperparameters(self, values: dict[str, Any]) -> None:
        """Rules that involve several parameters; raise HyperparameterError. Default: none."""
        return None

    def metric_names(self) -> list[str]:
        return [definition["Name"] for definition in self.metric_definitions]

    def emits_metric(self, metric_name: str) -> bool:
        return metric_name in self.metric_names()

    def match_metric(self, metric_name: str, line: str) -> float | None:
        for definition in self.metric_definitions:
            if definition["Name"] == metric_name:
                found = re.search(definition["Regex"], line)
                if found:
                    return float(found.group(1))
        return None

    # -- behaviour ---------------------------------------------------------------------------------
    # By convention an algorithm's package holds ``train.py`` with ``train(ctx)`` and ``serve.py``
    # with ``load_model(model_dir)`` and ``invoke(model, body, content_type, accept)``. They are
    # imported on first use, so declaring an algorithm (the registry does, in every job) stays cheap.
    @property
    def package(self) -> str:
        return str(sys.modules[type(self).__module__].__package__)

    def _module(self, name: str) -> Any:
        return importlib.import_module(f"{self.package}.{name}")

    def train(self, ctx: TrainingContext) -> None:
        """Train on ``ctx.channels`` and write the artifact into ``ctx.model_dir``.

        Problems with the user's input (shape, labels, content type) raise ClientError, so the job's
        FailureReason starts with ``ClientError:``.
        """
        self._module("train").train(ctx)

    def load_model(self, model_dir: Path) -> Any:
        """Load what ``train`` wrote (the extracted ``model.tar.gz``)."""
        return self._module("serve").load_model(model_dir)

    def invoke(self, model: Any, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """Answer one inference request: the response body and its content type.

        Raises UnsupportedContentType for a content type or Accept the algorithm does not serve,
        InferenceError for a body it cannot parse.
        """
        answer: tuple[bytes, str] = self._module("serve").invoke(model, body, content_type, accept)
        return answer
