"""NextToken pagination and timestamp filters shared by the List operations."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from forgeml.errors import ValidationException
from forgeml.service.validation import Checker

#: the members every List<Resource> with statuses takes (ListTrainingJobs, ListEndpoints, ...)
LIST_MEMBERS = ("MaxResults", "SortBy", "SortOrder", "StatusEquals", "NameContains", "NextToken",
                "CreationTimeAfter", "CreationTimeBefore", "LastModifiedTimeAfter", "LastModifiedTimeBefore")


def epoch_seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    raise ValidationException(f"1 validation error detected: Value '{value}' must be a timestamp")


def _filters_key(filters: dict[str, Any]) -> str:
    return json.dumps(filters, sort_keys=True, default=str)


def encode_token(offset: int, filters: dict[str, Any]) -> str:
    raw = json.dumps({"o": offset, "f": _filters_key(filters)})
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_token(token: str | None, filters: dict[str, Any]) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
        offset = int(data["o"])
        same = data["f"] == _filters_key(filters)
    except (ValueError, KeyError, TypeError):
        raise ValidationException("1 validation error detected: Value at 'nextToken' failed to satisfy constraint: "
                                  "Member must be a token returned by a previous call") from None
    if not same:
        raise ValidationException("The NextToken was issued for a request with different filters")
    return offset


def page(params: dict[str, Any], filters: dict[str, Any], fetch: Callable[[int, int], list[Any]]) -> tuple[list[Any], str | None]:
    """One page of a List call: ``fetch(offset, count)`` rows, and the NextToken when more remain.

    ``filters`` is bound into the token, so a token cannot be replayed with other filters.
    """
    limit = params.get("MaxResults") or 10
    offset = decode_token(params.get("NextToken"), filters)
    rows = fetch(offset, limit + 1)
    token = encode_token(offset + limit, filters) if len(rows) > limit else None
    return rows[:limit], token


def check_list_request(params: dict[str, Any], statuses: tuple[str, ...], *, extra_members: tuple[str, ...] = ()) -> None:
    """Validate a List call's common members (all errors at once, in AWS's words)."""
    check = Checker()
    check.unknown_members(params, "", LIST_MEMBERS + extra_members)
    check.integer(params.get("MaxResults"), "MaxResults", minimum=1, maximum=100)
    check.enum(params.get("SortBy"), "SortBy", ("Name", "CreationTime", "Status"))
    check.enum(params.get("SortOrder"), "SortOrder", ("Ascending", "Descending"))
    check.enum(params.get("StatusEquals"), "StatusEquals", statuses)
    check.string(params.get("NameContains"), "NameContains", max_len=63, pattern=r"[a-zA-Z0-9\-]+")
    check.raise_if_any()


def list_filters(params: dict[str, Any]) -> dict[str, Any]:
    """The store query's filters for a validated List call (``store.listing.list_rows`` keywords)."""
    return {
        "name_contains": params.get("NameContains"),
        "status": params.get("StatusEquals"),
        "created_after": epoch_seconds(params.get("CreationTimeAfter")),
        "created_before": epoch_seconds(params.get("CreationTimeBefore")),
        "modified_after": epoch_seconds(params.get("LastModifiedTimeAfter")),
        "modified_before": epoch_seconds(params.get("LastModifiedTimeBefore")),
        "sort_by": params.get("SortBy") or "CreationTime",
        "ascending": (params.get("SortOrder") or "Descending") == "Ascending",
    }
