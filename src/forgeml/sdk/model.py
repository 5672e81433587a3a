"""``Model``: a model artifact plus what serves it, deployable to an endpoint (sagemaker.model's API).

A Model is either a built-in algorithm's image with its ``model.tar.gz`` or custom inference code:
``Model(entry_point="inference.py", source_dir="src", model_data=...)`` tars the code to
``s3://<bucket>/<model name>/sourcedir.tar.gz`` and points ``SAGEMAKER_PROGRAM`` and
``SAGEMAKER_SUBMIT_DIRECTORY`` at it, as the SDK's framework models do. ``deploy`` creates the model,
an endpoint config and an endpoint (printing ``---!`` while it waits) and returns a Predictor.
"""

from __future__ import annotations

import logging
import re
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.errors import ValidationException
from forgeml.sdk.predictor import Predictor
from forgeml.sdk.session import Session, container_def, production_variant
from forgeml.service.names import base_name_from_image, name_from_base

if TYPE_CHECKING:
    from forgeml.sdk.deserializers import BaseDeserializer
    from forgeml.sdk.model_monitor import DataCaptureConfig
    from forgeml.sdk.serializers import BaseSerializer
    from forgeml.sdk.transformer import Transformer

SCRIPT_MODE_IMAGE = "forgeml/script-mode:latest"
CODE_ARCHIVE = "sourcedir.tar.gz"
#: the name_from_base suffixes (``-2024-06-02-19-05-24-202``, short ``-240602-1905``), stripped to reuse a base
_TIMESTAMP_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-\d{3}|\d{6}-\d{4})$")
# sagemaker Model arguments about AWS infrastructure (networking, encryption, remote code):
# accepted so notebooks run unchanged, without effect on one machine.
NO_EFFECT_HERE = frozenset({
    "vpc_config", "enable_network_isolation", "model_kms_key", "image_config", "git_config", "resources",
    "additional_model_data_sources", "model_reference_arn", "vpc_config_override",
})

PredictorFactory = Callable[[str, Session], Predictor]


def base_from_name(name: str) -> str:
    """``linear-learner-2024-06-02-19-05-24-202`` -> ``linear-learner`` (sagemaker.utils.base_from_name)."""
    return _TIMESTAMP_SUFFIX.sub("", name)


