"""Run a built-in algorithm's training outside a job: used by the job runtime and by tests.

The runtime calls ``train_builtin`` inside the job process with the job folder's channels; tests call
it directly with a temporary folder, so every algorithm can be tested without the control plane.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from forgeml.algorithms.base import BuiltinAlgorithm, ChannelInput, TrainingContext
from forgeml.algorithms.logging import AlgorithmLogger, num_threads
from forgeml.algorithms.registry import get_algorithm
from forgeml.errors import ClientError


@dataclass
class ChannelData:
    """A channel given to ``train_builtin``: a folder (or file) and its content type."""

    path: Path
    content_type: str | None = None
    input_mode: str = "File"


def resolve_content_type(algorithm: BuiltinAlgorithm, channel: str, content_type: str | None) -> str:
    """The channel's content type, defaulted and checked against what the algorithm accepts."""
    from forgeml.data.content_types import canonical_mime, parse_content_type

    chosen = content_type or algorithm.default_content_type
    spec = next((c for c in algorithm.channels if c.name == channel), None)
    if spec is None:
        accepted = ", ".join(c.name for c in algorithm.channels)
        raise ClientError(f"channel '{channel}' is not used by {algorithm.name}; its channels are: {accepted}")
    try:
        mime, _ = parse_content_type(chosen)
        mime = canonical_mime(mime)
    except ValueError as exc:
        raise ClientError(f"channel '{channel}': {exc}") from exc
    if spec.content_types and mime not in spec.content_types:
        raise ClientError(
            f"channel '{channel}' has content type '{chosen}', which {algorithm.name} does not accept; "
            f"accepted: {', '.join(spec.content_types)}"
        )
    return chosen


def build_context(
    algorithm: BuiltinAlgorithm,
    raw_hyperparameters: dict[str, str],
    channels: dict[str, ChannelData],
    model_dir: Path,
    output_data_dir: Path,
    *,
    job_name: str = "local-training",
    checkpoint_dir: Path | None = None,
    current_host: str = "algo-1",
    hosts: list[str] | None = None,
    num_gpus: int = 0,
    stream: TextIO | None = None,
) -> TrainingContext:
    try:
        values = algorithm.validate_hyperparameters(raw_hyperparameters)
    except Exception as exc:  # the same rule as at creation, reported as the user's fault
        raise ClientError(str(exc)) from exc
    for spec in algorithm.channels:
        if spec.required and spec.name not in channels:
            raise ClientError(f"{algorithm.name} requires a '{spec.name}' channel")
    inputs = {}
    for name, data in channels.items():
        content_type = resolve_content_type(algorithm, name, data.content_type)
        inputs[name] = ChannelInput(name, Path(data.path), content_type, data.input_mode)
    model_dir.mkdir(parents=True, exist_ok=True)
    output_data_dir.mkdir(parents=True, exist_ok=True)
    return TrainingContext(
        job_name=job_name,
        hyperparameters=values,
        raw_hyperparameters=dict(raw_hyperparameters),
        channels=inputs,
        model_dir=model_dir,
        output_data_dir=output_data_dir,
        checkpoint_dir=checkpoint_dir,
        current_host=current_host,
        hosts=hosts or [current_host],
        num_cpus=num_threads(),
        num_gpus=num_gpus,
        log=AlgorithmLogger(current_host, stream or sys.stdout, algorithm.display_name),
    )


def train_builtin(
    algorithm_name: str,
    raw_hyperparameters: dict[str, str],
    channels: dict[str, ChannelData],
    model_dir: Path,
    output_data_dir: Path | None = None,
    **kwargs: object,
) -> TrainingContext:
    """Validate, build the context and train; returns the context (its log went to ``stream``)."""
    algorithm = get_algorithm(algorithm_name)
    ctx = build_context(
        algorithm,
        raw_hyperparameters,
        channels,
        Path(model_dir),
        Path(output_data_dir or Path(model_dir).parent / "output-data"),
        **kwargs,  # type: ignore[arg-type]
    )
    algorithm.train(ctx)
    return ctx
