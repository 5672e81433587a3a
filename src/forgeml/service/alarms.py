"""CloudWatch metric alarms: PutMetricAlarm, DescribeAlarms, DeleteAlarms, SetAlarmState.

Endpoint hosts evaluate the alarms an UpdateEndpoint's AutoRollbackConfiguration names
(``forgeml.hosting.alarms``) and record the outcome here. A new alarm starts INSUFFICIENT_DATA; a
second PutMetricAlarm of the same name replaces its configuration and keeps its state. As in
CloudWatch, DeleteAlarms passes over names that do not exist.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from forgeml.errors import ResourceNotFound, ValidationException
from forgeml.hosting.alarms import MISSING_DATA_TREATMENTS, OPERATORS
from forgeml.hosting.metrics import STATISTICS
from forgeml.service.names import to_datetime
from forgeml.service.pagination import page
from forgeml.service.validation import Checker
from forgeml.store import alarms as repo

if TYPE_CHECKING:
    from forgeml.service.platform import Platform

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
UNITS = ("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
         "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
         "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
         "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None")
PUT_MEMBERS = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
               "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions",
               "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator",
               "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics", "Tags", "ThresholdMetricId")
DESCRIBE_MEMBERS = ("AlarmNames", "AlarmNamePrefix", "AlarmTypes", "ChildrenOfAlarmName", "ParentsOfAlarmName",
                    "StateValue", "ActionPrefix", "MaxRecords", "NextToken")
ACTION_LISTS = ("OKActions", "AlarmActions", "InsufficientDataActions")
MAX_EVALUATION_SECONDS = 86400
INITIAL_REASON = "Unchecked: Initial alarm creation"


def _number(check: Checker, value: Any, path: str) -> None:
    if value is None:
        check.required(value, path)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        check.fail(value, path, "be a number")


def _check_dimensions(check: Checker, value: Any) -> None:
    for index, item in enumerate(check.items(value, "Dimensions", max_items=30)):
        path = f"Dimensions.{index + 1}"
        dimension = check.structure(item, path, required=True)
        check.string(dimension.get("Name"), f"{path}.Name", required=True, min_len=1, max_len=255)
        check.string(dimension.get("Value"), f"{path}.Value", required=True, min_len=1, max_len=1024)


def _check_unsupported(check: Checker, request: dict[str, Any]) -> None:
    """Members CloudWatch takes that a local endpoint's metrics cannot serve."""
    if request.get("ExtendedStatistic") is not None:
        check.fail(request["ExtendedStatistic"], "ExtendedStatistic",
                   "be absent: forgeml evaluates the statistics SampleCount, Average, Sum, Minimum and Maximum")
    if request.get("Metrics") is not None:
        check.fail("[...]", "Metrics", "be absent: forgeml alarms watch one metric (MetricName), not metric math")
    if request.get("ThresholdMetricId") is not None:
        check.fail(request["ThresholdMetricId"], "ThresholdMetricId", "be absent: anomaly detection is not supported")


