"""ListTags: the Tags a SageMaker resource was created with, found by its ARN.

The sagemaker SDK reads them in ``Estimator.attach`` (which ``HyperparameterTuner.deploy`` goes
through). Tags are kept in each resource's stored request, so they are exactly what the Create call
carried; an ARN of another region or account, of a resource kind forgeml does not tag, or of no
stored resource is ResourceNotFound, as SageMaker answers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select

from forgeml.errors import ResourceNotFound
from forgeml.service.pagination import page
from forgeml.service.validation import Checker
from forgeml.store import tables

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

ARN_PATTERN = r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:.+"
RESOURCE_ARN = re.compile(r"arn:[^:]+:sagemaker:([^:]*):([^:]*):([a-z\-]+)/(.+)")
MAX_TAGS_PER_PAGE = 50
#: the resource part of an ARN (``training-job`` in ``...:training-job/name``) -> the table holding it
TAGGED_TABLES: dict[str, Table] = {
    "training-job": tables.training_jobs,
    "hyper-parameter-tuning-job": tables.tuning_jobs,
    "model": tables.models,
    "endpoint-config": tables.endpoint_configs,
    "endpoint": tables.endpoints,
    "transform-job": tables.transform_jobs,
}


class TagService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def list_tags(self, request: dict[str, Any]) -> dict[str, Any]:
        """The Tags of the resource named by ``ResourceArn``, 50 (or MaxResults) at a time."""
        check = Checker()
        check.unknown_members(request, "", ("ResourceArn", "NextToken", "MaxResults"))
        check.string(request.get("ResourceArn"), "ResourceArn", required=True, max_len=256, pattern=ARN_PATTERN)
        check.integer(request.get("MaxResults"), "MaxResults", minimum=MAX_TAGS_PER_PAGE)
        check.string(request.get("NextToken"), "NextToken", max_len=8192)
        check.raise_if_any()
        arn = str(request["ResourceArn"])
        tags = self._stored_tags(arn)
        params = {"MaxResults": request.get("MaxResults") or MAX_TAGS_PER_PAGE, "NextToken": request.get("NextToken")}
        rows, token = page(params, {"ResourceArn": arn}, lambda offset, count: tags[offset: offset + count])
        response: dict[str, Any] = {"Tags": rows}
        if token:
            response["NextToken"] = token
        return response

    def _stored_tags(self, arn: str) -> list[dict[str, str]]:
        config = self.platform.config
        match = RESOURCE_ARN.fullmatch(arn)
        table = TAGGED_TABLES.get(match.group(3)) if match else None
        if match is None or table is None or match.group(1) != config.region or match.group(2) != config.account_id:
            raise ResourceNotFound(f"Requested resource not found: {arn}")
        stored = self._stored_request(table, arn)
        if stored is None:
            raise ResourceNotFound(f"Requested resource not found: {arn}")
        return [{"Key": str(tag["Key"]), "Value": str(tag.get("Value", ""))} for tag in stored.get("Tags") or []]

    def _stored_request(self, table: Table, arn: str) -> dict[str, Any] | None:
        """The Create request stored with the resource of that ARN (ARNs hold lower-cased names, so not by name)."""
        with self.platform.db.read() as conn:
            stored: dict[str, Any] | None = conn.execute(
                select(table.c.request).where(table.c.arn == arn)).scalar_one_or_none()
        return stored
