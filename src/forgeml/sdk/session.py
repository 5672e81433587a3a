"""``forgeml.Session``: the sagemaker ``Session`` API over the embedded platform."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from forgeml.config import Config
from forgeml.errors import UnexpectedStatusException, ValidationException
from forgeml.sdk.client import LogsClient, RuntimeClient, SageMakerClient
from forgeml.service.platform import Platform
from forgeml.storage.uri import parse_s3_uri

if TYPE_CHECKING:
    from forgeml.sdk.autoscaling import AutoScalingClient
    from forgeml.sdk.cloudwatch import CloudWatchClient

log = logging.getLogger("forgeml")

TERMINAL = ("Completed", "Failed", "Stopped")
TROUBLESHOOTING = "Check the job's log (forgeml jobs logs <name>) for the full error."
#: what the SDK prints for an endpoint at each poll while it waits (``-----!``)
ENDPOINT_STATUS_CHARACTERS = {"OutOfService": "x", "Creating": "-", "Updating": "-", "SystemUpdating": "-",
                              "InService": "!", "RollingBack": "<", "Deleting": "o", "Failed": "*",
                              "UpdateRollbackFailed": "*"}
#: statuses an endpoint leaves by itself; a wait goes on through them
ENDPOINT_IN_PROGRESS = ("Creating", "Updating", "SystemUpdating", "RollingBack")


def get_execution_role(sagemaker_session: Session | None = None) -> str:
    """A role ARN for requests that need one; forgeml runs jobs as the current user."""
    config = (sagemaker_session or Session()).config
    return f"arn:aws:iam::{config.account_id}:role/service-role/ForgeML-ExecutionRole"


class Session:
    """Entry point to the platform, with sagemaker.Session's methods.

    ``Session()`` uses the embedded platform under ``FORGEML_HOME`` (``~/.forgeml``).
    ``Session(endpoint_url="http://host:8080")`` uses a forgeml server instead, signing its requests
    with the given keys, ``profile_name``'s, or boto3's usual credential chain; the SDK behaves the same.
    """

    def __init__(self, forgeml_home: str | os.PathLike[str] | None = None, default_bucket: str | None = None,
                 poll_interval: float = 0.1, endpoint_url: str | None = None, aws_access_key_id: str | None = None,
                 aws_secret_access_key: str | None = None, profile_name: str | None = None,
                 region_name: str | None = None) -> None:
        if endpoint_url is not None:
            if forgeml_home is not None:
                raise ValueError("forgeml_home names an embedded platform and endpoint_url a server: give one of them")
            from forgeml.sdk.remote import RemotePlatform

            remote = RemotePlatform(endpoint_url, aws_access_key_id=aws_access_key_id,
                                    aws_secret_access_key=aws_secret_access_key, profile_name=profile_name,
                                    region_name=region_name)
            # RemotePlatform has every Platform attribute and method the SDK uses, with the same signatures
            self.config = cast(Config, remote.config)
            self.platform = cast(Platform, remote)
        else:
            if any(value is not None for value in (aws_access_key_id, aws_secret_access_key, profile_name,
                                                   region_name)):
                raise ValueError("aws_access_key_id, aws_secret_access_key, profile_name and region_name sign "
                                 "requests to a server: give endpoint_url with them")
            self.config = Config.from_env(Path(forgeml_home) if forgeml_home is not None else None)
            self.platform = Platform.get(self.config)
        self._default_bucket_name = default_bucket
        self.poll_interval = poll_interval
        self.sagemaker_client = SageMakerClient(self.platform)
        self.logs_client = LogsClient(self.platform)

    @cached_property
    def sagemaker_runtime_client(self) -> RuntimeClient:
        return RuntimeClient(self.platform)

    @cached_property
    def cloudwatch_client(self) -> CloudWatchClient:
        from forgeml.sdk.cloudwatch import CloudWatchClient

        return CloudWatchClient(self.platform)

    @cached_property
    def autoscaling_client(self) -> AutoScalingClient:
        from forgeml.sdk.autoscaling import AutoScalingClient

        return AutoScalingClient(self.platform)

    @property
    def boto_region_name(self) -> str:
        return self.config.region

    # -- storage ----------------------------------------------------------------------------------
    def default_bucket(self) -> str:
        bucket = self._default_bucket_name or f"sagemaker-{self.config.region}-{self.config.account_id}"
        self.platform.artifacts.ensure_bucket(bucket)
        self._default_bucket_name = bucket
        return bucket

    def upload_data(self, path: str | os.PathLike[str], bucket: str | None = None, key_prefix: str = "data",
                    extra_args: dict[str, Any] | None = None) -> str:
        """Upload a file or a folder; returns its S3 URI (the folder's prefix for a folder)."""
        bucket = bucket or self.default_bucket()
        source = Path(path)
        prefix = key_prefix.strip("/")
        base = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        parse_s3_uri(base + "/")
        if source.is_dir():
            self.platform.artifacts.upload_directory(source, base)
            return base
        if not source.is_file():
            raise FileNotFoundError(f"upload_data: {source} does not exist")
        uri = f"{base}/{source.name}"
        self.platform.artifacts.put_file(source, uri)
        return uri

    def upload_string_as_file_body(self, body: str, bucket: str, key: str) -> str:
        uri = f"s3://{bucket}/{key}"
        self.platform.artifacts.put_bytes(body.encode(), uri)
        return uri

    def download_data(self, path: str | os.PathLike[str], bucket: str, key_prefix: str = "",
                      extra_args: dict[str, Any] | None = None) -> list[str]:
        prefix = f"s3://{bucket}/{key_prefix}"
        parse_s3_uri(prefix)
        return [str(p) for p in self.platform.artifacts.download_prefix(prefix, Path(path))]

    def read_s3_file(self, bucket: str, key_prefix: str) -> str:
        return self.platform.artifacts.get_bytes(f"s3://{bucket}/{key_prefix}").decode()

    # -- training jobs ----------------------------------------------------------------------------
    def describe_training_job(self, job_name: str) -> dict[str, Any]:
        return self.platform.training_jobs.describe_training_job(job_name)

    def stop_training_job(self, job_name: str) -> None:
        self.platform.training_jobs.stop_training_job(job_name)

    def wait_for_job(self, job: str, poll: float | None = None) -> dict[str, Any]:
        while True:
            description = self.describe_training_job(job)
            if description["TrainingJobStatus"] in TERMINAL:
                _check_job_status(job, description)
                return description
            time.sleep(poll or self.poll_interval)

    def logs_for_job(self, job_name: str, wait: bool = False, poll: float | None = None,
                     log_type: str = "All", stream: TextIO | None = None) -> dict[str, Any]:
        """Print status transitions and the job's log as sagemaker's SDK does, until it ends.

        Status lines and log lines are merged in time order, so a fast job reads the same as a slow one.
        """
        out = stream or sys.stdout
        printed_transitions = 0
        cursor = 0
        while True:
            description = self.describe_training_job(job_name)
            status = description["TrainingJobStatus"]
            finished = status in TERMINAL
            transitions = description.get("SecondaryStatusTransitions", [])
            lines: list[tuple[float, int, str]] = []
            for transition in transitions[printed_transitions:]:
                stamp = transition["StartTime"]
                text = f"{stamp.strftime('%Y-%m-%d %H:%M:%S')} {transition['Status']} - {transition.get('StatusMessage', '')}"
                lines.append((stamp.timestamp(), 0, text))
            printed_transitions = len(transitions)
            for event in self.platform.logs.job_events(job_name, cursor):
                lines.append((event["timestamp"] / 1000.0, 1, event["message"]))
                cursor = event["id"]
            for _, _, text in sorted(lines, key=lambda item: (item[0], item[1])):
                out.write(text + "\n")
            if finished or not wait:
                if finished and "TrainingTimeInSeconds" in description:
                    count = int(description["ResourceConfig"].get("InstanceCount", 1))
                    out.write(f"Training seconds: {description['TrainingTimeInSeconds'] * count}\n")
                    out.write(f"Billable seconds: {description['BillableTimeInSeconds'] * count}\n")
                out.flush()
                if finished and wait:
                    _check_job_status(job_name, description)
                return description
            out.flush()
            time.sleep(poll or self.poll_interval)

    # -- models -----------------------------------------------------------------------------------
    def create_model(self, name: str, role: str | None = None,
                     container_defs: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
                     vpc_config: dict[str, Any] | None = None, enable_network_isolation: bool = False,
                     primary_container: dict[str, Any] | None = None, tags: list[dict[str, str]] | None = None,
                     inference_execution_config: dict[str, str] | None = None) -> str:
        """CreateModel from one container definition (a dict) or an inference pipeline (a list).

        As the SDK does, a model that already exists under ``name`` is used as it is.
        """
        request: dict[str, Any] = {"ModelName": name}
        containers = container_defs if container_defs is not None else primary_container
        if isinstance(containers, dict):
            request["PrimaryContainer"] = containers
        elif containers is not None:
            request["Containers"] = list(containers)
            if inference_execution_config is not None:
                request["InferenceExecutionConfig"] = inference_execution_config
        if role:
            request["ExecutionRoleArn"] = role
        if vpc_config:
            request["VpcConfig"] = vpc_config
        if enable_network_isolation:
            request["EnableNetworkIsolation"] = True
        if tags:
            request["Tags"] = tags
        log.info("Creating model with name: %s", name)
        try:
            self.sagemaker_client.create_model(**request)
        except ValidationException as exc:  # SageMaker's (and the sagemaker SDK's) way of saying it exists
            if "Cannot create already existing model" not in exc.message:
                raise
            log.warning("Using already existing model: %s", name)
        return name

    def describe_model(self, name: str) -> dict[str, Any]:
        return self.sagemaker_client.describe_model(ModelName=name)

    def delete_model(self, model_name: str) -> None:
        log.info("Deleting model with name: %s", model_name)
        self.sagemaker_client.delete_model(ModelName=model_name)

    # -- endpoint configs -------------------------------------------------------------------------
    def create_endpoint_config(self, name: str, model_name: str, initial_instance_count: int, instance_type: str,
                               accelerator_type: str | None = None, tags: list[dict[str, str]] | None = None,
                               kms_key: str | None = None, data_capture_config_dict: dict[str, Any] | None = None,
                               volume_size: int | None = None) -> str:
        """An endpoint config of one ``AllTraffic`` variant serving ``model_name``."""
        variant = production_variant(model_name, instance_type, initial_instance_count,
                                     accelerator_type=accelerator_type, volume_size=volume_size)
        request: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": [variant]}
        if tags:
            request["Tags"] = tags
        if kms_key:
            request["KmsKeyId"] = kms_key
        if data_capture_config_dict is not None:
            request["DataCaptureConfig"] = data_capture_config_dict
        log.info("Creating endpoint-config with name %s", name)
        self.sagemaker_client.create_endpoint_config(**request)
        return name

    def create_endpoint_config_from_existing(self, existing_config_name: str, new_config_name: str,
                                             new_tags: list[dict[str, str]] | None = None,
                                             new_kms_key: str | None = None,
                                             new_data_capture_config_dict: dict[str, Any] | None = None,
                                             new_production_variants: list[dict[str, Any]] | None = None) -> str:
        """A copy of an endpoint config with the given members replaced (what Predictor updates build on)."""
        existing = self.describe_endpoint_config(existing_config_name)
        request: dict[str, Any] = {"EndpointConfigName": new_config_name,
                                   "ProductionVariants": new_production_variants or existing["ProductionVariants"]}
        for key, new_value in (("Tags", new_tags), ("KmsKeyId", new_kms_key),
                               ("DataCaptureConfig", new_data_capture_config_dict)):
            value = new_value if new_value is not None else existing.get(key)
            if value:
                request[key] = value
        for key in ("ShadowProductionVariants", "AsyncInferenceConfig", "ExplainerConfig", "ExecutionRoleArn"):
            if existing.get(key) is not None:
                request[key] = existing[key]
        log.info("Creating endpoint-config with name %s", new_config_name)
        self.sagemaker_client.create_endpoint_config(**request)
        return new_config_name

    def describe_endpoint_config(self, name: str) -> dict[str, Any]:
        return self.sagemaker_client.describe_endpoint_config(EndpointConfigName=name)

    def delete_endpoint_config(self, endpoint_config_name: str) -> None:
        log.info("Deleting endpoint configuration with name: %s", endpoint_config_name)
        self.sagemaker_client.delete_endpoint_config(EndpointConfigName=endpoint_config_name)

    # -- endpoints --------------------------------------------------------------------------------
    def create_endpoint(self, endpoint_name: str, config_name: str, tags: list[dict[str, str]] | None = None,
                        wait: bool = True) -> str:
        log.info("Creating endpoint with name %s", endpoint_name)
        request: dict[str, Any] = {"EndpointName": endpoint_name, "EndpointConfigName": config_name}
        if tags:
            request["Tags"] = tags
        self.sagemaker_client.create_endpoint(**request)
        if wait:
            self.wait_for_endpoint(endpoint_name)
        return endpoint_name

    def endpoint_from_production_variants(self, name: str, production_variants: list[dict[str, Any]],
                                          tags: list[dict[str, str]] | None = None, kms_key: str | None = None,
                                          wait: bool = True, data_capture_config_dict: dict[str, Any] | None = None
                                          ) -> str:
        """An endpoint config and an endpoint, both called ``name``, as ``deploy`` creates them."""
        request: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": production_variants}
        if tags:
            request["Tags"] = tags
        if kms_key and any("InstanceType" in variant for variant in production_variants):
            request["KmsKeyId"] = kms_key
        if data_capture_config_dict is not None:
            request["DataCaptureConfig"] = data_capture_config_dict
        log.info("Creating endpoint-config with name %s", name)
        self.sagemaker_client.create_endpoint_config(**request)
        return self.create_endpoint(endpoint_name=name, config_name=name, tags=tags, wait=wait)

    def update_endpoint(self, endpoint_name: str, endpoint_config_name: str, wait: bool = True) -> str:
        """Move the endpoint to another config; with ``wait``, a rolled-back update raises.

        (SageMaker leaves a failed update's endpoint InService with a FailureReason and the SDK
        returns quietly; forgeml tells the caller that nothing changed.)
        """
        try:
            self.describe_endpoint(endpoint_name)
        except ValidationException:
            raise ValueError(f"Endpoint with name '{endpoint_name}' does not exist; "
                             "please use an existing endpoint name") from None
        self.sagemaker_client.update_endpoint(EndpointName=endpoint_name, EndpointConfigName=endpoint_config_name)
        if wait:
            description = self.wait_for_endpoint(endpoint_name)
            if description.get("FailureReason"):
                raise UnexpectedStatusException(
                    f"Error updating endpoint {endpoint_name}: the update to {endpoint_config_name} was rolled back. "
                    f"Reason: {description['FailureReason']}.",
                    allowed_statuses=["InService"], actual_status="RollingBack")
        return endpoint_name

    def describe_endpoint(self, endpoint_name: str) -> dict[str, Any]:
        return self.sagemaker_client.describe_endpoint(EndpointName=endpoint_name)

    def wait_for_endpoint(self, endpoint: str, poll: float | None = None, stream: TextIO | None = None
                          ) -> dict[str, Any]:
        """Wait until the endpoint settles, printing a status character as the SDK does (``---!``).

        The status is read every ``poll_interval``; a character is printed every ``poll`` seconds
        (default five poll intervals) and whenever the status changes, so even a quick RollingBack shows.
        Raises UnexpectedStatusException unless the endpoint ends InService.
        """
        out = stream or sys.stdout
        every = poll if poll is not None else self.poll_interval * 5
        shown: tuple[str, float] | None = None
        while True:
            description = self.describe_endpoint(endpoint)
            status = description["EndpointStatus"]
            now = time.monotonic()
            settled = status not in ENDPOINT_IN_PROGRESS
            if settled or shown is None or shown[0] != status or now - shown[1] >= every:
                out.write(ENDPOINT_STATUS_CHARACTERS.get(status, "?"))
                out.flush()
                shown = (status, now)
            if settled:
                break
            time.sleep(min(self.poll_interval, every))
        out.write("\n")
        out.flush()
        if status != "InService":
            raise UnexpectedStatusException(
                f"Error hosting endpoint {endpoint}: {status}. Reason: {description.get('FailureReason')}.",
                allowed_statuses=["InService"], actual_status=status)
        return description

    def delete_endpoint(self, endpoint_name: str) -> None:
        """DeleteEndpoint; the endpoint is Deleting until its host has stopped, then gone."""
        log.info("Deleting endpoint with name: %s", endpoint_name)
        self.sagemaker_client.delete_endpoint(EndpointName=endpoint_name)


def production_variant(model_name: str, instance_type: str | None = None, initial_instance_count: int | None = None,
                       variant_name: str = "AllTraffic", initial_weight: float = 1,
                       accelerator_type: str | None = None, serverless_inference_config: Any = None,
                       volume_size: int | None = None, model_data_download_timeout: int | None = None,
                       container_startup_health_check_timeout: int | None = None) -> dict[str, Any]:
    """A ProductionVariant as sagemaker.session.production_variant builds it (one instance by default)."""
    variant: dict[str, Any] = {"ModelName": model_name, "VariantName": variant_name,
                               "InitialVariantWeight": initial_weight}
    if accelerator_type:
        variant["AcceleratorType"] = accelerator_type
    if serverless_inference_config is not None:
        to_dict = getattr(serverless_inference_config, "_to_request_dict", None)
        variant["ServerlessConfig"] = to_dict() if callable(to_dict) else dict(serverless_inference_config)
    else:
        variant["InitialInstanceCount"] = initial_instance_count or 1
        variant["InstanceType"] = instance_type
    if volume_size:
        variant["VolumeSizeInGB"] = volume_size
    if model_data_download_timeout:
        variant["ModelDataDownloadTimeoutInSeconds"] = model_data_download_timeout
    if container_startup_health_check_timeout:
        variant["ContainerStartupHealthCheckTimeoutInSeconds"] = container_startup_health_check_timeout
    return variant


def container_def(image_uri: str, model_data_url: str | None = None, env: dict[str, str] | None = None,
                  container_mode: str | None = None, image_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ContainerDefinition as sagemaker.container_def builds it (``Environment`` always present)."""
    definition: dict[str, Any] = {"Image": image_uri, "Environment": dict(env or {})}
    if model_data_url:
        definition["ModelDataUrl"] = model_data_url
    if container_mode:
        definition["Mode"] = container_mode
    if image_config:
        definition["ImageConfig"] = image_config
    return definition


def pipeline_container_def(models: Sequence[Any], instance_type: str | None = None) -> list[dict[str, Any]]:
    """Every model's container definition, in request order (an inference pipeline's ``Containers``)."""
    return [model.prepare_container_def(instance_type) for model in models]


def _check_job_status(job: str, description: dict[str, Any]) -> None:
    status = description["TrainingJobStatus"]
    if status == "Failed":
        reason = description.get("FailureReason", "(No reason provided)")
        raise UnexpectedStatusException(
            f"Error for Training job {job}: Failed. Reason: {reason}. {TROUBLESHOOTING}",
            allowed_statuses=["Completed", "Stopped"], actual_status=status,
        )
    if status == "Stopped":
        print(f"Job ended with status 'Stopped' rather than 'Completed'. This could mean the job timed out "
              f"or stopped early for some other reason: consider checking whether it completed as you expect. "
              f"(SecondaryStatus: {description.get('SecondaryStatus')})", file=sys.stderr)
