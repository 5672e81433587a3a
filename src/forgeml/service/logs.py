"""Job logs as CloudWatch Logs presents them: group ``/aws/sagemaker/TrainingJobs``, stream per host."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forgeml.store import training_jobs as repo

if TYPE_CHECKING:
    from forgeml.service.platform import Platform


class LogService:
    def __init__(self, platform: Platform) -> None:
        self.db = platform.db

    def describe_log_streams(self, job_name: str) -> list[dict[str, Any]]:
        return [
            {
                "logStreamName": s["log_stream"],
                "firstEventTimestamp": int(s["first"] * 1000),
                "lastEventTimestamp": int(s["last"] * 1000),
                "storedBytes": 0,
            }
            for s in repo.log_streams(self.db, f"{job_name}/")
        ]

    def job_events(self, job_name: str, after_id: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
        """Events of every stream of the job after ``after_id``: ``id`` is the cursor for the next call."""
        return [
            {"id": e["id"], "logStreamName": e["log_stream"], "timestamp": int(e["timestamp"] * 1000),
             "message": e["message"]}
            for e in repo.read_logs(self.db, f"{job_name}/", after_id, limit)
        ]
