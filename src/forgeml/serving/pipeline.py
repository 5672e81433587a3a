"""Inference pipelines: a model of several containers that one worker serves in sequence.

A SageMaker model with ``Containers`` (and ``InferenceExecutionConfig.Mode`` ``Serial``, the
default) runs every container on each instance and chains them: the client's request goes to the
first, each container's response is the next one's request, and the last one's response goes back
to the client. SageMaker does this with one HTTP hop per container; here every container is an
``InferenceHandler`` in the same worker process, so a stage costs one function call.

What each stage receives:

* the body: the client's for the first stage, else the previous stage's response body;
* ``Content-Type``: the client's for the first stage, else the previous response's content type;
* ``Accept``: the client's for the last stage; an earlier stage gets its own container's
  ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` when set (how a pipeline asks a preprocessing container
  for CSV whatever the client accepts), else the client's;
* the client's custom attributes and inference id, at every stage.

A non-2xx answer from any stage ends the request and is returned unchanged (the endpoint router
wraps it in ``ModelError``); the worker's log says which stage failed. A 204 from an earlier stage
(nothing to pass on) ends the request with 204. The response's custom attributes are the last
stage's.

Custom code of different stages lives in one interpreter, and scripts are imported as top-level
modules: two stages' ``inference.py`` (or their ``helpers.py``) would share a ``sys.modules``
entry. ``load_pipeline`` therefore sets each stage's own modules aside once it is loaded, so the
next stage imports its own files, and puts them back in ``sys.modules`` before each call to that
stage (for code that imports or unpickles by module name while answering).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import NamedTuple

from forgeml.serving.handlers import InferenceHandler, ModelLoadError, Response, error_response, load_handler
from forgeml.serving.model_setup import ContainerSpec
from forgeml.serving.script import _SCRIPT_MARK

log = logging.getLogger("forgeml.serving")

DEFAULT_ACCEPT_VARIABLE = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
#: characters of a failing stage's answer quoted in the worker's log
LOGGED_BODY_CHARS = 300


class PipelineStage(NamedTuple):
    """One container of the pipeline: its name in messages, its handler, the Accept it asks for."""

    name: str
    handler: InferenceHandler
    default_accept: str | None = None


class PipelineHandler:
    """Serves containers in sequence; an ``InferenceHandler`` like a single container's."""

    def __init__(self, stages: Sequence[tuple[str, InferenceHandler, str | None]]) -> None:
        if not stages:
            raise ValueError("an inference pipeline needs at least one stage")
        self.stages = [PipelineStage(*stage) for stage in stages]

    def ping(self) -> bool:
        """Healthy only when every stage is: a request needs all of them."""
        for stage in self.stages:
            try:
                healthy = stage.handler.ping()
            except Exception:
                log.exception("%s: ping failed", stage.name)
                return False
            if not healthy:
                log.warning("%s is not healthy", stage.name)
                return False
        return True

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None = None,
        *,
        inference_id: str | None = None,
    ) -> Response:
        last = len(self.stages) - 1
        response = Response(b"", None, 204)
        for index, stage in enumerate(self.stages):
            stage_accept = accept if index == last else (stage.default_accept or accept)
            try:
                response = stage.handler.invoke(
                    body, content_type, stage_accept, custom_attributes, inference_id=inference_id
                )
            except Exception as exc:  # handlers answer errors themselves; one that raises still gets a 500
                response = error_response(exc)
            if not 200 <= response.status < 300:
                _log_failure(stage, index + 1, len(self.stages), response)
                return response
            if response.status == 204 and index < last:
                log.info("%s answered 204: nothing to pass on, the pipeline answers 204", stage.name)
                return Response(b"", None, 204)
            body, content_type = response.body, response.content_type
        return response


def _log_failure(stage: PipelineStage, position: int, count: int, response: Response) -> None:
    text = response.body[:LOGGED_BODY_CHARS].decode("utf-8", "replace")
    log.warning(
        "inference pipeline stopped at %s (stage %d of %d), which answered %d: %s",
        stage.name,
        position,
        count,
        response.status,
        text,
    )


def stage_name(position: int, hostname: str | None) -> str:
    """How messages name a container: ``container 2 (linear-learner)``, numbered from 1."""
    return f"container {position} ({hostname or f'container-{position}'})"


def load_pipeline(specs: Sequence[ContainerSpec], *, environment: Mapping[str, str] | None = None) -> PipelineHandler:
    """Load every container of a pipeline, in order; ModelLoadError names the one that cannot load.

    ``environment`` (the worker's own variables) is laid under each container's Environment.
    """
    if not specs:
        raise ModelLoadError("an inference pipeline needs at least one container")
    stages = []
    for position, spec in enumerate(specs, start=1):
        name = stage_name(position, spec.hostname)
        stage_environment = {**(environment or {}), **spec.environment}
        try:
            handler = _load_stage(spec, stage_environment)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{name}: {exc}") from exc
        stages.append(PipelineStage(name, handler, stage_environment.get(DEFAULT_ACCEPT_VARIABLE) or None))
    return PipelineHandler(stages)


def read_container_specs(path: Path) -> list[ContainerSpec]:
    """The specs a worker's ``--containers`` file lists (``start_model_worker`` writes it)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read the container specs {path}: {exc}") from exc
    if not isinstance(data, list) or not data:
        raise ModelLoadError(f"the container specs {path} must be a non-empty JSON list")
    specs = []
    for position, item in enumerate(data, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("ModelDir"), str):
            raise ModelLoadError(f"item {position} of the container specs {path} has no ModelDir")
        specs.append(ContainerSpec.from_json(item))
    return specs


# -- one module namespace per stage ---------------------------------------------------------------


class _WithOwnModules:
    """A stage's handler whose inference-code modules go back into ``sys.modules`` before each call.

    Calls never overlap in a worker, so swapping the entries is safe and costs one dict update.
    """

    __slots__ = ("handler", "modules")

    def __init__(self, handler: InferenceHandler, modules: dict[str, ModuleType]) -> None:
        self.handler = handler
        self.modules = modules

    def ping(self) -> bool:
        return self.handler.ping()

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None = None,
        *,
        inference_id: str | None = None,
    ) -> Response:
        sys.modules.update(self.modules)
        return self.handler.invoke(body, content_type, accept, custom_attributes, inference_id=inference_id)


def _load_stage(spec: ContainerSpec, environment: Mapping[str, str]) -> InferenceHandler:
    """``load_handler`` for one container, keeping the modules its code imported to itself."""
    before = dict(sys.modules)
    try:
        handler = load_handler(spec.model_dir, algorithm=spec.algorithm, environment=environment)
    finally:
        own = _inference_code_modules(before)
        for name, module in own.items():  # set aside: the next stage imports its own files
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return _WithOwnModules(handler, own) if own else handler


def _inference_code_modules(before: Mapping[str, ModuleType]) -> dict[str, ModuleType]:
    """Modules imported since ``before`` from an inference script's folder (the script included)."""
    added = {name: module for name, module in list(sys.modules.items()) if before.get(name) is not module}
    folders = [
        file.parent for module in added.values() if getattr(module, _SCRIPT_MARK, False) and (file := _file(module))
    ]
    if not folders:
        return {}
    own = {}
    for name, module in added.items():
        file = _file(module)
        if file is not None and any(file.is_relative_to(folder) for folder in folders):
            own[name] = module
    return own


def _file(module: ModuleType) -> Path | None:
    location = getattr(module, "__file__", None)
    return Path(location).resolve() if isinstance(location, str) else None
