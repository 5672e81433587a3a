"""Job logs in CloudWatch Logs' JSON 1.1 protocol (``X-Amz-Target: Logs_20140328.<Operation>``).

The subset that tools tailing SageMaker jobs use, over the log lines forgeml's jobs write:
``DescribeLogStreams``, ``GetLogEvents`` and ``FilterLogEvents`` for the log groups
``/aws/sagemaker/TrainingJobs`` and ``/aws/sagemaker/TransformJobs`` (streams
``<job>/algo-1-<epoch>``) and each endpoint's ``/aws/sagemaker/Endpoints/<name>`` (streams
``<variant>/<instance id>``: what its model-server workers print). The sagemaker SDK's ``logs_for_job`` lists a job's streams by prefix,
then reads each with ``GetLogEvents(startTime=..., startFromHead=True)`` following
``nextForwardToken`` until a page comes back empty, so that token is returned on every page,
empty ones included (it is then the token that was sent, as CloudWatch does).

Tokens are event ids (every event has one, in write order): ``f/<id>`` reads after an event,
``b/<id>`` before one; FilterLogEvents' ``nextToken`` is the last id it returned. Timestamps are
epoch milliseconds, ``startTime`` inclusive and ``endTime`` exclusive; ``filterPattern`` is a plain,
case-sensitive substring (CloudWatch's pattern syntax is not interpreted).

The queries read the store's ``log_events`` table directly (read-only), since the store's read
functions serve one job at a time and CloudWatch's calls filter by stream, time and text.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, asc, desc, func, select

from forgeml.errors import ForgeMLError, ValidationException
from forgeml.server.json_protocol import JsonService, Operation
from forgeml.service.pagination import page
from forgeml.service.validation import Checker
from forgeml.store import endpoints as endpoints_repo
from forgeml.store import training_jobs, transform_jobs
from forgeml.store.tables import log_events

if TYPE_CHECKING:
    from forgeml.service.platform import Platform
    from forgeml.store.database import Database

TARGET_PREFIX = "Logs_20140328"
LOG_GROUPS = (training_jobs.LOG_GROUP, transform_jobs.LOG_GROUP)
GROUP_NAME_PATTERN = r"[\.\-_/#A-Za-z0-9]+"
STREAM_NAME_PATTERN = r"[^:*]*"
MAX_EVENTS = 10000
MAX_STREAMS = 50
TOKEN_PATTERN = re.compile(r"([fb])/(\d{1,19})")


class ResourceNotFoundException(ForgeMLError):
    code = "ResourceNotFoundException"
    http_status = 400


class InvalidParameterException(ForgeMLError):
    code = "InvalidParameterException"
    http_status = 400


# -- requests ------------------------------------------------------------------------------------


def _log_group(platform: Platform, request: dict[str, Any], check: Checker) -> str:
    """logGroupName, or logGroupIdentifier (a name or its ARN); one of them, not both."""
    name, identifier = request.get("logGroupName"), request.get("logGroupIdentifier")
    if name is not None and identifier is not None:
        raise InvalidParameterException("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if identifier is not None:
        check.string(identifier, "logGroupIdentifier", min_len=1, max_len=2048)
        prefix = f"arn:aws:logs:{platform.config.region}:{platform.config.account_id}:log-group:"
        name = identifier[len(prefix):] if isinstance(identifier, str) and identifier.startswith(prefix) else identifier
        if isinstance(name, str):
            name = name.removesuffix(":*")
        path = "logGroupIdentifier"
    else:
        path = "logGroupName"
    check.string(name, path, required=True, min_len=1, max_len=512, pattern=GROUP_NAME_PATTERN)
    return str(name)


def _existing_group(platform: Platform, name: str) -> str:
    """The group, if it exists: the two job groups always, an endpoint's while the endpoint does."""
    prefix = endpoints_repo.LOG_GROUP_PREFIX
    endpoint_group = name.startswith(prefix) and platform.endpoints.exists(name[len(prefix):])
    if name not in LOG_GROUPS and not endpoint_group:
        raise ResourceNotFoundException("The specified log group does not exist.")
    return name


