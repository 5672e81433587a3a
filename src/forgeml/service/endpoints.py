"""Endpoints: CreateEndpoint, DescribeEndpoint, ListEndpoints, DeleteEndpoint, UpdateEndpoint and
UpdateEndpointWeightsAndCapacities.

The control plane only records what is asked; each endpoint's host process
(``forgeml.hosting.host``, started through the executor like a tuning job's controller) starts the
variants' workers, serves the router, carries out updates and deletes, and writes the endpoint's
state back (status, variant summaries, router URL). An endpoint whose host is gone while it should
be serving is restarted (``SystemUpdating``), as SageMaker replaces a lost instance; one lost while
``Creating`` ends ``Failed``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from forgeml.errors import ValidationException
from forgeml.executors.base import ENDPOINT
from forgeml.service.names import NAME_PATTERN, to_datetime
from forgeml.service.pagination import check_list_request, list_filters, page
from forgeml.service.validation import Checker
from forgeml.store import endpoints as repo
from forgeml.store.listing import list_rows
from forgeml.store.tables import endpoints as endpoints_table

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

STATUSES = ("OutOfService", "Creating", "Updating", "SystemUpdating", "RollingBack", "InService", "Deleting",
            "Failed", "UpdateRollbackFailed")
ROUTING_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
CAPACITY_TYPES = ("INSTANCE_COUNT", "CAPACITY_PERCENT")
RETAINABLE = ("DesiredInstanceCount", "DesiredWeight", "DataCaptureConfig")
LOST_HOST = ("InternalServerError: the endpoint's host process ended unexpectedly; see "
             "FORGEML_HOME/endpoint/{name}/runner.log")


def check_deployment_config(check: Checker, config: Any, path: str = "DeploymentConfig") -> dict[str, Any]:
    """DeploymentConfig's members (blue/green traffic routing, rolling update, auto-rollback alarms)."""
    config = dict(check.structure(config, path))
    blue_green = config.get("BlueGreenUpdatePolicy")
    if blue_green is not None:
        policy = check.structure(blue_green, f"{path}.BlueGreenUpdatePolicy")
        where = f"{path}.BlueGreenUpdatePolicy.TrafficRoutingConfiguration"
        routing = check.structure(policy.get("TrafficRoutingConfiguration"), where, required=True)
        if routing:
            kind = routing.get("Type")
            check.enum(kind, f"{where}.Type", ROUTING_TYPES, required=True)
            check.integer(routing.get("WaitIntervalInSeconds"), f"{where}.WaitIntervalInSeconds", required=True,
                          minimum=0, maximum=3600)
            for member, needed_by, low, high in (("CanarySize", "CANARY", 1, 50), ("LinearStepSize", "LINEAR", 10, 50)):
                size = routing.get(member)
                if size is None:
                    if kind == needed_by:
                        check.fail(None, f"{where}.{member}", f"not be null when Type is {needed_by}")
                    continue
                size = check.structure(size, f"{where}.{member}")
                check.enum(size.get("Type"), f"{where}.{member}.Type", CAPACITY_TYPES, required=True)
                check.integer(size.get("Value"), f"{where}.{member}.Value", required=True, minimum=1)
                if size.get("Type") == "CAPACITY_PERCENT" and isinstance(size.get("Value"), int) \
                        and not low <= size["Value"] <= high:
                    check.fail(size["Value"], f"{where}.{member}.Value",
                               f"be between {low} and {high} percent of the variant's capacity")
        check.integer(policy.get("TerminationWaitInSeconds"), f"{path}.BlueGreenUpdatePolicy.TerminationWaitInSeconds",
                      minimum=0, maximum=3600)
        check.integer(policy.get("MaximumExecutionTimeoutInSeconds"),
                      f"{path}.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds", minimum=600, maximum=28800)
    if config.get("RollingUpdatePolicy") is not None:
        check.fail("RollingUpdatePolicy", f"{path}.RollingUpdatePolicy",
                   "be omitted: forgeml deploys updates blue/green (use BlueGreenUpdatePolicy)")
    rollback = config.get("AutoRollbackConfiguration")
    if rollback is not None:
        alarms = check.items(check.structure(rollback, f"{path}.AutoRollbackConfiguration").get("Alarms"),
                             f"{path}.AutoRollbackConfiguration.Alarms", min_items=1, max_items=10)
        for index, alarm in enumerate(alarms):
            check.string(check.structure(alarm, f"{path}.AutoRollbackConfiguration.Alarms.{index + 1}").get("AlarmName"),
                         f"{path}.AutoRollbackConfiguration.Alarms.{index + 1}.AlarmName", required=True,
                         min_len=1, max_len=255)
    return config


