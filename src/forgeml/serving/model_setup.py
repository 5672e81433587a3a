"""From a model record to running model-server workers: stage each container, then start a worker.

An endpoint's instances and a transform job's instances both run a model (DescribeModel's shape):
one ``PrimaryContainer`` or an inference pipeline of ``Containers``. ``prepare_containers`` lays
each container out once under a folder, as SageMaker does on an instance before ``serve``: its
``ModelDataUrl`` extracted into ``<folder>/<container>/model`` and a remote
``SAGEMAKER_SUBMIT_DIRECTORY`` into ``<container>/code``. ``start_model_worker`` then starts one
worker process serving it (every instance of a variant shares the staged files: they are read-only).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgeml.algorithms.registry import canonical_name
from forgeml.runtime.packaging import extract_tarball
from forgeml.serving.handlers import ModelLoadError
from forgeml.serving.worker import WorkerProcess, start_worker
from forgeml.storage import ArtifactStore

TARBALL_SUFFIXES = (".tar.gz", ".tgz")


@dataclass(frozen=True)
class ContainerSpec:
    """One staged container: what the worker loads (``--model-dir``/``--algorithm`` and its Environment)."""

    model_dir: Path
    algorithm: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ModelDir": str(self.model_dir), "Algorithm": self.algorithm, "Environment": self.environment,
                "Hostname": self.hostname}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContainerSpec:
        return cls(Path(data["ModelDir"]), data.get("Algorithm"), dict(data.get("Environment") or {}),
                   data.get("Hostname"))


def model_containers(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The containers of a model record, in the order requests pass through them."""
    containers = model.get("Containers") or [model["PrimaryContainer"]]
    return [dict(c) for c in containers]


def prepare_containers(artifacts: ArtifactStore, model: Mapping[str, Any], destination: Path) -> list[ContainerSpec]:
    """Stage every container of ``model`` under ``destination``; ModelLoadError says what is missing."""
    specs = []
    for index, container in enumerate(model_containers(model)):
        hostname = container.get("ContainerHostname")
        folder = destination / (hostname or f"container-{index + 1}")
        shutil.rmtree(folder, ignore_errors=True)  # staging again starts clean: no stale archive or links
        model_dir = folder / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        if container.get("ModelDataUrl"):
            _stage_model_data(artifacts, container["ModelDataUrl"], folder, model_dir)
        environment = dict(container.get("Environment") or {})
        submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
        if "://" in submit and not submit.startswith("file://"):
            environment["SAGEMAKER_SUBMIT_DIRECTORY"] = str(_stage_code(artifacts, submit, folder))
        algorithm = canonical_name(container.get("Image") or "")
        specs.append(ContainerSpec(model_dir, algorithm, environment, hostname))
    return specs


def _stage_model_data(artifacts: ArtifactStore, uri: str, folder: Path, model_dir: Path) -> None:
    try:
        if uri.endswith(TARBALL_SUFFIXES):
            archive = folder / "model.tar.gz"
            if not archive.exists():
                artifacts.get_file(uri, archive, link=True)
            extract_tarball(archive, model_dir)
        elif not artifacts.download_prefix(uri.rstrip("/") + "/", model_dir, link=True):
            raise FileNotFoundError(uri)  # an uncompressed model: every object under the prefix, at least one
    except FileNotFoundError:
        raise ModelLoadError(f"the model data {uri} does not exist") from None
    except Exception as exc:
        raise ModelLoadError(f"could not stage the model data {uri}: {type(exc).__name__}: {exc}") from exc


def _stage_code(artifacts: ArtifactStore, uri: str, folder: Path) -> Path:
    code = folder / "code"
    try:
        if uri.endswith(TARBALL_SUFFIXES):
            archive = folder / "sourcedir.tar.gz"
            artifacts.get_file(uri, archive)
            extract_tarball(archive, code)
        elif not artifacts.download_prefix(uri.rstrip("/") + "/", code):
            raise FileNotFoundError(uri)
    except FileNotFoundError:
        raise ModelLoadError(f"the inference code {uri} (SAGEMAKER_SUBMIT_DIRECTORY) does not exist") from None
    except Exception as exc:
        raise ModelLoadError(f"could not stage the inference code {uri}: {type(exc).__name__}: {exc}") from exc
    return code


def start_model_worker(
    containers: Sequence[ContainerSpec],
    *,
    environment: Mapping[str, str] | None = None,
    spec_path: Path | None = None,
    args: Sequence[str] = (),
    timeout: float = 120.0,
    on_output: Callable[[str], None] | None = None,
) -> WorkerProcess:
    """One worker process serving the containers (an inference pipeline when there are several).

    ``environment`` is laid under each container's own (the platform's variables: payload limit,
    batch settings). A pipeline's specs are written to ``spec_path`` for the worker to read.
    """
    base = dict(environment or {})
    if len(containers) == 1:
        only = containers[0]
        return start_worker(only.model_dir, algorithm=only.algorithm, environment={**base, **only.environment},
                            args=args, timeout=timeout, on_output=on_output)
    if spec_path is None:
        raise ValueError("an inference pipeline needs spec_path, where its container specs are written")
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps([spec.to_json() for spec in containers], indent=1))
    return start_worker(containers=spec_path, environment=base, args=args, timeout=timeout, on_output=on_output)
