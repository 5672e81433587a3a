"""Batch transform jobs: CreateTransformJob, DescribeTransformJob, ListTransformJobs, StopTransformJob.

The work runs in a runner process the executor starts (``forgeml.transform.runner``); this module
records requests, answers in SageMaker's shapes (timestamps as timezone-aware datetimes) and marks
a job whose runner vanished as Failed, since nothing else would ever finish it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from forgeml.errors import ResourceInUse, ValidationException
from forgeml.executors.base import TRANSFORM
from forgeml.service.names import to_datetime
from forgeml.service.pagination import check_list_request, list_filters, page
from forgeml.service.transform_requests import normalize_transform_request, with_defaults
from forgeml.store import transform_jobs as repo
from forgeml.store.listing import list_rows
from forgeml.store.tables import transform_jobs as transform_jobs_table

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")
RUNNER_LOST = ("InternalServerError: the transform job's runner process ended unexpectedly (it was killed or the "
               "machine restarted); see FORGEML_HOME/transform/{name}/runner.log, then start the job again")
class TransformJobService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.db = platform.db

    # -- create -----------------------------------------------------------------------------------
    def create_transform_job(self, request: dict[str, Any]) -> dict[str, str]:
        normalized = normalize_transform_request(request)
        model = normalized["ModelName"]
        if not self.platform.models.exists(model):
            raise ValidationException(f"Could not find model \"{self.platform.arn('model', model)}\".")
        name = normalized["TransformJobName"]
        arn = self.platform.arn("transform-job", name)
        now = round(time.time(), 6)
        row = {"name": name, "arn": arn, "status": "InProgress", "creation_time": now, "last_modified_time": now,
               "stop_requested": False, "request": normalized}
        executor = self.platform.executor
        try:
            # the liveness lock is held from before the record exists until the runner owns it
            with executor.reserve(name, TRANSFORM):
                repo.insert_job(self.db, row)
                executor.launch(name, TRANSFORM)
        except (BlockingIOError, repo.DuplicateTransformJob):
            raise ResourceInUse(f"Job name must be unique within an AWS account and region, and a transform job "
                                f"with this name already exists ({arn})") from None
        return {"TransformJobArn": arn}

    # -- read -------------------------------------------------------------------------------------
    def _row(self, name: str) -> dict[str, Any]:
        row = repo.get_job(self.db, name) if isinstance(name, str) else None
        if row is None:
            raise ValidationException(f"Could not find requested job with name {name}")
        return self.reconcile(row)

    def reconcile(self, row: dict[str, Any]) -> dict[str, Any]:
        """An active job whose runner is gone is Failed."""
        name = row["name"]
        if row["status"] in repo.ACTIVE and not self.platform.executor.is_alive(name, TRANSFORM):
            repo.set_status(self.db, name, "Failed", only_if=repo.ACTIVE, end_time=round(time.time(), 6),
                            failure_reason=RUNNER_LOST.format(name=name))
            row = repo.get_job(self.db, name) or row
        return row

    def describe_transform_job(self, name: str) -> dict[str, Any]:
        row = self._row(name)
        filled = with_defaults(row["request"])
        response: dict[str, Any] = {
            "TransformJobName": row["name"],
            "TransformJobArn": row["arn"],
            "TransformJobStatus": row["status"],
            "ModelName": filled["ModelName"],
            "MaxConcurrentTransforms": filled["MaxConcurrentTransforms"],
            "ModelClientConfig": filled["ModelClientConfig"],
            "MaxPayloadInMB": filled["MaxPayloadInMB"],
            "BatchStrategy": filled["BatchStrategy"],
            "Environment": filled["Environment"],
            "TransformInput": filled["TransformInput"],
            "TransformOutput": filled["TransformOutput"],
            "TransformResources": filled["TransformResources"],
            "CreationTime": to_datetime(row["creation_time"]),
            "DataProcessing": filled["DataProcessing"],
        }
        if row["failure_reason"]:
            response["FailureReason"] = row["failure_reason"][:1024]
        if row["start_time"]:
            response["TransformStartTime"] = to_datetime(row["start_time"])
        if row["end_time"]:
            response["TransformEndTime"] = to_datetime(row["end_time"])
        for optional in ("DataCaptureConfig", "ExperimentConfig"):
            if optional in filled:
                response[optional] = filled[optional]
        return response

    # -- list -------------------------------------------------------------------------------------
    def list_transform_jobs(self, **params: Any) -> dict[str, Any]:
        check_list_request(params, STATUSES)
        filters = list_filters(params)
        rows, token = page(params, filters, lambda offset, count: [
            self.reconcile(r) for r in list_rows(self.db, transform_jobs_table, offset=offset, limit=count, **filters)])
        response: dict[str, Any] = {"TransformJobSummaries": [_summary(r) for r in rows]}
        if token:
            response["NextToken"] = token
        return response

    # -- stop -------------------------------------------------------------------------------------
    def stop_transform_job(self, name: str) -> None:
        row = self._row(name)
        if row["status"] == "Stopping":
            return
        if not repo.set_status(self.db, name, "Stopping", only_if=("InProgress",), stop_requested=True):
            current = repo.get_job(self.db, name) or row
            raise ValidationException(
                f"The request was rejected because the transform job is in status {current['status']}.")
        self.platform.executor.stop(name, TRANSFORM)

    # -- logs -------------------------------------------------------------------------------------
    def log_events(self, name: str, after_id: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
        """The job's log events after ``after_id`` (CloudWatch's shape plus ``id``, the next cursor)."""
        self._row(name)
        return [{"id": e["id"], "logStreamName": e["log_stream"], "timestamp": int(e["timestamp"] * 1000),
                 "message": e["message"]} for e in repo.read_logs(self.db, name, after_id, limit)]


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "TransformJobName": row["name"],
        "TransformJobArn": row["arn"],
        "CreationTime": to_datetime(row["creation_time"]),
        "LastModifiedTime": to_datetime(row["last_modified_time"]),
        "TransformJobStatus": row["status"],
    }
    if row["end_time"]:
        summary["TransformEndTime"] = to_datetime(row["end_time"])
    if row["failure_reason"]:
        summary["FailureReason"] = row["failure_reason"][:1024]
    return summary
