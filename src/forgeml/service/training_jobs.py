"""Training jobs: create, describe, list, stop. The one place their rules live.

The SDK, the CLI and the HTTP server call these methods with SageMaker's request shapes and get
SageMaker's response shapes back (timestamps as timezone-aware datetimes, as boto3 returns them).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from forgeml.errors import ResourceInUse, ResourceNotFound, ValidationException
from forgeml.service.names import to_datetime
from forgeml.service.pagination import check_list_request, list_filters, page
from forgeml.service.training_requests import normalize_create_request
from forgeml.store import training_jobs as repo

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

FIRST_TRANSITION = ("Starting", "Starting the training job")
WORKER_LOST = (
    "InternalServerError: the job's worker process ended unexpectedly (it was killed or the machine "
    "restarted) before the job finished; start the job again"
)


def model_artifact_uri(request: dict[str, Any]) -> str:
    output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    name = request["TrainingJobName"]
    if request["OutputDataConfig"].get("CompressionType") == "NONE":
        return f"{output}/{name}/output/model/"
    return f"{output}/{name}/output/model.tar.gz"


class TrainingJobService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.db = platform.db

    # -- create -----------------------------------------------------------------------------------
    def create_training_job(self, request: dict[str, Any], *, tuning_job_name: str | None = None) -> dict[str, str]:
        normalized, _program = normalize_create_request(request)
        name = normalized["TrainingJobName"]
        arn = self.platform.arn("training-job", name)
        now = round(time.time(), 6)  # what a datetime can hold, so filters on returned times are exact
        row = {
            "name": name,
            "arn": arn,
            "status": "InProgress",
            "secondary_status": FIRST_TRANSITION[0],
            "creation_time": now,
            "last_modified_time": now,
            "model_artifacts": model_artifact_uri(normalized),
            "tuning_job_name": tuning_job_name,
            "stop_requested": False,
            "request": normalized,
        }
        executor = self.platform.executor
        try:
            # The job's liveness lock is held from before its record exists until its runner owns it;
            # a live job of the same name already holds it (BlockingIOError).
            with executor.reserve(name):
                repo.insert_job(self.db, row, FIRST_TRANSITION)
                executor.launch(name)
        except (BlockingIOError, repo.DuplicateJob):
            raise _name_taken(arn) from None
        return {"TrainingJobArn": arn}

    # -- read -------------------------------------------------------------------------------------
    def _row(self, name: str) -> dict[str, Any]:
        row = repo.get_job(self.db, name) if isinstance(name, str) else None
        if row is None:
            raise ResourceNotFound(f"Requested resource not found: training job '{name}' does not exist")
        return self.reconcile(row)

    def reconcile(self, row: dict[str, Any]) -> dict[str, Any]:
        """An active job whose worker is gone is Failed: nothing will ever finish it otherwise."""
        if row["status"] in repo.ACTIVE_STATUSES and not self.platform.executor.is_alive(row["name"]):
            repo.transition(
                self.db, row["name"], "Failed", "Failed", "Training job failed",
                only_if_status=repo.ACTIVE_STATUSES, failure_reason=WORKER_LOST, training_end_time=time.time(),
            )
            row = repo.get_job(self.db, row["name"]) or row
        return row

    def describe_training_job(self, name: str) -> dict[str, Any]:
        row = self._row(name)
        request = row["request"]
        transitions = repo.get_transitions(self.db, name)
        response: dict[str, Any] = {
            "TrainingJobName": row["name"],
            "TrainingJobArn": row["arn"],
            "ModelArtifacts": {"S3ModelArtifacts": row["model_artifacts"]},
            "TrainingJobStatus": row["status"],
            "SecondaryStatus": row["secondary_status"],
            "HyperParameters": request.get("HyperParameters", {}),
            "AlgorithmSpecification": request["AlgorithmSpecification"],
            "RoleArn": request["RoleArn"],
            "InputDataConfig": request.get("InputDataConfig", []),
            "OutputDataConfig": request["OutputDataConfig"],
            "ResourceConfig": request["ResourceConfig"],
            "StoppingCondition": request["StoppingCondition"],
            "CreationTime": to_datetime(row["creation_time"]),
            "LastModifiedTime": to_datetime(row["last_modified_time"]),
            "SecondaryStatusTransitions": [
                {k: v for k, v in {
                    "Status": t["status"], "StartTime": to_datetime(t["start_time"]),
                    "EndTime": to_datetime(t["end_time"]), "StatusMessage": t["message"],
                }.items() if v is not None}
                for t in transitions
            ],
            "FinalMetricDataList": [
                {"MetricName": m["metric_name"], "Value": m["value"], "Timestamp": to_datetime(m["timestamp"])}
                for m in repo.final_metrics(self.db, name)
            ],
            "EnableNetworkIsolation": request.get("EnableNetworkIsolation", False),
            "EnableInterContainerTrafficEncryption": request.get("EnableInterContainerTrafficEncryption", False),
            "EnableManagedSpotTraining": request.get("EnableManagedSpotTraining", False),
            "ProfilingStatus": "Disabled",
        }
        if row["tuning_job_name"]:
            response["TuningJobArn"] = self.platform.arn("hyper-parameter-tuning-job", row["tuning_job_name"])
        if row["failure_reason"]:
            response["FailureReason"] = row["failure_reason"][:1024]
        if row["training_start_time"]:
            response["TrainingStartTime"] = to_datetime(row["training_start_time"])
        if row["training_end_time"]:
            response["TrainingEndTime"] = to_datetime(row["training_end_time"])
            if row["training_start_time"]:
                seconds = max(1, round(row["training_end_time"] - row["training_start_time"]))
                response["TrainingTimeInSeconds"] = seconds
                response["BillableTimeInSeconds"] = row["billable_seconds"] or seconds
        for optional in ("CheckpointConfig", "Environment", "VpcConfig", "ExperimentConfig", "RetryStrategy",
                         "DebugHookConfig", "TensorBoardOutputConfig"):
            if optional in request:
                response[optional] = request[optional]
        return response

    def list_training_jobs(self, **params: Any) -> dict[str, Any]:
        check_list_request(params, ("InProgress", "Completed", "Failed", "Stopping", "Stopped"),
                           extra_members=("WarmPoolStatusEquals", "TrainingPlanArnEquals"))
        filters = list_filters(params)
        rows, token = page(params, filters, lambda offset, count: [
            self.reconcile(r) for r in repo.list_jobs(self.db, offset=offset, limit=count, **filters)])
        response: dict[str, Any] = {"TrainingJobSummaries": [_summary(r) for r in rows]}
        if token:
            response["NextToken"] = token
        return response

    # -- stop -------------------------------------------------------------------------------------
    def stop_training_job(self, name: str) -> None:
        row = self._row(name)
        if row["status"] == "Stopping":
            return
        if not repo.request_stop(self.db, name):
            current = repo.get_job(self.db, name) or row
            raise ValidationException(
                f"The request was rejected because the training job is in status {current['status']}."
            )
        self.platform.executor.stop(name)

    # -- logs and metrics -------------------------------------------------------------------------
    def metric_series(self, name: str, metric_name: str | None = None) -> list[dict[str, Any]]:
        self._row(name)
        return [
            {"MetricName": p["metric_name"], "Value": p["value"], "Timestamp": to_datetime(p["timestamp"])}
            for p in repo.metric_series(self.db, name, metric_name)
        ]


def _name_taken(arn: str) -> ResourceInUse:
    return ResourceInUse(
        "Training job names must be unique within an AWS account and region, and a training job with "
        f"this name already exists ({arn})"
    )


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    summary = {
        "TrainingJobName": row["name"],
        "TrainingJobArn": row["arn"],
        "CreationTime": to_datetime(row["creation_time"]),
        "LastModifiedTime": to_datetime(row["last_modified_time"]),
        "TrainingJobStatus": row["status"],
        "SecondaryStatus": row["secondary_status"],
    }
    if row["training_end_time"]:
        summary["TrainingEndTime"] = to_datetime(row["training_end_time"])
    return summary