def _check_put(request: dict[str, Any]) -> Checker:
    """Every rule of a PutMetricAlarm request. Periods of any whole number of seconds are accepted (CloudWatch
    takes 10, 30 or multiples of 60): a local endpoint's alarms are useful over a few seconds."""
    check = Checker()
    check.unknown_members(request, "", PUT_MEMBERS)
    check.string(request.get("AlarmName"), "AlarmName", required=True, min_len=1, max_len=255)
    check.string(request.get("AlarmDescription"), "AlarmDescription", max_len=1024)
    check.boolean(request.get("ActionsEnabled"), "ActionsEnabled")
    for key in ACTION_LISTS:
        for index, action in enumerate(check.items(request.get(key), key, max_items=5)):
            check.string(action, f"{key}.{index + 1}", required=True, min_len=1, max_len=1024)
    check.string(request.get("MetricName"), "MetricName", required=True, min_len=1, max_len=255)
    check.string(request.get("Namespace"), "Namespace", required=True, min_len=1, max_len=255, pattern=r"[^:].*")
    check.enum(request.get("Statistic"), "Statistic", STATISTICS, required=True)
    _check_unsupported(check, request)
    _check_dimensions(check, request.get("Dimensions"))
    check.integer(request.get("Period"), "Period", required=True, minimum=1)
    check.enum(request.get("Unit"), "Unit", UNITS)
    periods, needed = request.get("EvaluationPeriods"), request.get("DatapointsToAlarm")
    periods_ok = check.integer(periods, "EvaluationPeriods", required=True, minimum=1)
    needed_ok = check.integer(needed, "DatapointsToAlarm", minimum=1)
    if periods_ok and needed_ok and needed is not None and needed > periods:
        check.fail(needed, "DatapointsToAlarm", f"have value less than or equal to EvaluationPeriods ({periods})")
    _number(check, request.get("Threshold"), "Threshold")
    check.enum(request.get("ComparisonOperator"), "ComparisonOperator", tuple(OPERATORS), required=True)
    check.enum(request.get("TreatMissingData"), "TreatMissingData", MISSING_DATA_TREATMENTS)
    check.enum(request.get("EvaluateLowSampleCountPercentile"), "EvaluateLowSampleCountPercentile",
               ("evaluate", "ignore"))
    return check


