"""Logs as CloudWatch Logs presents them: DescribeLogStreams, GetLogEvents and FilterLogEvents.

The groups are ``/aws/sagemaker/TrainingJobs`` and ``/aws/sagemaker/TransformJobs`` (streams
``<job>/algo-1-<epoch>``), which always exist, and each endpoint's ``/aws/sagemaker/Endpoints/<name>``
(streams ``<variant>/<instance id>``), which exists while the endpoint does. The sagemaker SDK's
``logs_for_job`` lists a job's streams by prefix, then reads each with ``GetLogEvents(startTime=...,
startFromHead=True)`` following ``nextForwardToken`` until a page comes back empty, so that token is
returned on every page, empty ones included (it is then the token that was sent, as CloudWatch does).

Tokens are event ids (every event has one, in write order): ``f/<id>`` reads after an event,
``b/<id>`` before one; FilterLogEvents' ``nextToken`` is the last id it returned. Timestamps are
epoch milliseconds, ``startTime`` inclusive and ``endTime`` exclusive; ``filterPattern`` is a plain,
case-sensitive substring (CloudWatch's pattern syntax is not interpreted).

``job_log_streams(job_name)`` and ``job_events`` are the SDK's and CLI's shortcuts for one
training job's log.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from forgeml.errors import ForgeMLError, ValidationException
from forgeml.service.pagination import page
from forgeml.service.validation import Checker
from forgeml.store import endpoints as endpoints_repo
from forgeml.store import logs as logs_repo
from forgeml.store import training_jobs as repo
from forgeml.store import transform_jobs

if TYPE_CHECKING:
    from collections.abc import Callable

    from forgeml.service.platform import Platform

LOG_GROUPS = (repo.LOG_GROUP, transform_jobs.LOG_GROUP)
GROUP_NAME_PATTERN = r"[\.\-_/#A-Za-z0-9]+"
STREAM_NAME_PATTERN = r"[^:*]*"
MAX_EVENTS = 10000
MAX_STREAMS = 50
TOKEN_PATTERN = re.compile(r"([fb])/(\d{1,19})")
BAD_TOKEN = "The specified nextToken is invalid."


class ResourceNotFoundException(ForgeMLError):
    code = "ResourceNotFoundException"
    http_status = 400


class InvalidParameterException(ForgeMLError):
    code = "InvalidParameterException"
    http_status = 400


class LogService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.db = platform.db

    # -- DescribeLogStreams ----------------------------------------------------------------------

    def job_log_streams(self, job_name: str) -> list[dict[str, Any]]:
        """A training job's streams (what the SDK's log printing lists), without the operation's paging."""
        return self._job_streams(job_name)

    def describe_log_streams(self, request: dict[str, Any]) -> dict[str, Any]:
        """CloudWatch Logs' DescribeLogStreams over one group."""
        check = Checker()
        check.unknown_members(request, "", ("logGroupName", "logGroupIdentifier", "logStreamNamePrefix", "orderBy",
                                            "descending", "nextToken", "limit"))
        group = self._log_group(request, check)
        prefix = request.get("logStreamNamePrefix")
        check.string(prefix, "logStreamNamePrefix", min_len=1, max_len=512, pattern=STREAM_NAME_PATTERN)
        check.enum(request.get("orderBy"), "orderBy", ("LogStreamName", "LastEventTime"))
        check.boolean(request.get("descending"), "descending")
        check.integer(request.get("limit"), "limit", minimum=1, maximum=MAX_STREAMS)
        check.string(request.get("nextToken"), "nextToken", min_len=1)
        check.raise_if_any()
        by_time = request.get("orderBy") == "LastEventTime"
        if by_time and prefix:
            raise InvalidParameterException("Cannot order by LastEventTime with a logStreamNamePrefix.")
        self._require_group(group)
        descending = bool(request.get("descending"))
        filters = {"group": group, "prefix": prefix or "", "orderBy": "LastEventTime" if by_time else "LogStreamName",
                   "descending": descending}
        params = {"MaxResults": request.get("limit") or MAX_STREAMS, "NextToken": request.get("nextToken")}
        rows, token = _paged(params, filters, lambda offset, count: logs_repo.stream_summaries(
            self.db, group, prefix or "", by_last_event=by_time, descending=descending, offset=offset, count=count))
        response: dict[str, Any] = {"logStreams": [self._stream(group, row) for row in rows]}
        if token:
            response["nextToken"] = token
        return response

    def _stream(self, group: str, row: dict[str, Any]) -> dict[str, Any]:
        config = self.platform.config
        arn = f"arn:aws:logs:{config.region}:{config.account_id}:log-group:{group}:log-stream:{row['log_stream']}"
        return {"logStreamName": row["log_stream"], "creationTime": _millis(row["first"]),
                "firstEventTimestamp": _millis(row["first"]), "lastEventTimestamp": _millis(row["last"]),
                "lastIngestionTime": _millis(row["last"]), "arn": arn, "storedBytes": int(row["size"] or 0)}

    def _job_streams(self, job_name: str) -> list[dict[str, Any]]:
        return [
            {
                "logStreamName": s["log_stream"],
                "firstEventTimestamp": int(s["first"] * 1000),
                "lastEventTimestamp": int(s["last"] * 1000),
                "storedBytes": 0,
            }
            for s in repo.log_streams(self.db, f"{job_name}/")
        ]

    # -- GetLogEvents ----------------------------------------------------------------------------

    def get_log_events(self, request: dict[str, Any]) -> dict[str, Any]:
        """One stream's events: forward from ``f/<id>``, back from ``b/<id>``, or from either end."""
        check = Checker()
        check.unknown_members(request, "", ("logGroupName", "logGroupIdentifier", "logStreamName", "startTime",
                                            "endTime", "nextToken", "limit", "startFromHead", "unmask"))
        group = self._log_group(request, check)
        check.string(request.get("logStreamName"), "logStreamName", required=True, min_len=1, max_len=512,
                     pattern=STREAM_NAME_PATTERN)
        check.integer(request.get("limit"), "limit", minimum=1, maximum=MAX_EVENTS)
        check.boolean(request.get("startFromHead"), "startFromHead")
        check.string(request.get("nextToken"), "nextToken", min_len=1)
        check.raise_if_any()
        stream = str(request["logStreamName"])
        self._require_group(group)
        if not logs_repo.stream_exists(self.db, group, stream):
            raise ResourceNotFoundException("The specified log stream does not exist.")
        direction, mark = _direction(request.get("nextToken"), bool(request.get("startFromHead")))
        limit = request.get("limit") or MAX_EVENTS
        start, end = _window(request)
        if direction == "f":
            query = logs_repo.EventQuery(group, streams=[stream], after_id=mark, start=start, end=end)
            events = logs_repo.read_events(self.db, query, limit)
            forward, backward = (events[-1]["id"], events[0]["id"]) if events else (mark, mark + 1)
        else:
            query = logs_repo.EventQuery(group, streams=[stream], before_id=mark, start=start, end=end)
            events = logs_repo.read_events(self.db, query, limit, newest_first=True)
            if events:
                forward, backward = events[-1]["id"], events[0]["id"]
            else:
                forward, backward = (mark - 1 if mark is not None else 0), (mark if mark is not None else 0)
        return {
            "events": [{"timestamp": _millis(e["timestamp"]), "message": e["message"],
                        "ingestionTime": _millis(e["timestamp"])} for e in events],
            "nextForwardToken": f"f/{forward:019d}",
            "nextBackwardToken": f"b/{backward:019d}",
        }

    # -- FilterLogEvents -------------------------------------------------------------------------

    def filter_log_events(self, request: dict[str, Any]) -> dict[str, Any]:
        """Events of a group's streams (named, by prefix, or all) in write order, filtered by time and text."""
        check = Checker()
        check.unknown_members(request, "", ("logGroupName", "logGroupIdentifier", "logStreamNames",
                                            "logStreamNamePrefix", "startTime", "endTime", "filterPattern",
                                            "nextToken", "limit", "interleaved", "unmask"))
        group = self._log_group(request, check)
        names = check.items(request.get("logStreamNames"), "logStreamNames", min_items=1, max_items=100)
        for index, name in enumerate(names):
            check.string(name, f"logStreamNames.{index + 1}", min_len=1, max_len=512, pattern=STREAM_NAME_PATTERN)
        prefix = request.get("logStreamNamePrefix")
        check.string(prefix, "logStreamNamePrefix", min_len=1, max_len=512, pattern=STREAM_NAME_PATTERN)
        pattern = request.get("filterPattern")
        check.string(pattern, "filterPattern", max_len=1024)
        check.integer(request.get("limit"), "limit", minimum=1, maximum=MAX_EVENTS)
        check.string(request.get("nextToken"), "nextToken", min_len=1)
        check.raise_if_any()
        if names and prefix is not None:
            raise InvalidParameterException("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
        self._require_group(group)
        token = request.get("nextToken")
        if token is not None and not token.isdigit():
            raise InvalidParameterException(BAD_TOKEN)
        start, end = _window(request)
        query = logs_repo.EventQuery(group, streams=list(names) if names else None,
                                     stream_prefix=None if names else prefix, after_id=int(token or 0),
                                     start=start, end=end, text=_plain(pattern) if pattern else None)
        limit = request.get("limit") or MAX_EVENTS
        events = logs_repo.read_events(self.db, query, limit + 1)
        response: dict[str, Any] = {"events": [
            {"logStreamName": e["log_stream"], "timestamp": _millis(e["timestamp"]), "message": e["message"],
             "ingestionTime": _millis(e["timestamp"]), "eventId": str(e["id"])}
            for e in events[:limit]
        ]}
        if len(events) > limit:
            response["nextToken"] = str(events[limit - 1]["id"])
        return response

    # -- one training job's log ------------------------------------------------------------------

    def job_events(self, job_name: str, after_id: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
        """Events of every stream of the job after ``after_id``: ``id`` is the cursor for the next call."""
        return [
            {"id": e["id"], "logStreamName": e["log_stream"], "timestamp": int(e["timestamp"] * 1000),
             "message": e["message"]}
            for e in repo.read_logs(self.db, f"{job_name}/", after_id, limit)
        ]

    # -- groups ----------------------------------------------------------------------------------

    def _log_group(self, request: dict[str, Any], check: Checker) -> str:
        """logGroupName, or logGroupIdentifier (a name or its ARN); one of them, not both."""
        name, identifier = request.get("logGroupName"), request.get("logGroupIdentifier")
        if name is not None and identifier is not None:
            raise InvalidParameterException("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        if identifier is not None:
            check.string(identifier, "logGroupIdentifier", min_len=1, max_len=2048)
            config = self.platform.config
            prefix = f"arn:aws:logs:{config.region}:{config.account_id}:log-group:"
            is_arn = isinstance(identifier, str) and identifier.startswith(prefix)
            name = identifier[len(prefix):] if is_arn else identifier
            if isinstance(name, str):
                name = name.removesuffix(":*")
            path = "logGroupIdentifier"
        else:
            path = "logGroupName"
        check.string(name, path, required=True, min_len=1, max_len=512, pattern=GROUP_NAME_PATTERN)
        return str(name)

    def _require_group(self, name: str) -> None:
        """The two job groups always exist; an endpoint's group exists while the endpoint does."""
        prefix = endpoints_repo.LOG_GROUP_PREFIX
        endpoint_group = name.startswith(prefix) and self.platform.endpoints.exists(name[len(prefix):])
        if name not in LOG_GROUPS and not endpoint_group:
            raise ResourceNotFoundException("The specified log group does not exist.")


def _paged(params: dict[str, Any], filters: dict[str, Any],
           fetch: Callable[[int, int], list[Any]]) -> tuple[list[Any], str | None]:
    """service.pagination.page, with CloudWatch's error code for a bad token."""
    try:
        return page(params, filters, fetch)
    except ValidationException:
        raise InvalidParameterException(BAD_TOKEN) from None


def _direction(token: str | None, start_from_head: bool) -> tuple[str, Any]:
    """(``f``, after id) or (``b``, before id, None for the stream's end)."""
    if token is None:
        return ("f", 0) if start_from_head else ("b", None)
    match = TOKEN_PATTERN.fullmatch(token)
    if match is None:
        raise InvalidParameterException(BAD_TOKEN)
    return match.group(1), int(match.group(2))


def _window(request: dict[str, Any]) -> tuple[float | None, float | None]:
    """startTime and endTime (epoch milliseconds) as the store's epoch seconds."""
    start, end = request.get("startTime"), request.get("endTime")
    return (start / 1000.0 if start is not None else None), (end / 1000.0 if end is not None else None)


def _plain(pattern: str) -> str:
    """A pattern in double quotes (CloudWatch's exact-phrase form) means its inside."""
    stripped = pattern.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        return stripped[1:-1]
    return stripped


def _millis(seconds: float) -> int:
    """Epoch milliseconds, truncated as ``job_events`` does (so both report the same times)."""
    return int(seconds * 1000)
