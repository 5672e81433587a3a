"""``Transformer``: sagemaker.transformer's API over forgeml's batch transform jobs.

``Transformer(model_name, instance_count, instance_type, ...).transform(s3_uri, content_type="text/csv",
split_type="Line")`` creates a transform job, waits for it (printing progress as the sagemaker SDK does)
and leaves the outputs under ``output_path`` (default ``s3://<default bucket>/<job name>``).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from forgeml.errors import UnexpectedStatusException, ValidationException
from forgeml.sdk.session import Session
from forgeml.service.names import base_name_from_image, name_from_base

TERMINAL = ("Completed", "Failed", "Stopped")
#: what the sagemaker SDK prints for a transform job at each poll
STATUS_CHARACTERS = {"Completed": "!", "InProgress": ".", "Failed": "*", "Stopped": "s", "Stopping": "_"}


class TransformJob:
    """``transformer.latest_transform_job``: a handle on the job a ``transform`` started."""

    def __init__(self, session: Session, job_name: str) -> None:
        self.sagemaker_session = session
        self.job_name = job_name
        self.name = job_name

    def describe(self) -> dict[str, Any]:
        return self.sagemaker_session.platform.transform_jobs.describe_transform_job(self.job_name)

    def wait(self, logs: bool = True, stream: TextIO | None = None) -> dict[str, Any]:
        return wait_for_transform_job(self.sagemaker_session, self.job_name, logs=logs, stream=stream)

    def stop(self) -> None:
        self.sagemaker_session.platform.transform_jobs.stop_transform_job(self.job_name)


def wait_for_transform_job(session: Session, job_name: str, *, logs: bool = False,
                           stream: TextIO | None = None) -> dict[str, Any]:
    """Poll until the job ends: one status character per poll, or the job's log lines with ``logs``.

    Raises UnexpectedStatusException when the job Failed, with its FailureReason.
    """
    out = stream or sys.stdout
    service = session.platform.transform_jobs
    poll = session.poll_interval * 5
    cursor = 0
    log_started = False
    mid_line = False  # status characters on the current line
    while True:
        description = service.describe_transform_job(job_name)
        status = description["TransformJobStatus"]
        if logs:
            events = service.log_events(job_name, cursor)
            if events and mid_line:
                out.write("\n")
                mid_line = False
            for event in events:
                out.write(event["message"] + "\n")
                cursor = event["id"]
            log_started = log_started or bool(events)
        if status in TERMINAL or not log_started:  # once the log flows, it is the progress
            out.write(STATUS_CHARACTERS.get(status, "?"))
            mid_line = True
        out.flush()
        if status in TERMINAL:
            out.write("\n")
            out.flush()
            check_transform_status(job_name, description)
            return description
        time.sleep(poll)


def check_transform_status(job_name: str, description: dict[str, Any]) -> None:
    status = description["TransformJobStatus"]
    if status == "Failed":
        reason = description.get("FailureReason", "(No reason provided)")
        raise UnexpectedStatusException(
            f"Error for Transform job {job_name}: Failed. Reason: {reason}. Check the job's log (log group "
            "/aws/sagemaker/TransformJobs, or Transformer.wait(logs=True)) for details.",
            allowed_statuses=["Completed", "Stopped"], actual_status=status)
    if status == "Stopped":
        print(f"Transform job {job_name} ended with status 'Stopped' rather than 'Completed': its output holds "
              "only the objects finished before the stop.", file=sys.stderr)


class Transformer:
    def __init__(
        self,
        model_name: str,
        instance_count: int,
        instance_type: str,
        strategy: str | None = None,
        assemble_with: str | None = None,
        output_path: str | None = None,
        output_kms_key: str | None = None,
        accept: str | None = None,
        max_concurrent_transforms: int | None = None,
        max_payload: int | None = None,
        tags: list[dict[str, str]] | None = None,
        env: dict[str, str] | None = None,
        base_transform_job_name: str | None = None,
        sagemaker_session: Session | None = None,
        volume_kms_key: str | None = None,
    ) -> None:
        self.model_name = model_name
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.strategy = strategy
        self.assemble_with = assemble_with
        self.output_path = output_path
        self.output_kms_key = output_kms_key
        self.accept = accept
        self.max_concurrent_transforms = max_concurrent_transforms
        self.max_payload = max_payload
        self.tags = tags
        self.env = env
        self.base_transform_job_name = base_transform_job_name
        self.sagemaker_session = sagemaker_session or Session()
        self.volume_kms_key = volume_kms_key
        self.latest_transform_job: TransformJob | None = None
        self._current_job_name: str | None = None
        self._generated_output_path: str | None = None  # the default path this object chose last

    # -- the request ------------------------------------------------------------------------------
    def _base_name(self) -> str:
        if self.base_transform_job_name:
            return self.base_transform_job_name
        try:
            model = self.sagemaker_session.platform.models.describe_model(self.model_name)
        except ValidationException:
            return self.model_name
        container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
        image = container.get("Image")
        return base_name_from_image(image) if image else self.model_name

    def transform_request(
        self,
        data: str,
        data_type: str = "S3Prefix",
        content_type: str | None = None,
        compression_type: str | None = None,
        split_type: str | None = None,
        job_name: str | None = None,
        input_filter: str | None = None,
        output_filter: str | None = None,
        join_source: str | None = None,
        model_client_config: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """The CreateTransformJob request ``transform`` sends (to inspect, or to send yourself)."""
        name = job_name or name_from_base(self._base_name())
        if self.output_path is None or self.output_path == self._generated_output_path:
            # sagemaker's default: a fresh s3://<default bucket>/<job name> for every job
            self.output_path = self._generated_output_path = f"s3://{self.sagemaker_session.default_bucket()}/{name}"
        transform_input: dict[str, Any] = {"DataSource": {"S3DataSource": {"S3DataType": data_type,
                                                                          "S3Uri": _as_uri(data)}}}
        for key, value in (("ContentType", content_type), ("CompressionType", compression_type),
                           ("SplitType", split_type)):
            if value is not None:
                transform_input[key] = value
        transform_output: dict[str, Any] = {"S3OutputPath": self.output_path}
        for key, value in (("Accept", self.accept), ("AssembleWith", self.assemble_with),
                           ("KmsKeyId", self.output_kms_key)):
            if value is not None:
                transform_output[key] = value
        resources: dict[str, Any] = {"InstanceType": self.instance_type, "InstanceCount": self.instance_count}
        if self.volume_kms_key is not None:
            resources["VolumeKmsKeyId"] = self.volume_kms_key
        request: dict[str, Any] = {"TransformJobName": name, "ModelName": self.model_name,
                                   "TransformInput": transform_input, "TransformOutput": transform_output,
                                   "TransformResources": resources}
        optional: dict[str, Any] = {"BatchStrategy": self.strategy, "MaxConcurrentTransforms": self.max_concurrent_transforms,
                                    "MaxPayloadInMB": self.max_payload, "Environment": self.env, "Tags": self.tags,
                                    "ModelClientConfig": model_client_config}
        request.update({key: value for key, value in optional.items() if value is not None})
        processing = {key: value for key, value in (("InputFilter", input_filter), ("OutputFilter", output_filter),
                                                    ("JoinSource", join_source)) if value is not None}
        if processing:
            request["DataProcessing"] = processing
        return request

    def transform(
        self,
        data: str,
        data_type: str = "S3Prefix",
        content_type: str | None = None,
        compression_type: str | None = None,
        split_type: str | None = None,
        job_name: str | None = None,
        input_filter: str | None = None,
        output_filter: str | None = None,
        join_source: str | None = None,
        model_client_config: dict[str, int] | None = None,
        wait: bool = True,
        logs: bool = True,
        experiment_config: dict[str, str] | None = None,
    ) -> None:
        """Start a transform job over ``data`` (an S3 prefix, a manifest with ``data_type="ManifestFile"``)."""
        request = self.transform_request(data, data_type, content_type, compression_type, split_type, job_name,
                                         input_filter, output_filter, join_source, model_client_config)
        if experiment_config:
            request["ExperimentConfig"] = experiment_config
        self.sagemaker_session.platform.transform_jobs.create_transform_job(request)
        self._current_job_name = request["TransformJobName"]
        self.latest_transform_job = TransformJob(self.sagemaker_session, self._current_job_name)
        if wait:
            self.latest_transform_job.wait(logs=logs)

    # -- the job ----------------------------------------------------------------------------------
    def _require_job(self) -> TransformJob:
        if self.latest_transform_job is None:
            raise ValueError("No transform job available: call transform() first")
        return self.latest_transform_job

    def wait(self, logs: bool = True) -> dict[str, Any]:
        return self._require_job().wait(logs=logs)

    def stop_transform_job(self, wait: bool = True) -> None:
        job = self._require_job()
        job.stop()
        if wait:
            with open(os.devnull, "w") as quiet:
                wait_for_transform_job(self.sagemaker_session, job.name, stream=quiet)

    @classmethod
    def attach(cls, transform_job_name: str, sagemaker_session: Session | None = None) -> Transformer:
        """A Transformer for an existing job (its settings, and the job as ``latest_transform_job``)."""
        session = sagemaker_session or Session()
        description = session.platform.transform_jobs.describe_transform_job(transform_job_name)
        output = description["TransformOutput"]
        resources = description["TransformResources"]
        transformer = cls(
            model_name=description["ModelName"], instance_count=resources["InstanceCount"],
            instance_type=resources["InstanceType"], strategy=description.get("BatchStrategy"),
            assemble_with=output.get("AssembleWith"), output_path=output["S3OutputPath"],
            output_kms_key=output.get("KmsKeyId"), accept=output.get("Accept"),
            max_concurrent_transforms=description.get("MaxConcurrentTransforms"),
            max_payload=description.get("MaxPayloadInMB"), env=description.get("Environment") or None,
            base_transform_job_name=transform_job_name, sagemaker_session=session,
            volume_kms_key=resources.get("VolumeKmsKeyId"),
        )
        transformer.latest_transform_job = TransformJob(session, transform_job_name)
        transformer._current_job_name = transform_job_name
        return transformer


def _as_uri(value: str) -> str:
    """Local paths become file:// URIs (as sagemaker's local mode accepts them)."""
    return value if "://" in value else "file://" + os.path.abspath(value)