def package_source(session: Session, uri: str, entry_point: str, source_dir: str | None = None,
                   dependencies: Sequence[str] = ()) -> str:
    """Tar ``source_dir`` (or the entry point alone) plus dependencies and upload it to ``uri``."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / CODE_ARCHIVE
        with tarfile.open(archive, "w:gz") as tar:
            if source_dir:
                source = Path(source_dir)
                if not (source / entry_point).exists():
                    raise ValidationException(f"entry_point '{entry_point}' is not in source_dir '{source_dir}'")
                for path in sorted(source.rglob("*")):
                    if "__pycache__" not in path.parts:
                        tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
            else:
                entry = Path(entry_point)
                if not entry.exists():
                    raise ValidationException(f"entry_point '{entry_point}' does not exist")
                tar.add(entry, arcname=entry.name)
            for dependency in dependencies:
                dep = Path(dependency)
                tar.add(dep, arcname=dep.name)
        session.platform.artifacts.put_file(archive, uri)
    return uri


class Model:
    """A deployable model: an image, its artifact and (optionally) custom inference code."""

    def __init__(
        self,
        image_uri: str | None = None,
        model_data: str | None = None,
        role: str | None = None,
        predictor_cls: PredictorFactory | None = None,
        env: dict[str, str] | None = None,
        name: str | None = None,
        sagemaker_session: Session | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        code_location: str | None = None,
        dependencies: list[str] | None = None,
        container_log_level: int = logging.INFO,
        **platform_only: Any,
    ) -> None:
        unknown = sorted(set(platform_only) - NO_EFFECT_HERE)
        if unknown:
            raise TypeError(f"Model() got unexpected keyword argument(s): {', '.join(unknown)}")
        if (source_dir or dependencies) and not entry_point:
            raise ValueError("source_dir and dependencies need an entry_point: the script that defines model_fn "
                             "(and input_fn/predict_fn/output_fn)")
        if image_uri is None and entry_point is None:
            raise ValueError("Model needs an image_uri (a built-in algorithm's image), or an entry_point with "
                             "custom inference code")
        self.image_uri = image_uri or SCRIPT_MODE_IMAGE
        self.model_data = model_data
        self.role = role
        self.predictor_cls = predictor_cls
        self.env: dict[str, str] = dict(env or {})
        self.name = name
        self.sagemaker_session = sagemaker_session or Session()
        self.entry_point = entry_point
        self.source_dir = source_dir
        self.code_location = code_location
        self.dependencies = list(dependencies or [])
        self.container_log_level = container_log_level
        self.endpoint_name: str | None = None
        self.uploaded_code: str | None = None
        self._base_name: str | None = None

    # -- the container definition -----------------------------------------------------------------
    def _ensure_name(self) -> str:
        if self.name is None:
            self._base_name = self._base_name or base_name_from_image(self.image_uri)
            self.name = name_from_base(self._base_name)
        return self.name

    def _code_uri(self) -> str:
        """Where the code goes: ``<code_location or s3://<default bucket>>/<model name>/sourcedir.tar.gz``."""
        location = self.code_location or f"s3://{self.sagemaker_session.default_bucket()}"
        return f"{location.rstrip('/')}/{self._ensure_name()}/{CODE_ARCHIVE}"

    def _script_mode_env(self) -> dict[str, str]:
        """SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY for the code, uploading it unless it is remote."""
        assert self.entry_point is not None
        if self.source_dir and "://" in self.source_dir:  # code already uploaded (a training job's sourcedir)
            program, directory = self.entry_point, self.source_dir
        else:
            program = self.entry_point if self.source_dir else Path(self.entry_point).name
            directory = package_source(self.sagemaker_session, self._code_uri(), self.entry_point, self.source_dir,
                                       self.dependencies)
            self.uploaded_code = directory
        return {"SAGEMAKER_PROGRAM": program, "SAGEMAKER_SUBMIT_DIRECTORY": directory,
                "SAGEMAKER_CONTAINER_LOG_LEVEL": str(self.container_log_level),
                "SAGEMAKER_REGION": self.sagemaker_session.boto_region_name}

    def prepare_container_def(self, instance_type: str | None = None, accelerator_type: str | None = None,
                              serverless_inference_config: Any = None) -> dict[str, Any]:
        """The ContainerDefinition CreateModel gets; custom code is uploaded here."""
        environment = dict(self.env)
        if self.entry_point:
            environment.update(self._script_mode_env())
        return container_def(self.image_uri, self.model_data, environment)

    # -- the model resource -----------------------------------------------------------------------
    def _create_sagemaker_model(self, instance_type: str | None = None, accelerator_type: str | None = None,
                                tags: list[dict[str, str]] | None = None) -> str:
        self._ensure_name()
        definition = self.prepare_container_def(instance_type, accelerator_type)
        assert self.name is not None
        return self.sagemaker_session.create_model(self.name, self.role, definition, tags=tags)

    def create(self, instance_type: str | None = None, accelerator_type: str | None = None,
               serverless_inference_config: Any = None, tags: list[dict[str, str]] | None = None) -> str:
        """CreateModel without deploying (for a transform job, or an endpoint config of your own)."""
        return self._create_sagemaker_model(instance_type, accelerator_type, tags)

    def delete_model(self) -> None:
        if self.name is None:
            raise ValueError("The SageMaker model must be created first before attempting to delete.")
        self.sagemaker_session.delete_model(self.name)

    # -- hosting ----------------------------------------------------------------------------------
    def deploy(
        self,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        accelerator_type: str | None = None,
        endpoint_name: str | None = None,
        tags: list[dict[str, str]] | None = None,
        kms_key: str | None = None,
        wait: bool = True,
        data_capture_config: DataCaptureConfig | None = None,
        serverless_inference_config: Any = None,
        volume_size: int | None = None,
        model_data_download_timeout: int | None = None,
        container_startup_health_check_timeout: int | None = None,
    ) -> Predictor:
        """Model -> endpoint config -> endpoint (the config named like the endpoint); the endpoint's Predictor."""
        if serverless_inference_config is None and (instance_type is None or initial_instance_count is None):
            raise ValueError("Must specify instance type and instance count unless using serverless inference")
        self._create_sagemaker_model(instance_type, accelerator_type, tags)
        assert self.name is not None
        variant = production_variant(
            self.name, instance_type, initial_instance_count, accelerator_type=accelerator_type,
            serverless_inference_config=serverless_inference_config, volume_size=volume_size,
            model_data_download_timeout=model_data_download_timeout,
            container_startup_health_check_timeout=container_startup_health_check_timeout,
        )
        self.endpoint_name = endpoint_name or name_from_base(self._base_name or base_from_name(self.name))
        capture = data_capture_config._to_request_dict() if data_capture_config is not None else None
        self.sagemaker_session.endpoint_from_production_variants(
            name=self.endpoint_name, production_variants=[variant], tags=tags, kms_key=kms_key, wait=wait,
            data_capture_config_dict=capture,
        )
        return make_predictor(self.predictor_cls, self.endpoint_name, self.sagemaker_session, serializer, deserializer)

    def transformer(
        self,
        instance_count: int,
        instance_type: str,
        strategy: str | None = None,
        assemble_with: str | None = None,
        output_path: str | None = None,
        output_kms_key: str | None = None,
        accept: str | None = None,
        env: dict[str, str] | None = None,
        max_concurrent_transforms: int | None = None,
        max_payload: int | None = None,
        tags: list[dict[str, str]] | None = None,
        volume_kms_key: str | None = None,
    ) -> Transformer:
        """Create the model and return a Transformer for batch transform jobs on it."""
        from forgeml.sdk.transformer import Transformer

        self._create_sagemaker_model(instance_type, tags=tags)
        assert self.name is not None
        return Transformer(
            self.name, instance_count, instance_type, strategy=strategy, assemble_with=assemble_with,
            output_path=output_path, output_kms_key=output_kms_key, accept=accept,
            max_concurrent_transforms=max_concurrent_transforms, max_payload=max_payload, tags=tags, env=env,
            base_transform_job_name=self._base_name or self.name, sagemaker_session=self.sagemaker_session,
            volume_kms_key=volume_kms_key,
        )


def make_predictor(predictor_cls: PredictorFactory | None, endpoint_name: str, session: Session,
                   serializer: BaseSerializer | None, deserializer: BaseDeserializer | None) -> Predictor:
    """``predictor_cls(endpoint, session)`` (a plain Predictor without one), with the given codecs set."""
    predictor = (predictor_cls or Predictor)(endpoint_name, session)
    if serializer is not None:
        predictor.serializer = serializer
    if deserializer is not None:
        predictor.deserializer = deserializer
    return predictor
