"""What models and endpoint configs share: records created, described, listed and deleted whole.

Subclasses name their table, their ARN resource and SageMaker's messages; validation stays with them.
As SageMaker does for these two resources, a missing record is a ValidationException
("Could not find model ...").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table

from forgeml.errors import ValidationException
from forgeml.service.names import to_datetime
from forgeml.service.pagination import epoch_seconds, page
from forgeml.service.validation import Checker
from forgeml.store import records as repo
from forgeml.store.listing import list_rows

if TYPE_CHECKING:
    from forgeml.service.platform import Platform


class RecordService:
    table: Table
    arn_resource: str  # "model", "endpoint-config"
    noun: str  # "model", "endpoint configuration"
    key: str  # "Model", "EndpointConfig": names the response members

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.db = platform.db

    def _insert(self, name: str, normalized: dict[str, Any]) -> str:
        arn = self.platform.arn(self.arn_resource, name)
        try:
            repo.insert_record(self.db, self.table, {"name": name, "arn": arn, "creation_time": round(time.time(), 6),
                                                     "request": normalized})
        except repo.DuplicateRecord:  # SageMaker says this with a ValidationException, and the SDK relies on it
            raise ValidationException(f"Cannot create already existing {self.noun} \"{arn}\".") from None
        return arn

    def _row(self, name: str) -> dict[str, Any]:
        row = repo.get_record(self.db, self.table, name) if isinstance(name, str) else None
        if row is None:
            raise ValidationException(f"Could not find {self.noun} \"{self.platform.arn(self.arn_resource, str(name))}\".")
        return row

    def exists(self, name: str) -> bool:
        return repo.get_record(self.db, self.table, name) is not None

    def _describe(self, name: str) -> dict[str, Any]:
        row = self._row(name)
        return {**row["request"], f"{self.key}Arn": row["arn"], "CreationTime": to_datetime(row["creation_time"])}

    def _delete(self, name: str) -> None:
        self._row(name)
        repo.delete_record(self.db, self.table, name)

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        check = Checker()
        check.unknown_members(params, "", ("MaxResults", "SortBy", "SortOrder", "NameContains", "NextToken",
                                           "CreationTimeAfter", "CreationTimeBefore"))
        check.integer(params.get("MaxResults"), "MaxResults", minimum=1, maximum=100)
        check.enum(params.get("SortBy"), "SortBy", ("Name", "CreationTime"))
        check.enum(params.get("SortOrder"), "SortOrder", ("Ascending", "Descending"))
        check.raise_if_any()
        filters: dict[str, Any] = {
            "name_contains": params.get("NameContains"),
            "created_after": epoch_seconds(params.get("CreationTimeAfter")),
            "created_before": epoch_seconds(params.get("CreationTimeBefore")),
            "sort_by": params.get("SortBy") or "CreationTime",
            "ascending": (params.get("SortOrder") or "Descending") == "Ascending",
        }
        rows, token = page(params, filters,
                           lambda offset, count: list_rows(self.db, self.table, offset=offset, limit=count, **filters))
        response: dict[str, Any] = {f"{self.key}s": [
            {f"{self.key}Name": r["name"], f"{self.key}Arn": r["arn"], "CreationTime": to_datetime(r["creation_time"])}
            for r in rows
        ]}
        if token:
            response["NextToken"] = token
        return response
