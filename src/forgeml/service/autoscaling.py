"""Application Auto Scaling for endpoint variants: scalable targets, target-tracking policies, activities.

What a SageMaker user calls through ``boto3.client("application-autoscaling")`` with
``ServiceNamespace="sagemaker"``, ``ScalableDimension="sagemaker:variant:DesiredInstanceCount"`` and
``ResourceId="endpoint/<EndpointName>/variant/<VariantName>"``. Endpoint hosts read the policies back
as ``TargetTracking`` objects (``tracking_for_endpoint``) and report what they did
(``record_activity``). Only TargetTrackingScaling policies are taken: StepScaling needs CloudWatch
alarm actions, which forgeml does not run.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from forgeml.errors import ForgeMLError, ValidationException
from forgeml.hosting.autoscaling import PREDEFINED_INVOCATIONS_PER_INSTANCE, TargetTracking
from forgeml.hosting.metrics import METRIC_NAMES, STATISTICS
from forgeml.service.names import to_datetime
from forgeml.service.pagination import page
from forgeml.service.validation import Checker
from forgeml.store import autoscaling as repo

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
VARIANT_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
RESOURCE_ID_PATTERN = re.compile(rf"endpoint/(?P<endpoint>{VARIANT_NAME})/variant/(?P<variant>{VARIANT_NAME})")
POLICY_NAME_PATTERN = r"[^\x00-\x1f\x7f]+"
ACTIVITY_STATUSES = ("Pending", "InProgress", "Successful", "Overridden", "Unfulfilled", "Failed")
POLICY_TYPES = ("StepScaling", "TargetTrackingScaling", "PredictiveScaling")
SUSPENSIONS = ("DynamicScalingInSuspended", "DynamicScalingOutSuspended", "ScheduledScalingSuspended")
MAX_COOLDOWN_SECONDS = 86400
KEY_MEMBERS = ("ServiceNamespace", "ResourceId", "ScalableDimension")


class ObjectNotFoundException(ForgeMLError):
    """A scalable target or scaling policy that is not registered (Application Auto Scaling's error)."""

    code = "ObjectNotFoundException"
    http_status = 400


def _number(check: Checker, value: Any, path: str, *, required: bool = False) -> bool:
    if value is None:
        return check.required(value, path) if required else True
    if isinstance(value, bool) or not isinstance(value, int | float):
        check.fail(value, path, "be a number")
        return False
    return True


def _check_key(check: Checker, request: dict[str, Any], *, resource_required: bool = True,
               dimension_required: bool = True) -> None:
    """ServiceNamespace, ResourceId and ScalableDimension, as every operation names a target."""
    check.enum(request.get("ServiceNamespace"), "ServiceNamespace", (NAMESPACE,), required=True)
    _check_resource_id(check, request.get("ResourceId"), "ResourceId", required=resource_required)
    check.enum(request.get("ScalableDimension"), "ScalableDimension", (DIMENSION,), required=dimension_required)


def _check_resource_id(check: Checker, value: Any, path: str, *, required: bool) -> None:
    if check.string(value, path, required=required, min_len=1, max_len=1600) and value is not None \
            and not RESOURCE_ID_PATTERN.fullmatch(value):
        check.fail(value, path, "be of the form endpoint/<EndpointName>/variant/<VariantName>")


def _paging(params: dict[str, Any]) -> dict[str, Any]:
    """MaxResults (Application Auto Scaling's default: 50) and NextToken for ``page``."""
    return {"MaxResults": params.get("MaxResults") or 50, "NextToken": params.get("NextToken")}


def _not_registered(request: dict[str, Any], verb: str = "found") -> ObjectNotFoundException:
    return ObjectNotFoundException(f"No scalable target {verb} for service namespace: {request['ServiceNamespace']}, "
                                   f"resource ID: {request['ResourceId']}, scalable dimension: "
                                   f"{request['ScalableDimension']}")


def _check_customized_metric(check: Checker, spec: Any, path: str) -> None:
    metric = check.structure(spec, path)
    check.enum(metric.get("Namespace"), f"{path}.Namespace", ("AWS/SageMaker",), required=True)
    check.enum(metric.get("MetricName"), f"{path}.MetricName", METRIC_NAMES, required=True)
    check.enum(metric.get("Statistic"), f"{path}.Statistic", STATISTICS, required=True)
    check.string(metric.get("Unit"), f"{path}.Unit", min_len=1, max_len=1023)
    for index, item in enumerate(check.items(metric.get("Dimensions"), f"{path}.Dimensions")):
        dimension = check.structure(item, f"{path}.Dimensions.{index + 1}", required=True)
        check.enum(dimension.get("Name"), f"{path}.Dimensions.{index + 1}.Name", ("EndpointName", "VariantName"),
                   required=True)
        check.string(dimension.get("Value"), f"{path}.Dimensions.{index + 1}.Value", required=True, min_len=1)
    if metric.get("Metrics") is not None:
        check.fail("[...]", f"{path}.Metrics", "be absent: forgeml tracks one metric (MetricName), not metric math")


def _check_target_tracking(check: Checker, value: Any) -> dict[str, Any]:
    path = "TargetTrackingScalingPolicyConfiguration"
    config = check.structure(value, path, required=True)
    if not config:
        return {}
    target = config.get("TargetValue")
    if _number(check, target, f"{path}.TargetValue", required=True) and target is not None and target <= 0:
        check.fail(target, f"{path}.TargetValue", "have value greater than 0")
    predefined, customized = config.get("PredefinedMetricSpecification"), config.get("CustomizedMetricSpecification")
    if (predefined is None) == (customized is None):
        check.fail(None, f"{path}.PredefinedMetricSpecification",
                   "be given, or CustomizedMetricSpecification instead, but not both")
    if predefined is not None:
        spec = check.structure(predefined, f"{path}.PredefinedMetricSpecification")
        check.enum(spec.get("PredefinedMetricType"), f"{path}.PredefinedMetricSpecification.PredefinedMetricType",
                   (PREDEFINED_INVOCATIONS_PER_INSTANCE,), required=True)
        check.string(spec.get("ResourceLabel"), f"{path}.PredefinedMetricSpecification.ResourceLabel", min_len=1,
                     max_len=1023)
    if customized is not None:
        _check_customized_metric(check, customized, f"{path}.CustomizedMetricSpecification")
    for key in ("ScaleOutCooldown", "ScaleInCooldown"):
        check.integer(config.get(key), f"{path}.{key}", minimum=0, maximum=MAX_COOLDOWN_SECONDS)
    check.boolean(config.get("DisableScaleIn"), f"{path}.DisableScaleIn")
    return dict(config)


class AutoScalingService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.db = platform.db

    def _region_account(self) -> tuple[str, str]:
        return self.platform.config.region, self.platform.config.account_id

    def _role_arn(self) -> str:
        return (f"arn:aws:iam::{self.platform.config.account_id}:role/aws-service-role/sagemaker.application-"
                "autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")

    # -- scalable targets -----------------------------------------------------------------------
    def register_scalable_target(self, request: dict[str, Any]) -> dict[str, str]:
        check = Checker()
        check.unknown_members(request, "", (*KEY_MEMBERS, "MinCapacity", "MaxCapacity", "RoleARN", "SuspendedState",
                                            "Tags"))
        _check_key(check, request)
        check.integer(request.get("MinCapacity"), "MinCapacity", minimum=0)
        check.integer(request.get("MaxCapacity"), "MaxCapacity", minimum=0)
        check.string(request.get("RoleARN"), "RoleARN", min_len=1, max_len=1600)
        suspended = check.structure(request.get("SuspendedState"), "SuspendedState")
        for key in SUSPENSIONS:
            check.boolean(suspended.get(key), f"SuspendedState.{key}")
        if request.get("MinCapacity") == 0:
            check.fail(0, "MinCapacity", f"have value greater than or equal to 1 for {DIMENSION}")
        check.raise_if_any()
        self._check_variant_exists(request["ResourceId"])
        row = repo.get_target(self.db, request["ResourceId"], DIMENSION)
        current: dict[str, Any] = dict(row["request"]) if row else {}
        merged = self._merged_target(request, current)
        repo.put_target(self.db, request["ResourceId"], DIMENSION, merged, time.time())
        return {"ScalableTargetARN": merged["ScalableTargetARN"]}

    def _check_variant_exists(self, resource_id: str) -> None:
        match = RESOURCE_ID_PATTERN.fullmatch(resource_id)
        if match is None:
            raise ValidationException(f"Unsupported resource ID {resource_id}")
        endpoint, variant = match.group("endpoint"), match.group("variant")
        variants = self.platform.endpoints.variant_names(endpoint)
        if variants is None:
            raise ValidationException(f"Could not find endpoint \"{self.platform.arn('endpoint', endpoint)}\".")
        if variant not in variants:
            raise ValidationException(f"The variant {variant} is not a production variant of the endpoint {endpoint} "
                                      f"(its variants: {', '.join(variants) or 'none'}).")

    def _merged_target(self, request: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
        """A registration on top of the target's current one: members not given keep their values."""
        minimum = request.get("MinCapacity", current.get("MinCapacity"))
        maximum = request.get("MaxCapacity", current.get("MaxCapacity"))
        if minimum is None or maximum is None:
            raise ValidationException("MinCapacity and MaxCapacity must both be given to register a new "
                                      "scalable target")
        if minimum > maximum:
            raise ValidationException("Minimum capacity cannot be greater than maximum capacity")
        suspended = dict(current.get("SuspendedState") or dict.fromkeys(SUSPENSIONS, False))
        suspended.update({k: v for k, v in (request.get("SuspendedState") or {}).items() if v is not None})
        region, account = self._region_account()
        new_arn = (f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/"
                   f"{uuid.uuid4().hex[:4]}{uuid.uuid4().hex}")
        merged = {
            "ServiceNamespace": NAMESPACE, "ResourceId": request["ResourceId"], "ScalableDimension": DIMENSION,
            "MinCapacity": minimum, "MaxCapacity": maximum,
            "RoleARN": request.get("RoleARN") or current.get("RoleARN") or self._role_arn(),
            "SuspendedState": suspended,
            "ScalableTargetARN": current.get("ScalableTargetARN") or new_arn,
        }
        if request.get("Tags") is not None or current.get("Tags") is not None:
            merged["Tags"] = request.get("Tags", current.get("Tags"))
        return merged

    def describe_scalable_targets(self, **params: Any) -> dict[str, Any]:
        check = Checker()
        check.unknown_members(params, "", ("ServiceNamespace", "ResourceIds", "ScalableDimension", "MaxResults",
                                           "NextToken"))
        _check_key(check, params, resource_required=False, dimension_required=False)
        ids = check.items(params.get("ResourceIds"), "ResourceIds", max_items=50)
        for index, resource_id in enumerate(ids):
            check.string(resource_id, f"ResourceIds.{index + 1}", required=True, min_len=1, max_len=1600)
        check.integer(params.get("MaxResults"), "MaxResults", minimum=1, maximum=50)
        check.raise_if_any()
        filters = {"ids": params.get("ResourceIds"), "dimension": params.get("ScalableDimension")}
        rows, token = page(_paging(params), filters,
                           lambda offset, count: repo.list_targets(self.db, resource_ids=params.get("ResourceIds"),
                                                                   dimension=params.get("ScalableDimension"),
                                                                   offset=offset, limit=count))
        response: dict[str, Any] = {"ScalableTargets": [
            {**{k: v for k, v in r["request"].items() if k != "Tags"}, "CreationTime": to_datetime(r["creation_time"])}
            for r in rows
        ]}
        if token:
            response["NextToken"] = token
        return response

    def deregister_scalable_target(self, request: dict[str, Any]) -> None:
        """Deregister a target; its scaling policies go with it."""
        check = Checker()
        check.unknown_members(request, "", KEY_MEMBERS)
        _check_key(check, request)
        check.raise_if_any()
        if not repo.delete_target(self.db, request["ResourceId"], DIMENSION):
            raise _not_registered(request)

    # -- scaling policies -----------------------------------------------------------------------
    def put_scaling_policy(self, request: dict[str, Any]) -> dict[str, Any]:
        check = Checker()
        check.unknown_members(request, "", ("PolicyName", *KEY_MEMBERS, "PolicyType", "StepScalingPolicyConfiguration",
                                            "TargetTrackingScalingPolicyConfiguration",
                                            "PredictiveScalingPolicyConfiguration"))
        check.string(request.get("PolicyName"), "PolicyName", required=True, min_len=1, max_len=256,
                     pattern=POLICY_NAME_PATTERN)
        _check_key(check, request)
        policy_type = request.get("PolicyType") or "StepScaling"
        if check.enum(policy_type, "PolicyType", POLICY_TYPES) and policy_type != "TargetTrackingScaling":
            check.fail(policy_type, "PolicyType", "be TargetTrackingScaling: forgeml scales endpoint variants with "
                                                  "target tracking only (StepScaling needs CloudWatch alarm actions)")
        config = _check_target_tracking(check, request.get("TargetTrackingScalingPolicyConfiguration")) \
            if policy_type == "TargetTrackingScaling" else {}
        check.raise_if_any()
        if repo.get_target(self.db, request["ResourceId"], DIMENSION) is None:
            raise _not_registered(request, "registered")
        name = request["PolicyName"]
        region, account = self._region_account()
        arn = (f"arn:aws:autoscaling:{region}:{account}:scalingPolicy:{uuid.uuid4()}:resource/{NAMESPACE}/"
               f"{request['ResourceId']}:policyName/{name}")
        stored = {"PolicyName": name, "ServiceNamespace": NAMESPACE, "ResourceId": request["ResourceId"],
                  "ScalableDimension": DIMENSION, "PolicyType": policy_type,
                  "TargetTrackingScalingPolicyConfiguration": config}
        arn = repo.put_policy(self.db, request["ResourceId"], DIMENSION, name, arn, stored, time.time())
        return {"PolicyARN": arn, "Alarms": []}

    def describe_scaling_policies(self, **params: Any) -> dict[str, Any]:
        check = Checker()
        check.unknown_members(params, "", ("PolicyNames", *KEY_MEMBERS, "MaxResults", "NextToken"))
        _check_key(check, params, resource_required=False, dimension_required=False)
        names = check.items(params.get("PolicyNames"), "PolicyNames", max_items=50)
        for index, name in enumerate(names):
            check.string(name, f"PolicyNames.{index + 1}", required=True, min_len=1, max_len=256)
        check.integer(params.get("MaxResults"), "MaxResults", minimum=1, maximum=50)
        check.raise_if_any()
        resource = params.get("ResourceId")
        filters = {"names": params.get("PolicyNames"), "resource": resource,
                   "dimension": params.get("ScalableDimension")}
        rows, token = page(_paging(params), filters,
                           lambda offset, count: repo.list_policies(
                               self.db, resource_ids=[resource] if resource else None,
                               dimension=params.get("ScalableDimension"), names=params.get("PolicyNames"),
                               offset=offset, limit=count))
        response: dict[str, Any] = {"ScalingPolicies": [
            {"PolicyARN": r["arn"], **r["request"], "Alarms": [], "CreationTime": to_datetime(r["creation_time"])}
            for r in rows
        ]}
        if token:
            response["NextToken"] = token
        return response

    def delete_scaling_policy(self, request: dict[str, Any]) -> None:
        check = Checker()
        check.unknown_members(request, "", ("PolicyName", *KEY_MEMBERS))
        check.string(request.get("PolicyName"), "PolicyName", required=True, min_len=1, max_len=256)
        _check_key(check, request)
        check.raise_if_any()
        if not repo.delete_policy(self.db, request["ResourceId"], DIMENSION, request["PolicyName"]):
            raise ObjectNotFoundException(
                f"No scaling policy found for service namespace: {NAMESPACE}, resource ID: {request['ResourceId']}, "
                f"scalable dimension: {DIMENSION}, policy name: {request['PolicyName']}")

    # -- scaling activities ---------------------------------------------------------------------
    def describe_scaling_activities(self, **params: Any) -> dict[str, Any]:
        check = Checker()
        check.unknown_members(params, "", (*KEY_MEMBERS, "MaxResults", "NextToken", "IncludeNotScaledActivities"))
        _check_key(check, params, resource_required=False, dimension_required=False)
        check.integer(params.get("MaxResults"), "MaxResults", minimum=1, maximum=50)
        check.boolean(params.get("IncludeNotScaledActivities"), "IncludeNotScaledActivities")
        check.raise_if_any()
        resource = params.get("ResourceId")
        filters = {"resource": resource, "dimension": params.get("ScalableDimension")}
        rows, token = page(_paging(params), filters,
                           lambda offset, count: repo.list_activities(
                               self.db, resource_id=resource, dimension=params.get("ScalableDimension"),
                               offset=offset, limit=count))
        response: dict[str, Any] = {"ScalingActivities": [self._activity(r) for r in rows]}
        if token:
            response["NextToken"] = token
        return response

    @staticmethod
    def _activity(row: dict[str, Any]) -> dict[str, Any]:
        activity = {
            "ActivityId": row["activity_id"], "ServiceNamespace": NAMESPACE, "ResourceId": row["resource_id"],
            "ScalableDimension": row["scalable_dimension"], "Description": row["description"], "Cause": row["cause"],
            "StartTime": to_datetime(row["start_time"]), "StatusCode": row["status_code"],
        }
        if row["end_time"] is not None:
            activity["EndTime"] = to_datetime(row["end_time"])
        return activity

    # -- for endpoint hosts ---------------------------------------------------------------------
    def tracking_for_endpoint(self, endpoint_name: str) -> dict[str, TargetTracking]:
        """Variant name -> its target and first TargetTrackingScaling policy (variants without one left out)."""
        prefix = f"endpoint/{endpoint_name}/variant/"
        targets = repo.list_targets(self.db, dimension=DIMENSION, resource_prefix=prefix)
        policies: dict[str, dict[str, Any]] = {}
        for row in repo.list_policies(self.db, dimension=DIMENSION, resource_prefix=prefix):
            if row["request"].get("PolicyType") == "TargetTrackingScaling":
                policies.setdefault(row["resource_id"], row["request"])
        return {target["resource_id"][len(prefix):]: TargetTracking.from_records(target["request"],
                                                                                  policies[target["resource_id"]])
                for target in targets if target["resource_id"] in policies}

    def record_activity(self, resource_id: str, description: str, cause: str, status_code: str = "Successful") -> None:
        """A scaling the host carried out (or failed to): what DescribeScalingActivities reports."""
        if status_code not in ACTIVITY_STATUSES:
            raise ValueError(f"status_code must be one of {', '.join(ACTIVITY_STATUSES)}, not {status_code!r}")
        now = time.time()
        repo.add_activity(self.db, {
            "activity_id": str(uuid.uuid4()), "resource_id": resource_id, "scalable_dimension": DIMENSION,
            "start_time": now, "end_time": None if status_code in ("Pending", "InProgress") else now,
            "status_code": status_code, "description": description, "cause": cause,
        })
