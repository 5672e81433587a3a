"""``Estimator``: configure a training job, ``fit`` it, read its results, deploy them (sagemaker v2's API).

One class covers a built-in algorithm (``image_uri`` from ``image_uris.retrieve``), script mode
(``entry_point`` + ``source_dir``, like the framework estimators) and a plain command
(``container_entry_point``). ``deploy`` and ``transformer`` serve the trained model: a built-in
algorithm's artifact with its image, a script-mode job's artifact with the training code as the
inference program (its ``model_fn``/``predict_fn``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeml.errors import ValidationException
from forgeml.sdk.inputs import TrainingInput
from forgeml.sdk.model import SCRIPT_MODE_IMAGE, Model, PredictorFactory, package_source
from forgeml.sdk.session import Session, get_execution_role
from forgeml.service.names import base_name_from_image, name_from_base

if TYPE_CHECKING:
    from forgeml.sdk.deserializers import BaseDeserializer
    from forgeml.sdk.model_monitor import DataCaptureConfig
    from forgeml.sdk.predictor import Predictor
    from forgeml.sdk.serializers import BaseSerializer
    from forgeml.sdk.transformer import Transformer

__all__ = ["SCRIPT_MODE_IMAGE", "Estimator", "TrainingJob"]

# sagemaker Estimator arguments about AWS infrastructure (networking, encryption, spot capacity,
# debugging services): accepted so notebooks run unchanged, and without effect on one machine.
NO_EFFECT_HERE = frozenset({
    "subnets", "security_group_ids", "model_uri", "model_channel_name", "encrypt_inter_container_traffic",
    "use_spot_instances", "max_wait", "volume_kms_key", "output_kms_key", "enable_network_isolation",
    "rules", "debugger_hook_config", "tensorboard_output_config", "enable_sagemaker_metrics",
    "profiler_config", "disable_profiler", "max_retry_attempts", "keep_alive_period_in_seconds",
    "instance_groups", "training_repository_access_mode", "training_repository_credentials_provider_arn",
    "container_log_level", "py_version", "framework_version", "git_config", "image_uri_region",
    "disable_output_compression", "enable_infra_check", "enable_remote_debug",
})


class TrainingJob:
    """``estimator.latest_training_job``: a handle on the job a ``fit`` started."""

    def __init__(self, session: Session, job_name: str) -> None:
        self.sagemaker_session = session
        self.job_name = job_name
        self.name = job_name

    def describe(self) -> dict[str, Any]:
        return self.sagemaker_session.describe_training_job(self.job_name)

    def wait(self, logs: bool = True) -> None:
        if logs:
            self.sagemaker_session.logs_for_job(self.job_name, wait=True)
        else:
            self.sagemaker_session.wait_for_job(self.job_name)

    def stop(self) -> None:
        self.sagemaker_session.stop_training_job(self.job_name)


class Estimator:
    def __init__(
        self,
        image_uri: str | None = None,
        role: str | None = None,
        instance_count: int | None = 1,
        instance_type: str | None = "ml.m5.large",
        volume_size: int = 30,
        max_run: int = 24 * 60 * 60,
        input_mode: str = "File",
        output_path: str | None = None,
        base_job_name: str | None = None,
        sagemaker_session: Session | None = None,
        hyperparameters: dict[str, Any] | None = None,
        tags: list[dict[str, str]] | None = None,
        metric_definitions: list[dict[str, str]] | None = None,
        checkpoint_s3_uri: str | None = None,
        checkpoint_local_path: str | None = None,
        environment: dict[str, str] | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        dependencies: list[str] | None = None,
        container_entry_point: list[str] | None = None,
        container_arguments: list[str] | None = None,
        code_location: str | None = None,
        **platform_only: Any,
    ) -> None:
        unknown = sorted(set(platform_only) - NO_EFFECT_HERE)
        if unknown:
            raise TypeError(f"Estimator() got unexpected keyword argument(s): {', '.join(unknown)}")
        self.sagemaker_session = sagemaker_session or Session()
        self.image_uri = image_uri
        self.role = role or get_execution_role(self.sagemaker_session)
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.volume_size = volume_size
        self.max_run = max_run
        self.input_mode = input_mode
        self.output_path = output_path
        self.base_job_name = base_job_name
        self._hyperparameters: dict[str, Any] = dict(hyperparameters or {})
        self.tags = tags
        self.metric_definitions = metric_definitions
        self.checkpoint_s3_uri = checkpoint_s3_uri
        self.checkpoint_local_path = checkpoint_local_path
        self.environment = environment
        self.entry_point = entry_point
        self.source_dir = source_dir
        self.dependencies = dependencies or []
        self.container_entry_point = container_entry_point
        self.container_arguments = container_arguments
        self.code_location = code_location
        self.latest_training_job: TrainingJob | None = None
        self._current_job_name: str | None = None

    # -- hyperparameters --------------------------------------------------------------------------
    def set_hyperparameters(self, **kwargs: Any) -> None:
        self._hyperparameters.update(kwargs)

    def hyperparameters(self) -> dict[str, Any]:
        return dict(self._hyperparameters)

    def _serialized_hyperparameters(self) -> dict[str, str]:
        values = {k: v for k, v in self.hyperparameters().items() if v is not None}
        if self.entry_point:  # framework estimators JSON-encode every value
            return {k: json.dumps(v) for k, v in values.items()}
        return {k: json.dumps(v) if isinstance(v, list | dict) else str(v) for k, v in values.items()}

    # -- the job ----------------------------------------------------------------------------------
    def _base_name(self) -> str:
        return self.base_job_name or base_name_from_image(self.image_uri or "forgeml-script")

    def _job_name(self, job_name: str | None) -> str:
        if job_name:
            return job_name
        return name_from_base(self._base_name())

    def _channels(self, inputs: Any) -> list[dict[str, Any]]:
        if inputs is None:
            return []
        if isinstance(inputs, str | TrainingInput) or hasattr(inputs, "records_s3_input"):
            inputs = {"training": inputs}
        if isinstance(inputs, list):  # a list of RecordSets (amazon estimators)
            return [c for item in inputs for c in self._channels({"training": item})]
        if not isinstance(inputs, dict):
            raise ValidationException(f"fit(inputs=...) takes an S3 URI, a TrainingInput or a dict of them, not {type(inputs).__name__}")
        channels = []
        for name, value in inputs.items():
            if hasattr(value, "records_s3_input"):
                name = getattr(value, "channel", name)
                value = value.records_s3_input()
            if isinstance(value, str):
                value = TrainingInput(_as_uri(value))
            channel = {"ChannelName": name, **json.loads(json.dumps(value.config))}
            channels.append(channel)
        return channels

    def _upload_code(self, job_name: str) -> str:
        """Tar ``source_dir`` (or the entry point alone) plus dependencies into sourcedir.tar.gz."""
        assert self.entry_point is not None
        bucket_uri = self.code_location or f"s3://{self.sagemaker_session.default_bucket()}"
        uri = f"{bucket_uri.rstrip('/')}/{job_name}/source/sourcedir.tar.gz"
        return package_source(self.sagemaker_session, uri, self.entry_point, self.source_dir, self.dependencies)

    def training_request(self, inputs: Any = None, job_name: str | None = None) -> dict[str, Any]:
        """The CreateTrainingJob request ``fit`` sends (useful to inspect or to send yourself)."""
        name = self._job_name(job_name)
        output_path = self.output_path or f"s3://{self.sagemaker_session.default_bucket()}/"
        hyperparameters = self._serialized_hyperparameters()
        spec: dict[str, Any] = {"TrainingInputMode": self.input_mode,
                                "TrainingImage": self.image_uri or SCRIPT_MODE_IMAGE}
        if self.entry_point:
            program = Path(self.entry_point).name if not self.source_dir else self.entry_point
            hyperparameters.update({
                "sagemaker_program": json.dumps(program),
                "sagemaker_submit_directory": json.dumps(self._upload_code(name)),
                "sagemaker_container_log_level": "20",
                "sagemaker_job_name": json.dumps(name),
                "sagemaker_region": json.dumps(self.sagemaker_session.boto_region_name),
            })
        if self.metric_definitions:
            spec["MetricDefinitions"] = self.metric_definitions
        if self.container_entry_point:
            spec["ContainerEntrypoint"] = self.container_entry_point
        if self.container_arguments:
            spec["ContainerArguments"] = self.container_arguments
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": spec,
            "RoleArn": self.role,
            "InputDataConfig": self._channels(inputs),
            "OutputDataConfig": {"S3OutputPath": output_path},
            "ResourceConfig": {"InstanceType": self.instance_type, "InstanceCount": self.instance_count,
                               "VolumeSizeInGB": self.volume_size},
            "StoppingCondition": {"MaxRuntimeInSeconds": self.max_run},
            "HyperParameters": hyperparameters,
        }
        if not request["InputDataConfig"]:
            del request["InputDataConfig"]
        if self.checkpoint_s3_uri:
            request["CheckpointConfig"] = {"S3Uri": self.checkpoint_s3_uri}
            if self.checkpoint_local_path:
                request["CheckpointConfig"]["LocalPath"] = self.checkpoint_local_path
        if self.environment:
            request["Environment"] = self.environment
        if self.tags:
            request["Tags"] = self.tags
        return request

    def fit(self, inputs: Any = None, wait: bool = True, logs: bool | str = True, job_name: str | None = None,
            experiment_config: dict[str, str] | None = None) -> None:
        request = self.training_request(inputs, job_name)
        if experiment_config:
            request["ExperimentConfig"] = experiment_config
        self.sagemaker_session.platform.training_jobs.create_training_job(request)
        self._current_job_name = request["TrainingJobName"]
        self.latest_training_job = TrainingJob(self.sagemaker_session, request["TrainingJobName"])
        if wait:
            self.latest_training_job.wait(logs=bool(logs) and logs != "None")

    # -- results ----------------------------------------------------------------------------------
    def _require_job(self) -> TrainingJob:
        if self.latest_training_job is None:
            raise ValueError("Estimator has not been fit yet: call fit() first")
        return self.latest_training_job

    @property
    def model_data(self) -> str:
        return str(self._require_job().describe()["ModelArtifacts"]["S3ModelArtifacts"])

    @property
    def training_job_name(self) -> str | None:
        return self._current_job_name

    # -- hosting ----------------------------------------------------------------------------------
    def _training_code_env(self) -> dict[str, str]:
        """A script-mode job's code as the inference program: its entry point in its submit directory."""
        hyperparameters = self._require_job().describe().get("HyperParameters", {})
        program, directory = hyperparameters.get("sagemaker_program"), hyperparameters.get("sagemaker_submit_directory")
        if not program or not directory:
            return {}
        return {"SAGEMAKER_PROGRAM": json.loads(program), "SAGEMAKER_SUBMIT_DIRECTORY": json.loads(directory),
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": self.sagemaker_session.boto_region_name}

    def create_model(self, role: str | None = None, image_uri: str | None = None,
                     predictor_cls: PredictorFactory | None = None, entry_point: str | None = None,
                     source_dir: str | None = None, dependencies: list[str] | None = None,
                     env: dict[str, str] | None = None, name: str | None = None, **platform_only: Any) -> Model:
        """A Model of the trained artifact, served by the training image.

        Script mode serves the training code: ``SAGEMAKER_PROGRAM`` is the entry point and
        ``SAGEMAKER_SUBMIT_DIRECTORY`` the code the job ran. ``entry_point`` alone names another
        program in that code; ``source_dir`` (local) uploads other code instead.
        """
        model_data = self.model_data
        environment = dict(env or {})
        trained = self._training_code_env() if source_dir is None else {}
        if trained and entry_point is None:
            environment.update(trained)
        elif trained:
            source_dir = trained["SAGEMAKER_SUBMIT_DIRECTORY"]
        image = image_uri or self.image_uri or (SCRIPT_MODE_IMAGE if trained or entry_point else None)
        return Model(image, model_data, role or self.role, predictor_cls=predictor_cls, env=environment, name=name,
                     sagemaker_session=self.sagemaker_session, entry_point=entry_point, source_dir=source_dir,
                     code_location=self.code_location, dependencies=dependencies, **platform_only)

    def deploy(
        self,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        accelerator_type: str | None = None,
        endpoint_name: str | None = None,
        wait: bool = True,
        model_name: str | None = None,
        kms_key: str | None = None,
        data_capture_config: DataCaptureConfig | None = None,
        tags: list[dict[str, str]] | None = None,
        **kwargs: Any,
    ) -> Predictor:
        """Create a model of the trained artifact and an endpoint for it; the endpoint's Predictor.

        The model, the endpoint config and the endpoint share one name, ``<base job name>-<timestamp>``;
        ``kwargs`` go to ``create_model``.
        """
        self._require_job()
        default_name = name_from_base(self._base_name())
        model = self.create_model(**kwargs)
        model.name = model_name or default_name
        return model.deploy(
            initial_instance_count=initial_instance_count, instance_type=instance_type, serializer=serializer,
            deserializer=deserializer, accelerator_type=accelerator_type, endpoint_name=endpoint_name or default_name,
            tags=tags or self.tags, kms_key=kms_key, wait=wait, data_capture_config=data_capture_config,
        )

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
        role: str | None = None,
        volume_kms_key: str | None = None,
        model_name: str | None = None,
        **platform_only: Any,
    ) -> Transformer:
        """Create a model of the trained artifact and return a Transformer for batch transform on it."""
        tags = tags or self.tags
        model = self.create_model(role=role)
        model._base_name = self._base_name()
        model.name = model_name or name_from_base(model._base_name)
        return model.transformer(
            instance_count, instance_type, strategy=strategy, assemble_with=assemble_with, output_path=output_path,
            output_kms_key=output_kms_key, accept=accept, env=env, max_concurrent_transforms=max_concurrent_transforms,
            max_payload=max_payload, tags=tags, volume_kms_key=volume_kms_key,
        )

    @classmethod
    def attach(cls, training_job_name: str, sagemaker_session: Session | None = None) -> Estimator:
        """An estimator for an existing job, so its results can be used from another process."""
        session = sagemaker_session or Session()
        description = session.describe_training_job(training_job_name)
        spec = description["AlgorithmSpecification"]
        estimator = cls(
            image_uri=spec.get("TrainingImage"), role=description["RoleArn"],
            instance_count=description["ResourceConfig"]["InstanceCount"],
            instance_type=description["ResourceConfig"]["InstanceType"],
            output_path=description["OutputDataConfig"]["S3OutputPath"], sagemaker_session=session,
            hyperparameters=dict(description.get("HyperParameters", {})),
        )
        estimator.latest_training_job = TrainingJob(session, training_job_name)
        estimator._current_job_name = training_job_name
        return estimator


def _as_uri(value: str) -> str:
    """Local paths become file:// URIs (as sagemaker's local mode accepts them)."""
    if "://" in value:
        return value
    return "file://" + os.path.abspath(value)
