"""CloudWatch alarms: PutMetricAlarm validation, DescribeAlarms shapes, filters and pages, state updates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forgeml.errors import ResourceNotFound, ValidationException
from forgeml.sdk.cloudwatch import CloudWatchClient
from forgeml.service.platform import Platform


@pytest.fixture
def platform(forgeml_home: Path) -> Platform:
    return Platform.get()


@pytest.fixture
def client(platform: Platform) -> CloudWatchClient:
    return CloudWatchClient(platform)


def _request(**members: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "AlarmName": "ep-5xx", "Namespace": "AWS/SageMaker", "MetricName": "Invocation5XXErrors",
        "Dimensions": [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        "Statistic": "Sum", "Period": 10, "EvaluationPeriods": 2, "Threshold": 1, "ComparisonOperator":
        "GreaterThanOrEqualToThreshold",
    }
    request.update(members)
    return {k: v for k, v in request.items() if v is not None}


def test_put_and_describe(client: CloudWatchClient) -> None:
    response = client.put_metric_alarm(**_request(AlarmDescription="errors", TreatMissingData="notBreaching",
                                                  Tags=[{"Key": "team", "Value": "ml"}]))
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    described = client.describe_alarms(AlarmNames=["ep-5xx"])
    assert described["CompositeAlarms"] == [] and "NextToken" not in described
    [alarm] = described["MetricAlarms"]
    updated, state_updated = alarm.pop("AlarmConfigurationUpdatedTimestamp"), alarm.pop("StateUpdatedTimestamp")
    assert updated.tzinfo is not None and state_updated == updated
    assert alarm == {
        "AlarmName": "ep-5xx", "AlarmArn": "arn:aws:cloudwatch:us-east-1:000000000000:alarm:ep-5xx",
        "AlarmDescription": "errors", "ActionsEnabled": True, "OKActions": [], "AlarmActions": [],
        "InsufficientDataActions": [], "MetricName": "Invocation5XXErrors", "Namespace": "AWS/SageMaker",
        "Statistic": "Sum", "Dimensions": [{"Name": "EndpointName", "Value": "ep"},
                                           {"Name": "VariantName", "Value": "AllTraffic"}],
        "Period": 10, "EvaluationPeriods": 2, "Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching", "StateValue": "INSUFFICIENT_DATA",
        "StateReason": "Unchecked: Initial alarm creation",
    }


def test_put_replaces_configuration_and_keeps_state(platform: Platform, client: CloudWatchClient) -> None:
    client.put_metric_alarm(**_request())
    client.set_alarm_state(AlarmName="ep-5xx", StateValue="ALARM", StateReason="testing")
    client.put_metric_alarm(**_request(Threshold=5.5, Period=30))
    alarm = platform.alarms.get_alarm("ep-5xx")
    assert alarm is not None
    assert (alarm["Threshold"], alarm["Period"]) == (5.5, 30)
    assert (alarm["StateValue"], alarm["StateReason"]) == ("ALARM", "testing")
    assert len(client.describe_alarms()["MetricAlarms"]) == 1
    assert platform.alarms.get_alarm("missing") is None


def test_describe_filters(client: CloudWatchClient) -> None:
    client.put_metric_alarm(**_request(AlarmName="b-latency", MetricName="ModelLatency", Statistic="Average",
                                       AlarmActions=["arn:aws:sns:us-east-1:000000000000:pager"]))
    client.put_metric_alarm(**_request(AlarmName="a-errors"))
    client.put_metric_alarm(**_request(AlarmName="a-4xx", MetricName="Invocation4XXErrors"))
    client.set_alarm_state(AlarmName="a-errors", StateValue="OK", StateReason="fine")

    def names(**params: Any) -> list[str]:
        return [a["AlarmName"] for a in client.describe_alarms(**params)["MetricAlarms"]]

    assert names() == ["a-4xx", "a-errors", "b-latency"]
    assert names(AlarmNamePrefix="a-") == ["a-4xx", "a-errors"]
    assert names(AlarmNames=["b-latency", "nope", "a-4xx"]) == ["a-4xx", "b-latency"]
    assert names(StateValue="OK") == ["a-errors"]
    assert names(StateValue="INSUFFICIENT_DATA", AlarmNamePrefix="a") == ["a-4xx"]
    assert names(ActionPrefix="arn:aws:sns") == ["b-latency"]
    assert names(AlarmTypes=["CompositeAlarm"]) == []
    assert names(AlarmTypes=["MetricAlarm", "CompositeAlarm"]) == ["a-4xx", "a-errors", "b-latency"]
    assert names(ChildrenOfAlarmName="a-errors") == []


def test_describe_pages(client: CloudWatchClient) -> None:
    for index in range(5):
        client.put_metric_alarm(**_request(AlarmName=f"alarm-{index}"))
    first = client.describe_alarms(MaxRecords=2)
    assert [a["AlarmName"] for a in first["MetricAlarms"]] == ["alarm-0", "alarm-1"]
    second = client.describe_alarms(MaxRecords=2, NextToken=first["NextToken"])
    assert [a["AlarmName"] for a in second["MetricAlarms"]] == ["alarm-2", "alarm-3"]
    assert client.can_paginate("describe_alarms") and not client.can_paginate("put_metric_alarm")
    pages = list(client.get_paginator("describe_alarms").paginate(MaxRecords=2))
    assert [len(p["MetricAlarms"]) for p in pages] == [2, 2, 1]
    with pytest.raises(ValidationException, match="different filters"):
        client.describe_alarms(MaxRecords=2, NextToken=first["NextToken"], StateValue="OK")
    with pytest.raises(ValueError, match="cannot be paginated"):
        client.get_paginator("delete_alarms")


def test_delete_alarms(client: CloudWatchClient) -> None:
    client.put_metric_alarm(**_request(AlarmName="one"))
    client.put_metric_alarm(**_request(AlarmName="two"))
    client.delete_alarms(AlarmNames=["one", "never-existed"])
    assert [a["AlarmName"] for a in client.describe_alarms()["MetricAlarms"]] == ["two"]
    with pytest.raises(ValidationException, match="at 'alarmNames' failed to satisfy constraint: Member must have "
                                                  "length less than or equal to 100"):
        client.delete_alarms(AlarmNames=[f"a{i}" for i in range(101)])


def test_set_alarm_state_and_record_evaluation(platform: Platform, client: CloudWatchClient) -> None:
    client.put_metric_alarm(**_request())
    client.set_alarm_state(AlarmName="ep-5xx", StateValue="OK", StateReason="manual", StateReasonData="{}")
    alarm = client.describe_alarms()["MetricAlarms"][0]
    assert (alarm["StateValue"], alarm["StateReason"]) == ("OK", "manual")
    with pytest.raises(ResourceNotFound, match="Alarm nope not found"):
        client.set_alarm_state(AlarmName="nope", StateValue="OK", StateReason="x")
    with pytest.raises(ValidationException, match="Value 'RED' at 'stateValue' failed to satisfy constraint: Member "
                                                  r"must satisfy enum value set: \[OK, ALARM, INSUFFICIENT_DATA\]"):
        client.set_alarm_state(AlarmName="ep-5xx", StateValue="RED", StateReason="x")
    # a host's evaluation is written only when it changes the state
    assert platform.alarms.record_evaluation("ep-5xx", "OK", "still fine") is False
    assert platform.alarms.get_alarm("ep-5xx")["StateReason"] == "manual"  # type: ignore[index]
    assert platform.alarms.record_evaluation("ep-5xx", "ALARM", "Threshold Crossed") is True
    assert platform.alarms.get_alarm("ep-5xx")["StateValue"] == "ALARM"  # type: ignore[index]
    with pytest.raises(ValueError, match="state must be one of"):
        platform.alarms.record_evaluation("ep-5xx", "BAD", "x")


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"AlarmName": None}, "Value 'null' at 'alarmName' failed to satisfy constraint: Member must not be null"),
        ({"AlarmName": "x" * 256}, "at 'alarmName' failed to satisfy constraint: Member must have length less than or "
                                   "equal to 255"),
        ({"MetricName": None}, "Value 'null' at 'metricName' failed to satisfy constraint: Member must not be null"),
        ({"Namespace": ":bad"}, "at 'namespace' failed to satisfy constraint: Member must satisfy regular expression "
                                "pattern"),
        ({"Namespace": None}, "at 'namespace' failed to satisfy constraint: Member must not be null"),
        ({"Statistic": "p99"}, "Value 'p99' at 'statistic' failed to satisfy constraint: Member must satisfy enum "
                               "value "
                               "set: [SampleCount, Average, Sum, Minimum, Maximum]"),
        ({"Statistic": None}, "at 'statistic' failed to satisfy constraint: Member must not be null"),
        ({"ExtendedStatistic": "p99"}, "at 'extendedStatistic' failed to satisfy constraint: Member must be absent"),
        ({"Metrics": [{"Id": "m1"}]}, "at 'metrics' failed to satisfy constraint: Member must be absent"),
        ({"Period": 0}, "Value '0' at 'period' failed to satisfy constraint: Member must have value greater than or "
                        "equal to 1"),
        ({"Period": None}, "at 'period' failed to satisfy constraint: Member must not be null"),
        ({"EvaluationPeriods": 0}, "at 'evaluationPeriods' failed to satisfy constraint: Member must have value "
                                   "greater than or equal to 1"),
        ({"DatapointsToAlarm": 3}, "Value '3' at 'datapointsToAlarm' failed to satisfy constraint: Member must have "
                                   "value less than or equal to EvaluationPeriods (2)"),
        ({"DatapointsToAlarm": 0}, "at 'datapointsToAlarm' failed to satisfy constraint: Member must have value "
                                   "greater than or equal to 1"),
        ({"Threshold": None}, "Value 'null' at 'threshold' failed to satisfy constraint: Member must not be null"),
        ({"Threshold": "high"}, "Value 'high' at 'threshold' failed to satisfy constraint: Member must be a number"),
        ({"ComparisonOperator": "Above"}, "Value 'Above' at 'comparisonOperator' failed to satisfy constraint: Member "
                                          "must satisfy enum value set: [GreaterThanOrEqualToThreshold, "
                                          "GreaterThanThreshold, LessThanThreshold, LessThanOrEqualToThreshold]"),
        ({"TreatMissingData": "zero"}, "at 'treatMissingData' failed to satisfy constraint: Member must satisfy enum "
                                       "value set: [breaching, notBreaching, ignore, missing]"),
        ({"Unit": "Furlongs"}, "Value 'Furlongs' at 'unit' failed to satisfy constraint"),
        ({"Dimensions": [{"Name": "EndpointName"}]}, "Value 'null' at 'dimensions.1.value' failed to satisfy "
                                                     "constraint: Member must not be null"),
        ({"Dimensions": [{"Name": f"d{i}", "Value": "v"} for i in range(31)]},
         "at 'dimensions' failed to satisfy constraint: Member must have length less than or equal to 30"),
        ({"AlarmActions": ["a"] * 6}, "at 'alarmActions' failed to satisfy constraint: Member must have length less "
                                      "than or equal to 5"),
        ({"ActionsEnabled": "yes"}, "at 'actionsEnabled' failed to satisfy constraint: Member must be a boolean"),
        ({"Colour": "red"}, 'Unknown parameter in input: "Colour", must be one of:'),
        ({"Period": 3600, "EvaluationPeriods": 25, "DatapointsToAlarm": None},
         "Metrics cannot be checked across more than a day (EvaluationPeriods * Period must be <= 86400)"),
    ],
)
def test_bad_put_metric_alarm(client: CloudWatchClient, members: dict[str, Any], message: str) -> None:
    request = _request()
    request.update(members)
    request = {k: v for k, v in request.items() if v is not None}
    with pytest.raises(ValidationException) as raised:
        client.put_metric_alarm(**request)
    assert message in raised.value.message
    assert client.describe_alarms()["MetricAlarms"] == []


def test_errors_are_reported_together(client: CloudWatchClient) -> None:
    with pytest.raises(ValidationException) as raised:
        client.put_metric_alarm(**_request(Period=0, Statistic="Median"))
    assert raised.value.message.startswith("2 validation errors detected: ")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"AlarmNames": ["a"], "AlarmNamePrefix": "a"}, "at 'alarmNamePrefix' failed to satisfy constraint: Member "
                                                        "must be absent when AlarmNames is given"),
        ({"StateValue": "RED"}, "at 'stateValue' failed to satisfy constraint: Member must satisfy enum value set"),
        ({"MaxRecords": 101}, "at 'maxRecords' failed to satisfy constraint: Member must have value less than or "
                              "equal to 100"),
        ({"AlarmTypes": ["Other"]}, "at 'alarmTypes.1' failed to satisfy constraint: Member must satisfy enum value "
                                    "set: [CompositeAlarm, MetricAlarm]"),
        ({"NextToken": "garbage!"}, "Member must be a token returned by a previous call"),
        ({"Unknown": 1}, 'Unknown parameter in input: "Unknown"'),
    ],
)
def test_bad_describe_alarms(client: CloudWatchClient, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationException) as raised:
        client.describe_alarms(**params)
    assert message in raised.value.message
