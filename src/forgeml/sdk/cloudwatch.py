"""An in-process client with boto3's CloudWatch alarm method names and shapes.

``CloudWatchClient(platform).put_metric_alarm(AlarmName=..., ...)`` behaves like
``boto3.client("cloudwatch").put_metric_alarm(...)``: the alarms an UpdateEndpoint's
AutoRollbackConfiguration names are created and inspected this way.
"""

from __future__ import annotations

from typing import Any

from forgeml.sdk.client import PaginatingClient, _with_metadata
from forgeml.service.platform import Platform


class CloudWatchClient(PaginatingClient):
    _PAGINATED = {"describe_alarms": "MetricAlarms"}

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def put_metric_alarm(self, **request: Any) -> dict[str, Any]:
        self.platform.alarms.put_metric_alarm(request)
        return _with_metadata({})

    def describe_alarms(self, **params: Any) -> dict[str, Any]:
        return _with_metadata(self.platform.alarms.describe_alarms(**params))

    def delete_alarms(self, *, AlarmNames: list[str]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        self.platform.alarms.delete_alarms(AlarmNames)
        return _with_metadata({})

    def set_alarm_state(self, *, AlarmName: str, StateValue: str, StateReason: str,  # noqa: N803
                        StateReasonData: str | None = None) -> dict[str, Any]:
        """SetAlarmState; StateReasonData (JSON for humans) is accepted and not kept."""
        self.platform.alarms.set_alarm_state(AlarmName, StateValue, StateReason)
        return _with_metadata({})
