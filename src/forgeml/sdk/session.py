"""``forgeml.Session``: the sagemaker ``Session`` API over the embedded platform."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from forgeml.config import Config
from forgeml.errors import UnexpectedStatusException
from forgeml.sdk.client import LogsClient, SageMakerClient
from forgeml.service.platform import Platform
from forgeml.storage.uri import parse_s3_uri

TERMINAL = ("Completed", "Failed", "Stopped")
TROUBLESHOOTING = "Check the job's log (forgeml jobs logs <name>) for the full error."


def get_execution_role(sagemaker_session: Session | None = None) -> str:
    """A role ARN for requests that need one; forgeml runs jobs as the current user."""
    config = (sagemaker_session or Session()).config
    return f"arn:aws:iam::{config.account_id}:role/service-role/ForgeML-ExecutionRole"


class Session:
    """Entry point to the platform, with sagemaker.Session's methods.

    ``Session()`` uses the embedded platform under ``FORGEML_HOME`` (``~/.forgeml``).
    """

    def __init__(self, forgeml_home: str | os.PathLike[str] | None = None, default_bucket: str | None = None,
                 poll_interval: float = 0.1) -> None:
        self.config = Config.from_env(Path(forgeml_home) if forgeml_home is not None else None)
        self.platform = Platform.get(self.config)
        self._default_bucket_name = default_bucket
        self.poll_interval = poll_interval
        self.sagemaker_client = SageMakerClient(self.platform)
        self.logs_client = LogsClient(self.platform)

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
