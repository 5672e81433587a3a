"""Models: CreateModel, DescribeModel, ListModels, DeleteModel.

A model names what an endpoint or a transform job runs: one container (``PrimaryContainer``) or an
inference pipeline (``Containers``), each a built-in algorithm image or custom inference code
(``SAGEMAKER_PROGRAM`` in its Environment) with its ``ModelDataUrl``. As in SageMaker, a missing
model is a ValidationException ("Could not find model ...") rather than ResourceNotFound.
"""

from __future__ import annotations

from typing import Any

from forgeml.algorithms.registry import canonical_name
from forgeml.service.records import RecordService
from forgeml.service.training_requests import ROLE_PATTERN, URI_PATTERN
from forgeml.service.validation import Checker
from forgeml.store.records import models

MODEL_NAME_PATTERN = r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"
HOSTNAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
KNOWN_MEMBERS = ("ModelName", "PrimaryContainer", "Containers", "InferenceExecutionConfig", "ExecutionRoleArn",
                 "Tags", "VpcConfig", "EnableNetworkIsolation")


def _check_container(check: Checker, container: Any, path: str) -> dict[str, Any]:
    container = dict(check.structure(container, path, required=True))
    if not container:
        return container
    check.string(container.get("Image"), f"{path}.Image", max_len=255, pattern=r"[\S]+")
    check.string(container.get("ModelDataUrl"), f"{path}.ModelDataUrl", max_len=1024, pattern=URI_PATTERN)
    check.string(container.get("ContainerHostname"), f"{path}.ContainerHostname", max_len=63, pattern=HOSTNAME_PATTERN)
    check.enum(container.get("Mode"), f"{path}.Mode", ("SingleModel", "MultiModel"))
    environment = check.mapping(container.get("Environment"), f"{path}.Environment", max_entries=100,
                                key_len=1024, value_len=1024, key_pattern=r"[a-zA-Z_][a-zA-Z0-9_]*")
    image = container.get("Image") or ""
    if not check.errors and not canonical_name(image) and "SAGEMAKER_PROGRAM" not in environment:
        check.fail(image, f"{path}.Image", "name a built-in algorithm image (forgeml.image_uris.retrieve), or the "
                                           "container's Environment must set SAGEMAKER_PROGRAM to custom inference code")
    container.setdefault("Mode", "SingleModel")
    if environment:
        container["Environment"] = dict(environment)
    return container


class ModelService(RecordService):
    table = models
    arn_resource = "model"
    noun = "model"
    key = "Model"

    def create_model(self, request: dict[str, Any]) -> dict[str, str]:
        check = Checker()
        check.unknown_members(request, "", KNOWN_MEMBERS)
        check.string(request.get("ModelName"), "ModelName", required=True, min_len=1, max_len=63,
                     pattern=MODEL_NAME_PATTERN)
        check.string(request.get("ExecutionRoleArn"), "ExecutionRoleArn", min_len=20, max_len=2048, pattern=ROLE_PATTERN)
        primary, pipeline = request.get("PrimaryContainer"), request.get("Containers")
        if (primary is None) == (pipeline is None):
            check.fail(None, "PrimaryContainer", "be given, or Containers instead, but not both")
        normalized: dict[str, Any] = {"ModelName": request.get("ModelName")}
        if primary is not None:
            normalized["PrimaryContainer"] = _check_container(check, primary, "PrimaryContainer")
        if pipeline is not None:
            items = check.items(pipeline, "Containers", min_items=1, max_items=15)
            normalized["Containers"] = [_check_container(check, c, f"Containers.{i + 1}") for i, c in enumerate(items)]
        execution = request.get("InferenceExecutionConfig")
        if execution is not None:
            check.enum(check.structure(execution, "InferenceExecutionConfig").get("Mode"), "InferenceExecutionConfig.Mode",
                       ("Serial", "Direct"), required=True)
            normalized["InferenceExecutionConfig"] = dict(execution)
        check.boolean(request.get("EnableNetworkIsolation"), "EnableNetworkIsolation")
        check.raise_if_any()
        for key in ("ExecutionRoleArn", "Tags", "VpcConfig"):
            if request.get(key) is not None:
                normalized[key] = request[key]
        normalized["EnableNetworkIsolation"] = bool(request.get("EnableNetworkIsolation", False))
        return {"ModelArn": self._insert(normalized["ModelName"], normalized)}

    def describe_model(self, name: str) -> dict[str, Any]:
        return self._describe(name)

    def delete_model(self, name: str) -> None:
        self._delete(name)

    def list_models(self, **params: Any) -> dict[str, Any]:
        return self._list(params)
