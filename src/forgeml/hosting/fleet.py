"""A variant's fleet: its staged model and the worker processes that are its instances.

Every instance of a variant serves the same staged files (read-only), so staging happens once per
fleet and an instance costs one worker process. Instances start in parallel threads; a worker that
cannot start fails the whole ``start`` call with the worker's own output in the message.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeml.hosting.metrics import InvocationMetrics
from forgeml.hosting.upstream import UpstreamPool
from forgeml.serving.handlers import ModelLoadError
from forgeml.serving.model_setup import (
    ContainerSpec,
    model_containers,
    prepare_containers,
    start_model_worker,
)
from forgeml.serving.worker import WorkerProcess, WorkerStartError
from forgeml.storage import ArtifactStore

log = logging.getLogger("forgeml.hosting")


class FleetError(Exception):
    """A variant could not be staged or its workers could not start; the message is the FailureReason."""


@dataclass(eq=False)
class Instance:
    instance_id: str
    process: WorkerProcess
    pool: UpstreamPool
    started_at: float

    @property
    def alive(self) -> bool:
        return self.process.process.poll() is None


def new_instance_id() -> str:
    """SageMaker-shaped instance ids (``i-`` and 17 hex digits) name log streams and instances."""
    return "i-" + secrets.token_hex(9)[:17]


class VariantFleet:
    """The instances of one variant (production or shadow) of one endpoint config."""

    def __init__(self, variant: Mapping[str, Any], model: Mapping[str, Any], folder: Path, artifacts: ArtifactStore,
                 *, environment: Mapping[str, str] | None = None, on_output: Callable[[str, str], None] | None = None
                 ) -> None:
        self.variant = dict(variant)
        self.name: str = variant["VariantName"]
        self.model = dict(model)
        self.folder = folder
        self.artifacts = artifacts
        self.environment = dict(environment or {})
        self.on_output = on_output  # (log stream "<variant>/<instance id>", line) for every line a worker prints
        self.metrics = InvocationMetrics()
        self.instances: list[Instance] = []
        self.specs: list[ContainerSpec] = []
        self._lock = threading.Lock()

    @property
    def images(self) -> list[str]:
        return [c.get("Image") or "" for c in model_containers(self.model)]

    def stage(self) -> None:
        try:
            self.specs = prepare_containers(self.artifacts, self.model, self.folder / "containers")
        except ModelLoadError as exc:
            raise FleetError(f"variant {self.name}: {exc}") from exc

    def _start_one(self) -> Instance:
        instance_id = new_instance_id()
        stream = f"{self.name}/{instance_id}"
        sink = self.on_output
        try:
            process = start_model_worker(self.specs, environment=self.environment,
                                         spec_path=self.folder / "containers.json", args=["--exit-with-parent"],
                                         on_output=(lambda line: sink(stream, line)) if sink else None)
        except (WorkerStartError, ModelLoadError) as exc:
            raise FleetError(f"variant {self.name}: the model server did not start: {exc}") from exc
        return Instance(instance_id, process, UpstreamPool(process.url), time.time())

    def start(self, count: int) -> list[Instance]:
        """Start ``count`` more instances (in parallel); all or none join the fleet."""
        if count <= 0:
            return []
        if not self.specs:
            self.stage()
        with ThreadPoolExecutor(max_workers=min(count, 8)) as pool:
            futures = [pool.submit(self._start_one) for _ in range(count)]
        started, errors = [], []
        for future in futures:
            try:
                started.append(future.result())
            except FleetError as exc:
                errors.append(exc)
        if errors:
            for instance in started:
                instance.process.stop(timeout=5)
            raise errors[0]
        with self._lock:
            self.instances.extend(started)
        return started

    def remove(self, count: int) -> list[Instance]:
        """Take the newest ``count`` instances out of the fleet (the caller stops them once drained)."""
        with self._lock:
            count = min(count, len(self.instances))
            removed = self.instances[len(self.instances) - count:]
            del self.instances[len(self.instances) - count:]
        return removed

    def reap(self) -> list[Instance]:
        """Take dead instances out of the fleet and return them."""
        with self._lock:
            dead = [i for i in self.instances if not i.alive]
            self.instances = [i for i in self.instances if i.alive]
        return dead

    def stop_all(self, timeout: float = 30.0) -> None:
        instances = self.remove(len(self.instances))
        stop_instances(instances, timeout)
        shutil.rmtree(self.folder, ignore_errors=True)


def stop_instances(instances: list[Instance], timeout: float = 30.0) -> None:
    """SIGTERM every worker at once (in-flight requests finish), then wait for them."""
    for instance in instances:
        if instance.alive:
            instance.process.process.terminate()
    for instance in instances:
        instance.process.stop(timeout)