class EndpointService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.db = platform.db

    # -- create / read ------------------------------------------------------------------------
    def create_endpoint(self, request: dict[str, Any]) -> dict[str, str]:
        check = Checker()
        check.unknown_members(request, "", ("EndpointName", "EndpointConfigName", "DeploymentConfig", "Tags"))
        check.string(request.get("EndpointName"), "EndpointName", required=True, max_len=63, pattern=NAME_PATTERN)
        check.string(request.get("EndpointConfigName"), "EndpointConfigName", required=True, max_len=63)
        if request.get("DeploymentConfig") is not None:
            check_deployment_config(check, request["DeploymentConfig"])
        check.raise_if_any()
        name = request["EndpointName"]
        config = self._config_with_models(request["EndpointConfigName"])
        arn = self.platform.arn("endpoint", name)
        now = round(time.time(), 6)
        row = {"name": name, "arn": arn, "status": "Creating", "config_name": config["EndpointConfigName"],
               "creation_time": now, "last_modified_time": now,
               "request": {k: request[k] for k in ("DeploymentConfig", "Tags") if request.get(k) is not None}}
        executor = self.platform.executor
        try:
            with executor.reserve(name, ENDPOINT):
                repo.insert_endpoint(self.db, row)
                executor.launch(name, ENDPOINT)
        except (repo.DuplicateEndpoint, BlockingIOError):
            raise ValidationException(f"Cannot create already existing endpoint \"{arn}\".") from None
        return {"EndpointArn": arn}

    def _config_with_models(self, config_name: str) -> dict[str, Any]:
        """The endpoint config, after checking that every model it names still exists."""
        config = self.platform.endpoint_configs.describe_endpoint_config(config_name)
        for variant in config["ProductionVariants"] + config.get("ShadowProductionVariants", []):
            if not self.platform.models.exists(variant["ModelName"]):
                raise ValidationException(f"Could not find model \"{self.platform.arn('model', variant['ModelName'])}\".")
        return config

    def _row(self, name: Any) -> dict[str, Any]:
        row = repo.get_endpoint(self.db, name) if isinstance(name, str) else None
        if row is None:
            raise ValidationException(f"Could not find endpoint \"{self.platform.arn('endpoint', str(name))}\".")
        return self._reconcile(row)

    def _reconcile(self, row: dict[str, Any]) -> dict[str, Any]:
        """A hosted endpoint whose host process is gone: restart it, or settle what it was doing."""
        name = row["name"]
        if row["status"] not in repo.HOSTED or self.platform.executor.is_alive(name, ENDPOINT):
            return row
        if row["status"] == "Deleting":
            repo.delete_endpoint(self.db, name)
            raise ValidationException(f"Could not find endpoint \"{row['arn']}\".")
        if row["status"] == "Creating":
            repo.update_endpoint(self.db, name, only_if=["Creating"], status="Failed",
                                 failure_reason=LOST_HOST.format(name=name), router_url=None)
        else:
            self._relaunch(name)
        return repo.get_endpoint(self.db, name) or row

    def _relaunch(self, name: str) -> None:
        executor = self.platform.executor
        try:
            with executor.reserve(name, ENDPOINT):
                if repo.update_endpoint(self.db, name, only_if=[s for s in repo.HOSTED if s not in ("Creating", "Deleting")],
                                        status="SystemUpdating", router_url=None):
                    executor.launch(name, ENDPOINT)
        except BlockingIOError:
            return  # another process is restarting it right now

    def exists(self, name: str) -> bool:
        return repo.get_endpoint(self.db, name) is not None

    def variant_names(self, name: str) -> list[str] | None:
        """The endpoint's production variant names (None when there is no such endpoint)."""
        row = repo.get_endpoint(self.db, name)
        if row is None:
            return None
        if row["variants"]:
            return [v["VariantName"] for v in row["variants"]]
        config = self.platform.endpoint_configs.describe_endpoint_config(row["config_name"])
        return [v["VariantName"] for v in config["ProductionVariants"]]

    def router_url(self, name: str) -> str | None:
        """Where the endpoint's router listens, once it serves (reconciling a lost host first)."""
        return self._row(name)["router_url"]

    def log_events(self, name: str, after_id: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
        """What the endpoint's workers printed after event ``after_id`` (``id`` is the next cursor)."""
        return [{"id": e["id"], "logStreamName": e["log_stream"], "timestamp": int(e["timestamp"] * 1000),
                 "message": e["message"]} for e in repo.read_logs(self.db, name, after_id, limit)]

    def describe_endpoint(self, name: str) -> dict[str, Any]:
        row = self._row(name)
        described: dict[str, Any] = {
            "EndpointName": row["name"],
            "EndpointArn": row["arn"],
            "EndpointConfigName": row["config_name"],
        }
        if row["variants"]:
            described["ProductionVariants"] = _with_datetimes(row["variants"])
        if row["shadow_variants"]:
            described["ShadowProductionVariants"] = _with_datetimes(row["shadow_variants"])
        if row["capture_summary"]:
            described["DataCaptureConfig"] = row["capture_summary"]
        described["EndpointStatus"] = row["status"]
        if row["failure_reason"]:
            described["FailureReason"] = row["failure_reason"]
        described["CreationTime"] = to_datetime(row["creation_time"])
        described["LastModifiedTime"] = to_datetime(row["last_modified_time"])
        if row["last_deployment_config"]:
            described["LastDeploymentConfig"] = row["last_deployment_config"]
        pending = row["pending_update"]
        if pending and pending.get("EndpointConfigName"):
            described["PendingDeploymentSummary"] = {"EndpointConfigName": pending["EndpointConfigName"],
                                                     "StartTime": to_datetime(pending["RequestedAt"])}
        return described

    def list_endpoints(self, **params: Any) -> dict[str, Any]:
        check_list_request(params, STATUSES)
        filters = list_filters(params)
        rows, token = page(params, filters, lambda offset, count: list_rows(
            self.db, endpoints_table, offset=offset, limit=count, **filters))
        response: dict[str, Any] = {"Endpoints": [
            {"EndpointName": r["name"], "EndpointArn": r["arn"], "CreationTime": to_datetime(r["creation_time"]),
             "LastModifiedTime": to_datetime(r["last_modified_time"]), "EndpointStatus": r["status"]}
            for r in rows
        ]}
        if token:
            response["NextToken"] = token
        return response

    # -- delete / update ----------------------------------------------------------------------
    def delete_endpoint(self, name: str) -> None:
        row = self._row(name)
        if row["status"] == "Deleting":
            return
        if row["status"] in repo.HOSTED and self.platform.executor.is_alive(name, ENDPOINT):
            repo.update_endpoint(self.db, name, status="Deleting", delete_requested=True)
            self.platform.executor.stop(name, ENDPOINT)
        else:
            repo.delete_endpoint(self.db, name)

    def _updatable(self, name: Any) -> dict[str, Any]:
        row = self._row(name)
        if row["status"] == "Failed":
            raise ValidationException(f"Cannot update endpoint \"{row['arn']}\" in status Failed: a failed endpoint "
                                      "can only be deleted.")
        if row["status"] != "InService":
            raise ValidationException(f"Cannot update in-progress endpoint \"{row['arn']}\" (status "
                                      f"{row['status']}); wait until it is InService.")
        return row

    def update_endpoint(self, request: dict[str, Any]) -> dict[str, str]:
        check = Checker()
        check.unknown_members(request, "", ("EndpointName", "EndpointConfigName", "RetainAllVariantProperties",
                                            "ExcludeRetainedVariantProperties", "DeploymentConfig",
                                            "RetainDeploymentConfig"))
        check.string(request.get("EndpointName"), "EndpointName", required=True, max_len=63, pattern=NAME_PATTERN)
        check.string(request.get("EndpointConfigName"), "EndpointConfigName", required=True, max_len=63)
        check.boolean(request.get("RetainAllVariantProperties"), "RetainAllVariantProperties")
        check.boolean(request.get("RetainDeploymentConfig"), "RetainDeploymentConfig")
        excluded = check.items(request.get("ExcludeRetainedVariantProperties"), "ExcludeRetainedVariantProperties",
                               max_items=3)
        for index, item in enumerate(excluded):
            check.enum(check.structure(item, f"ExcludeRetainedVariantProperties.{index + 1}").get("VariantPropertyType"),
                       f"ExcludeRetainedVariantProperties.{index + 1}.VariantPropertyType", RETAINABLE, required=True)
        if request.get("DeploymentConfig") is not None:
            check_deployment_config(check, request["DeploymentConfig"])
        check.raise_if_any()
        row = self._updatable(request["EndpointName"])
        self._config_with_models(request["EndpointConfigName"])
        deployment = request.get("DeploymentConfig")
        if deployment is None and request.get("RetainDeploymentConfig"):
            deployment = row["last_deployment_config"]
        pending = {"Type": "Config", "EndpointConfigName": request["EndpointConfigName"], "RequestedAt": time.time(),
                   "RetainAllVariantProperties": bool(request.get("RetainAllVariantProperties")),
                   "ExcludeRetainedVariantProperties": [i["VariantPropertyType"] for i in excluded],
                   "DeploymentConfig": deployment}
        self._request_update(row, pending)
        return {"EndpointArn": row["arn"]}

    def update_endpoint_weights_and_capacities(self, request: dict[str, Any]) -> dict[str, str]:
        check = Checker()
        check.unknown_members(request, "", ("EndpointName", "DesiredWeightsAndCapacities"))
        check.string(request.get("EndpointName"), "EndpointName", required=True, max_len=63, pattern=NAME_PATTERN)
        desired = check.items(request.get("DesiredWeightsAndCapacities"), "DesiredWeightsAndCapacities", required=True,
                              min_items=1)
        changes: list[dict[str, Any]] = []
        for index, item in enumerate(desired):
            path = f"DesiredWeightsAndCapacities.{index + 1}"
            item = check.structure(item, path)
            check.string(item.get("VariantName"), f"{path}.VariantName", required=True, max_len=63, pattern=NAME_PATTERN)
            weight = item.get("DesiredWeight")
            if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0):
                check.fail(weight, f"{path}.DesiredWeight", "be a number greater than or equal to 0")
            check.integer(item.get("DesiredInstanceCount"), f"{path}.DesiredInstanceCount", minimum=1)
            changes.append(dict(item))
        check.raise_if_any()
        row = self._updatable(request["EndpointName"])
        current = {v["VariantName"]: v for v in row["variants"] or []}
        for change in changes:
            if change["VariantName"] not in current:
                raise ValidationException(f"The variant name(s) [{change['VariantName']}] is/are not present in "
                                          f"endpoint \"{row['arn']}\".")
        weights = {name: v.get("DesiredWeight", v.get("CurrentWeight", 1.0)) for name, v in current.items()}
        weights.update({c["VariantName"]: float(c["DesiredWeight"]) for c in changes if c.get("DesiredWeight") is not None})
        if sum(weights.values()) <= 0:
            raise ValidationException("1 validation error detected: Value at 'desiredWeightsAndCapacities.desiredWeight' "
                                      "failed to satisfy constraint: the variants' weights must not all be zero")
        self._request_update(row, {"Type": "WeightsAndCapacities", "RequestedAt": time.time(), "Changes": changes})
        return {"EndpointArn": row["arn"]}

    def _request_update(self, row: dict[str, Any], pending: dict[str, Any]) -> None:
        if not repo.update_endpoint(self.db, row["name"], only_if=["InService"], status="Updating",
                                    pending_update=pending, failure_reason=None):
            raise ValidationException(f"Cannot update in-progress endpoint \"{row['arn']}\".")
        self.platform.executor.stop(row["name"], ENDPOINT)  # wakes the host


def _with_datetimes(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Variant summaries are stored with epoch times; Describe returns datetimes, as boto3 does."""
    result = []
    for variant in variants:
        variant = dict(variant)
        if variant.get("DeployedImages"):
            variant["DeployedImages"] = [{**image, "ResolutionTime": to_datetime(image["ResolutionTime"])}
                                         for image in variant["DeployedImages"]]
        if variant.get("VariantStatus"):
            variant["VariantStatus"] = [{**status, "StartTime": to_datetime(status["StartTime"])}
                                        for status in variant["VariantStatus"]]
        result.append(variant)
    return result