def _paged(params: dict[str, Any], filters: dict[str, Any], fetch: Any) -> tuple[list[Any], str | None]:
    """service.pagination.page, with CloudWatch's error code for a bad token."""
    try:
        return page(params, filters, fetch)
    except ValidationException:
        raise InvalidParameterException("The specified nextToken is invalid.") from None


def _stream_arn(platform: Platform, group: str, stream: str) -> str:
    config = platform.config
    return f"arn:aws:logs:{config.region}:{config.account_id}:log-group:{group}:log-stream:{stream}"


# -- queries -------------------------------------------------------------------------------------


def _text_contains(db: Database, pattern: str) -> ColumnElement[bool]:
    """Case-sensitive substring match (SQLite's LIKE ignores case)."""
    position = func.instr(log_events.c.message, pattern) if db.is_sqlite else func.strpos(log_events.c.message, pattern)
    return position > 0


def _read_events(db: Database, conditions: list[ColumnElement[bool]], limit: int, *,
                 newest_first: bool = False) -> list[dict[str, Any]]:
    order = desc if newest_first else asc
    query = select(log_events).where(and_(*conditions)).order_by(order(log_events.c.id)).limit(limit)
    with db.read() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    return rows[::-1] if newest_first else rows


def _time_window(request: dict[str, Any]) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if request.get("startTime") is not None:
        conditions.append(log_events.c.timestamp >= request["startTime"] / 1000.0)
    if request.get("endTime") is not None:
        conditions.append(log_events.c.timestamp < request["endTime"] / 1000.0)
    return conditions


def _millis(seconds: float) -> int:
    """Epoch milliseconds, truncated as the embedded log service does (so both report the same times)."""
    return int(seconds * 1000)


# -- DescribeLogStreams --------------------------------------------------------------------------


def describe_log_streams(platform: Platform, request: dict[str, Any]) -> dict[str, Any]:
    check = Checker()
    check.unknown_members(request, "", ("logGroupName", "logGroupIdentifier", "logStreamNamePrefix", "orderBy",
                                        "descending", "nextToken", "limit"))
    group = _log_group(platform, request, check)
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
    _existing_group(platform, group)
    descending = bool(request.get("descending"))
    filters = {"group": group, "prefix": prefix or "", "orderBy": "LastEventTime" if by_time else "LogStreamName",
               "descending": descending}
    params = {"MaxResults": request.get("limit") or MAX_STREAMS, "NextToken": request.get("nextToken")}

    def fetch(offset: int, count: int) -> list[dict[str, Any]]:
        c = log_events.c
        last = func.max(c.timestamp)
        query = (select(c.log_stream, func.min(c.timestamp).label("first"), last.label("last"),
                        func.sum(func.length(c.message)).label("size"))
                 .where(and_(c.log_group == group, c.log_stream.startswith(prefix or "", autoescape=True)))
                 .group_by(c.log_stream))
        order = desc if descending else asc
        query = query.order_by(order(last), order(c.log_stream)) if by_time else query.order_by(order(c.log_stream))
        with platform.db.read() as conn:
            return [dict(r) for r in conn.execute(query.offset(offset).limit(count)).mappings()]

    rows, token = _paged(params, filters, fetch)
    response: dict[str, Any] = {"logStreams": [
        {"logStreamName": r["log_stream"], "creationTime": _millis(r["first"]), "firstEventTimestamp": _millis(r["first"]),
         "lastEventTimestamp": _millis(r["last"]), "lastIngestionTime": _millis(r["last"]),
         "arn": _stream_arn(platform, group, r["log_stream"]), "storedBytes": int(r["size"] or 0)}
        for r in rows
    ]}
    if token:
        response["nextToken"] = token
    return response


# -- GetLogEvents --------------------------------------------------------------------------------


