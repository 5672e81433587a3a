"""Hyperparameter tuning jobs: create, describe, list, stop, and their training jobs.

The search itself runs in a controller process (forgeml.tuning.controller) that the executor starts,
like a training job's runner; this module records requests and reads state back in SageMaker's shapes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from forgeml.errors import ResourceInUse, ResourceNotFound, ValidationException
from forgeml.executors.base import TUNING
from forgeml.service.names import to_datetime
from forgeml.service.pagination import epoch_seconds, page
from forgeml.service.tuning_requests import normalize_tuning_request
from forgeml.service.validation import Checker
from forgeml.store import training_jobs as training_repo
from forgeml.store import tuning_jobs as repo
from forgeml.store.listing import list_rows
from forgeml.store.tables import tuning_jobs as tuning_jobs_table

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

CONTROLLER_LOST = ("InternalServerError: the tuning job's controller process ended unexpectedly; its training "
                   "jobs keep their results, start a new tuning job (it can warm start from this one)")


class TuningJobService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.db = platform.db

    def create_hyper_parameter_tuning_job(self, request: dict[str, Any]) -> dict[str, str]:
        normalized, _definitions = normalize_tuning_request(request, self.db)
        name = normalized["HyperParameterTuningJobName"]
        arn = self.platform.arn("hyper-parameter-tuning-job", name)
        now = round(time.time(), 6)
        row = {"name": name, "arn": arn, "status": "InProgress", "creation_time": now, "last_modified_time": now,
               "stop_requested": False, "request": normalized, "completion_details": {}}
        executor = self.platform.executor
        try:
            with executor.reserve(name, TUNING):
                repo.insert_tuning_job(self.db, row)
                executor.launch(name, TUNING)
        except (BlockingIOError, repo.DuplicateTuningJob):
            raise ResourceInUse(f"Hyperparameter tuning job names must be unique within an AWS account and region, "
                                f"and a tuning job with this name already exists ({arn})") from None
        return {"HyperParameterTuningJobArn": arn}

    def _row(self, name: str) -> dict[str, Any]:
        row = repo.get_tuning_job(self.db, name) if isinstance(name, str) else None
        if row is None:
            raise ResourceNotFound(f"Amazon SageMaker can't find a tuning job with name {name}")
        if row["status"] in repo.ACTIVE and not self.platform.executor.is_alive(name, TUNING):
            repo.set_status(self.db, name, "Failed", only_if=repo.ACTIVE, failure_reason=CONTROLLER_LOST,
                            end_time=time.time())
            row = repo.get_tuning_job(self.db, name) or row
        return row

    # -- describe ---------------------------------------------------------------------------------
    def trial_summaries(self, name: str) -> list[dict[str, Any]]:
        """HyperParameterTrainingJobSummary for every trial, in launch order."""
        row = self._row(name)
        objective = _objective(row["request"])
        summaries = []
        for trial in repo.trials(self.db, name):
            job = training_repo.get_job(self.db, trial["training_job_name"])
            if job is None:
                continue
            if job["status"] in training_repo.ACTIVE_STATUSES:
                job = self.platform.training_jobs.reconcile(job)
            summary: dict[str, Any] = {
                "TrainingJobName": job["name"],
                "TrainingJobArn": job["arn"],
                "TuningJobName": name,
                "CreationTime": to_datetime(job["creation_time"]),
                "TrainingJobStatus": job["status"],
                "TunedHyperParameters": trial["tuned_hyperparameters"],
                "ObjectiveStatus": trial["objective_status"],
            }
            if trial["definition_name"]:
                summary["TrainingJobDefinitionName"] = trial["definition_name"]
            if job["training_start_time"]:
                summary["TrainingStartTime"] = to_datetime(job["training_start_time"])
            if job["training_end_time"]:
                summary["TrainingEndTime"] = to_datetime(job["training_end_time"])
            if job["failure_reason"]:
                summary["FailureReason"] = job["failure_reason"]
            if trial["objective_value"] is not None:
                summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                    "Type": objective["Type"], "MetricName": objective["MetricName"], "Value": trial["objective_value"]}
            summaries.append(summary)
        return summaries

    def describe_hyper_parameter_tuning_job(self, name: str) -> dict[str, Any]:
        row = self._row(name)
        request = row["request"]
        summaries = self.trial_summaries(name)
        counters = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
        objectives = {"Succeeded": 0, "Pending": 0, "Failed": 0}
        for summary in summaries:
            status = summary["TrainingJobStatus"]
            counters["NonRetryableError" if status == "Failed" else
                     "InProgress" if status in ("InProgress", "Stopping") else status] += 1
            objectives[summary["ObjectiveStatus"]] += 1
        response: dict[str, Any] = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobArn": row["arn"],
            "HyperParameterTuningJobConfig": request["HyperParameterTuningJobConfig"],
            "HyperParameterTuningJobStatus": row["status"],
            "CreationTime": to_datetime(row["creation_time"]),
            "LastModifiedTime": to_datetime(row["last_modified_time"]),
            "TrainingJobStatusCounters": counters,
            "ObjectiveStatusCounters": objectives,
        }
        for key in ("TrainingJobDefinition", "TrainingJobDefinitions", "WarmStartConfig"):
            if key in request:
                response[key] = request[key]
        best = best_summary(summaries, _objective(request)["Type"] == "Minimize")
        if best is not None:
            response["BestTrainingJob"] = best
            response["OverallBestTrainingJob"] = self._overall_best(request, best)
        if row["end_time"]:
            response["HyperParameterTuningEndTime"] = to_datetime(row["end_time"])
        if row["failure_reason"]:
            response["FailureReason"] = row["failure_reason"]
        details = row["completion_details"] or {}
        response["TuningJobCompletionDetails"] = {
            k: (to_datetime(v) if k == "ConvergenceDetectedTime" else v) for k, v in details.items()
            if k in ("NumberOfTrainingJobsObjectiveNotImproving", "ConvergenceDetectedTime")
        }
        end = row["end_time"] or time.time()
        response["ConsumedResources"] = {"RuntimeInSeconds": int(end - row["creation_time"])}
        return response

    def _overall_best(self, request: dict[str, Any], best: dict[str, Any]) -> dict[str, Any]:
        warm = request.get("WarmStartConfig")
        if not warm or warm.get("WarmStartType") != "IdenticalDataAndAlgorithm":
            return best
        minimize = _objective(request)["Type"] == "Minimize"
        candidates = [best]
        for parent in warm["ParentHyperParameterTuningJobs"]:
            candidates += self.trial_summaries(parent["HyperParameterTuningJobName"])
        return best_summary(candidates, minimize) or best

    # -- list -------------------------------------------------------------------------------------
    def list_hyper_parameter_tuning_jobs(self, **params: Any) -> dict[str, Any]:
        check = Checker()
        check.integer(params.get("MaxResults"), "MaxResults", minimum=1, maximum=100)
        check.enum(params.get("SortBy"), "SortBy", ("Name", "Status", "CreationTime"))
        check.enum(params.get("SortOrder"), "SortOrder", ("Ascending", "Descending"))
        check.enum(params.get("StatusEquals"), "StatusEquals", ("Completed", "InProgress", "Failed", "Stopped", "Stopping"))
        check.raise_if_any()
        filters: dict[str, Any] = {"name_contains": params.get("NameContains"), "status": params.get("StatusEquals"),
                                   "sort_by": params.get("SortBy") or "Name",
                                   "ascending": (params.get("SortOrder") or "Ascending") == "Ascending",
                                   "created_after": epoch_seconds(params.get("CreationTimeAfter")),
                                   "created_before": epoch_seconds(params.get("CreationTimeBefore"))}
        rows, token = page(params, filters, lambda offset, count: list_rows(
            self.db, tuning_jobs_table, offset=offset, limit=count, **filters))
        summaries = []
        for row in rows:
            described = self.describe_hyper_parameter_tuning_job(row["name"])  # reconciles a lost controller too
            config = described["HyperParameterTuningJobConfig"]
            summary = {key: described[key] for key in (
                "HyperParameterTuningJobName", "HyperParameterTuningJobArn", "HyperParameterTuningJobStatus",
                "CreationTime", "LastModifiedTime", "TrainingJobStatusCounters", "ObjectiveStatusCounters")}
            summary.update({"Strategy": config["Strategy"], "ResourceLimits": config["ResourceLimits"]})
            if "HyperParameterTuningEndTime" in described:
                summary["HyperParameterTuningEndTime"] = described["HyperParameterTuningEndTime"]
            summaries.append(summary)
        response: dict[str, Any] = {"HyperParameterTuningJobSummaries": summaries}
        if token:
            response["NextToken"] = token
        return response

    def list_training_jobs_for_hyper_parameter_tuning_job(self, **params: Any) -> dict[str, Any]:
        name = params.get("HyperParameterTuningJobName")
        check = Checker()
        check.string(name, "HyperParameterTuningJobName", required=True, min_len=1, max_len=32)
        check.integer(params.get("MaxResults"), "MaxResults", minimum=1, maximum=100)
        check.enum(params.get("SortBy"), "SortBy", ("Name", "CreationTime", "Status", "FinalObjectiveMetricValue"))
        check.enum(params.get("SortOrder"), "SortOrder", ("Ascending", "Descending"))
        check.enum(params.get("StatusEquals"), "StatusEquals", ("InProgress", "Completed", "Failed", "Stopping", "Stopped"))
        check.raise_if_any()
        row = self._row(str(name))
        summaries = self.trial_summaries(str(name))
        if params.get("StatusEquals"):
            summaries = [s for s in summaries if s["TrainingJobStatus"] == params["StatusEquals"]]
        sort_by = params.get("SortBy") or "Name"
        descending = (params.get("SortOrder") or "Descending") == "Descending"
        if sort_by == "FinalObjectiveMetricValue":
            minimize = _objective(row["request"])["Type"] == "Minimize"
            with_value = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s]
            without = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" not in s]
            # "Descending" lists the best first, whichever the objective's direction
            with_value.sort(key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                            reverse=descending != minimize)
            summaries = with_value + without
        else:
            key = {"Name": "TrainingJobName", "CreationTime": "CreationTime", "Status": "TrainingJobStatus"}[sort_by]
            summaries.sort(key=lambda s: s[key], reverse=descending)
        filters = {"tuning": name, "sort": sort_by, "descending": descending, "status": params.get("StatusEquals")}
        rows, token = page(params, filters, lambda offset, count: summaries[offset: offset + count])
        response: dict[str, Any] = {"TrainingJobSummaries": rows}
        if token:
            response["NextToken"] = token
        return response

    # -- stop -------------------------------------------------------------------------------------
    def stop_hyper_parameter_tuning_job(self, name: str) -> None:
        row = self._row(name)
        if row["status"] == "Stopping":
            return
        if not repo.set_status(self.db, name, "Stopping", only_if=("InProgress",), stop_requested=True):
            raise ValidationException(f"The request was rejected because the tuning job is in status {row['status']}.")
        self.platform.executor.stop(name, TUNING)


def _objective(request: dict[str, Any]) -> dict[str, str]:
    config = request["HyperParameterTuningJobConfig"]
    if "HyperParameterTuningJobObjective" in config:
        return dict(config["HyperParameterTuningJobObjective"])
    definition = request.get("TrainingJobDefinition") or request["TrainingJobDefinitions"][0]
    return dict(definition["TuningObjective"])


def best_summary(summaries: list[dict[str, Any]], minimize: bool) -> dict[str, Any] | None:
    scored = [s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s
              and s["TrainingJobStatus"] in ("Completed", "Stopped")]
    if not scored:
        return None
    pick = min if minimize else max
    return pick(scored, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