class AlarmService:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.db = platform.db

    def arn(self, name: str) -> str:
        return f"arn:aws:cloudwatch:{self.platform.config.region}:{self.platform.config.account_id}:alarm:{name}"

    # -- PutMetricAlarm -------------------------------------------------------------------------
    def put_metric_alarm(self, request: dict[str, Any]) -> None:
        check = _check_put(request)
        check.raise_if_any()
        period, periods = request["Period"], request["EvaluationPeriods"]
        if period * periods > MAX_EVALUATION_SECONDS:
            raise ValidationException("Metrics cannot be checked across more than a day "
                                      f"(EvaluationPeriods * Period must be <= {MAX_EVALUATION_SECONDS})")
        normalized: dict[str, Any] = {
            key: request[key] for key in PUT_MEMBERS if request.get(key) is not None
        }
        normalized["Threshold"] = float(request["Threshold"])
        normalized["Dimensions"] = [{"Name": d["Name"], "Value": d["Value"]} for d in request.get("Dimensions") or []]
        normalized["ActionsEnabled"] = bool(request.get("ActionsEnabled", True))
        for key in ACTION_LISTS:
            normalized[key] = list(request.get(key) or [])
        name = request["AlarmName"]
        repo.put_alarm(self.db, name, self.arn(name), normalized, time.time(), "INSUFFICIENT_DATA", INITIAL_REASON)

    # -- DescribeAlarms -------------------------------------------------------------------------
    @staticmethod
    def _shape(row: dict[str, Any]) -> dict[str, Any]:
        """A MetricAlarm as DescribeAlarms returns it (tags are not part of it, as in CloudWatch)."""
        request = {k: v for k, v in row["request"].items() if k != "Tags"}
        return {
            "AlarmName": row["name"], "AlarmArn": row["arn"],
            "AlarmConfigurationUpdatedTimestamp": to_datetime(row["creation_time"]),
            **request,
            "StateValue": row["state"], "StateReason": row["state_reason"],
            "StateUpdatedTimestamp": to_datetime(row["state_updated"]),
        }

    def describe_alarms(self, **params: Any) -> dict[str, Any]:
        check = Checker()
        check.unknown_members(params, "", DESCRIBE_MEMBERS)
        names = check.items(params.get("AlarmNames"), "AlarmNames", max_items=100)
        for index, name in enumerate(names):
            check.string(name, f"AlarmNames.{index + 1}", required=True, min_len=1, max_len=255)
        check.string(params.get("AlarmNamePrefix"), "AlarmNamePrefix", min_len=1, max_len=255)
        if params.get("AlarmNames") is not None and params.get("AlarmNamePrefix") is not None:
            check.fail(params["AlarmNamePrefix"], "AlarmNamePrefix", "be absent when AlarmNames is given")
        types = check.items(params.get("AlarmTypes"), "AlarmTypes")
        for index, kind in enumerate(types):
            check.enum(kind, f"AlarmTypes.{index + 1}", ("CompositeAlarm", "MetricAlarm"), required=True)
        check.string(params.get("ChildrenOfAlarmName"), "ChildrenOfAlarmName", min_len=1, max_len=255)
        check.string(params.get("ParentsOfAlarmName"), "ParentsOfAlarmName", min_len=1, max_len=255)
        check.enum(params.get("StateValue"), "StateValue", STATES)
        check.string(params.get("ActionPrefix"), "ActionPrefix", min_len=1, max_len=1024)
        check.integer(params.get("MaxRecords"), "MaxRecords", minimum=1, maximum=100)
        check.raise_if_any()
        # Composite alarms do not exist here, so their children and parents are no metric alarms either.
        wants_metric = not types or "MetricAlarm" in types
        composite_query = params.get("ChildrenOfAlarmName") or params.get("ParentsOfAlarmName")
        rows: list[dict[str, Any]] = []
        if wants_metric and not composite_query:
            rows = repo.list_alarms(self.db, names=params.get("AlarmNames"), prefix=params.get("AlarmNamePrefix"),
                                    state=params.get("StateValue"))
        prefix = params.get("ActionPrefix")
        if prefix:
            rows = [r for r in rows if any(a.startswith(prefix) for key in ACTION_LISTS
                                           for a in r["request"].get(key, []))]
        filters = {key: params.get(key) for key in DESCRIBE_MEMBERS if key not in ("MaxRecords", "NextToken")}
        chosen, token = page({"MaxResults": params.get("MaxRecords") or 50, "NextToken": params.get("NextToken")},
                             filters, lambda offset, count: rows[offset:offset + count])
        response: dict[str, Any] = {"MetricAlarms": [self._shape(r) for r in chosen], "CompositeAlarms": []}
        if token:
            response["NextToken"] = token
        return response

    def get_alarm(self, name: str) -> dict[str, Any] | None:
        """The alarm as DescribeAlarms shows it (StateValue included), or None: what a host evaluates."""
        row = repo.get_alarm(self.db, name)
        return self._shape(row) if row else None

    # -- DeleteAlarms / SetAlarmState -----------------------------------------------------------
    def delete_alarms(self, AlarmNames: list[str]) -> None:  # noqa: N803 - CloudWatch's member name
        check = Checker()
        names = check.items(AlarmNames, "AlarmNames", required=True, max_items=100)
        for index, name in enumerate(names):
            check.string(name, f"AlarmNames.{index + 1}", required=True, min_len=1, max_len=255)
        check.raise_if_any()
        if names:
            repo.delete_alarms(self.db, names)

    def set_alarm_state(self, name: str, state: str, reason: str) -> None:
        """SetAlarmState: the state until the next evaluation (hosts record evaluations the same way)."""
        check = Checker()
        check.string(name, "AlarmName", required=True, min_len=1, max_len=255)
        check.enum(state, "StateValue", STATES, required=True)
        check.string(reason, "StateReason", required=True, min_len=0, max_len=1023)
        check.raise_if_any()
        if not repo.set_state(self.db, name, state, reason, time.time()):
            raise ResourceNotFound(f"Alarm {name} not found")

    def record_evaluation(self, name: str, state: str, reason: str) -> bool:
        """Store an evaluation only when it changes StateValue (as CloudWatch keeps its reason); True if it did."""
        if state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        return repo.set_state(self.db, name, state, reason, time.time(), only_if_changed=True)