def get_log_events(platform: Platform, request: dict[str, Any]) -> dict[str, Any]:
    """One stream's events: forward from ``f/<id>``, back from ``b/<id>``, or from either end."""
    check = Checker()
    check.unknown_members(request, "", ("logGroupName", "logGroupIdentifier", "logStreamName", "startTime", "endTime",
                                        "nextToken", "limit", "startFromHead", "unmask"))
    group = _log_group(platform, request, check)
    check.string(request.get("logStreamName"), "logStreamName", required=True, min_len=1, max_len=512,
                 pattern=STREAM_NAME_PATTERN)
    check.integer(request.get("limit"), "limit", minimum=1, maximum=MAX_EVENTS)
    check.boolean(request.get("startFromHead"), "startFromHead")
    check.string(request.get("nextToken"), "nextToken", min_len=1)
    check.raise_if_any()
    stream = str(request["logStreamName"])
    _existing_group(platform, group)
    c = log_events.c
    in_stream = [c.log_group == group, c.log_stream == stream]
    with platform.db.read() as conn:
        if conn.execute(select(c.id).where(and_(*in_stream)).limit(1)).first() is None:
            raise ResourceNotFoundException("The specified log stream does not exist.")
    direction, mark = _token(request.get("nextToken"), bool(request.get("startFromHead")))
    limit = request.get("limit") or MAX_EVENTS
    conditions = in_stream + _time_window(request)
    if direction == "f":
        events = _read_events(platform.db, [*conditions, c.id > mark], limit)
        forward, backward = (events[-1]["id"], events[0]["id"]) if events else (mark, mark + 1)
    else:
        if mark is not None:
            conditions.append(c.id < mark)
        events = _read_events(platform.db, conditions, limit, newest_first=True)
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


def _token(token: str | None, start_from_head: bool) -> tuple[str, Any]:
    """(``f``, after id) or (``b``, before id, None for the stream's end)."""
    if token is None:
        return ("f", 0) if start_from_head else ("b", None)
    match = TOKEN_PATTERN.fullmatch(token)
    if match is None:
        raise InvalidParameterException("The specified nextToken is invalid.")
    return match.group(1), int(match.group(2))


# -- FilterLogEvents -----------------------------------------------------------------------------


def filter_log_events(platform: Platform, request: dict[str, Any]) -> dict[str, Any]:
    """Events of a group's streams (named, by prefix, or all) in write order, filtered by time and text."""
    check = Checker()
    check.unknown_members(request, "", ("logGroupName", "logGroupIdentifier", "logStreamNames", "logStreamNamePrefix",
                                        "startTime", "endTime", "filterPattern", "nextToken", "limit", "interleaved",
                                        "unmask"))
    group = _log_group(platform, request, check)
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
    _existing_group(platform, group)
    token = request.get("nextToken")
    if token is not None and not token.isdigit():
        raise InvalidParameterException("The specified nextToken is invalid.")
    c = log_events.c
    conditions = [c.log_group == group, c.id > int(token or 0), *_time_window(request)]
    if names:
        conditions.append(c.log_stream.in_(names))
    elif prefix:
        conditions.append(c.log_stream.startswith(prefix, autoescape=True))
    if pattern and pattern.strip():
        conditions.append(_text_contains(platform.db, _plain(pattern)))
    limit = request.get("limit") or MAX_EVENTS
    events = _read_events(platform.db, conditions, limit + 1)
    response: dict[str, Any] = {"events": [
        {"logStreamName": e["log_stream"], "timestamp": _millis(e["timestamp"]), "message": e["message"],
         "ingestionTime": _millis(e["timestamp"]), "eventId": str(e["id"])}
        for e in events[:limit]
    ]}
    if len(events) > limit:
        response["nextToken"] = str(events[limit - 1]["id"])
    return response


def _plain(pattern: str) -> str:
    """A pattern in double quotes (CloudWatch's exact-phrase form) means its inside."""
    stripped = pattern.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] == '"':
        return stripped[1:-1]
    return stripped


OPERATIONS: dict[str, Operation] = {
    "DescribeLogStreams": describe_log_streams,
    "GetLogEvents": get_log_events,
    "FilterLogEvents": filter_log_events,
}

SERVICE = JsonService(prefix=TARGET_PREFIX, model_name="logs", operations=OPERATIONS)
