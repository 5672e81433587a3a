"""CloudWatch alarms through boto3's ``cloudwatch`` client, in JSON 1.0 (botocore's pick) and RPC v2 CBOR.

The CBOR client is botocore's own RPC v2 CBOR serializer and parser: the same client, built from
CloudWatch's model with its protocol list narrowed to ``smithy-rpc-v2-cbor``.
"""

from __future__ import annotations

import json
import tarfile
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import cbor2
import pytest
from botocore import UNSIGNED, parsers
from botocore.config import Config
from botocore.exceptions import ClientError
from tests.server.conftest import ROLE, RawResponse, RunningServer, raw_request, wait_until

from forgeml.server.errors import error_response, protocol_of

RPC_PATH = "/service/GraniteServiceVersion20100801/operation/"
CBOR_HEADERS = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", "Accept": "application/cbor"}
ROW = "0.5,1.2,-0.3,2.0"
FAILING_SCRIPT = """
def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    raise RuntimeError("this model version is broken")
"""


def alarm(name: str, **extra: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "AlarmName": name, "Namespace": "AWS/SageMaker", "MetricName": "Invocation5XXErrors", "Statistic": "Sum",
        "Period": 60, "EvaluationPeriods": 3, "Threshold": 1.0, "ComparisonOperator": "GreaterThanThreshold"}
    request.update(extra)
    return request


def cbor_model_dir(root: Path) -> Path:
    """A botocore data folder whose CloudWatch model offers only RPC v2 CBOR (paginators come from botocore's)."""
    model = botocore.session.get_session().get_component("data_loader").load_service_model("cloudwatch", "service-2")
    model["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    target = root / "cloudwatch" / model["metadata"]["apiVersion"] / "service-2.json"
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(model))
    return root


def cloudwatch_client(server: RunningServer, wire: str, tmp_path: Path, **config: Any) -> Any:
    """A cloudwatch client speaking ``wire`` ("json" as botocore chooses, or "cbor"), signed with the server's key."""
    session = botocore.session.get_session()
    if wire == "cbor":
        session.get_component("data_loader").search_paths.insert(0, str(cbor_model_dir(tmp_path / "botocore-data")))
    options: dict[str, Any] = {"retries": {"total_max_attempts": 1}, **config}
    return boto3.session.Session(botocore_session=session).client(
        "cloudwatch", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key, config=Config(**options))


@pytest.fixture(params=["json", "cbor"])
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cloudwatch(server: RunningServer, wire: str, tmp_path: Path) -> Any:
    return cloudwatch_client(server, wire, tmp_path)


def answered_in(response: dict[str, Any], wire: str) -> None:
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    if wire == "cbor":
        assert headers["smithy-protocol"] == "rpc-v2-cbor"
    else:
        assert headers["content-type"] == "application/x-amz-json-1.0" and "smithy-protocol" not in headers


def names(response: dict[str, Any]) -> list[str]:
    return [a["AlarmName"] for a in response["MetricAlarms"]]


# -- the operations ------------------------------------------------------------------------------


def test_put_describe_set_state_and_delete_round_trip(cloudwatch: Any, wire: str) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    dimensions = [{"Name": "EndpointName", "Value": "ufo"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    answered_in(cloudwatch.put_metric_alarm(**alarm("endpoint-errors-a", Dimensions=dimensions, DatapointsToAlarm=2,
                                                    TreatMissingData="notBreaching", Threshold=2.5)), wire)
    cloudwatch.put_metric_alarm(**alarm("endpoint-errors-b"))
    cloudwatch.put_metric_alarm(**alarm("latency", MetricName="ModelLatency", Statistic="Average",
                                        Threshold=250000, Unit="Microseconds"))

    everything = cloudwatch.describe_alarms()
    answered_in(everything, wire)
    assert names(everything) == ["endpoint-errors-a", "endpoint-errors-b", "latency"]
    assert everything["CompositeAlarms"] == [] and "NextToken" not in everything
    first = everything["MetricAlarms"][0]
    assert first["AlarmArn"] == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:endpoint-errors-a"
    assert (first["Dimensions"], first["DatapointsToAlarm"], first["TreatMissingData"]) == (
        dimensions, 2, "notBreaching")
    assert (first["Period"], first["EvaluationPeriods"], first["Threshold"]) == (60, 3, 2.5)
    assert (first["StateValue"], first["StateReason"]) == ("INSUFFICIENT_DATA", "Unchecked: Initial alarm creation")
    for stamp in ("AlarmConfigurationUpdatedTimestamp", "StateUpdatedTimestamp"):
        assert isinstance(first[stamp], datetime) and before <= first[stamp] <= datetime.now(UTC)
    assert everything["MetricAlarms"][2]["Unit"] == "Microseconds"

    assert names(cloudwatch.describe_alarms(AlarmNames=["latency", "no-such-alarm"])) == ["latency"]
    assert names(cloudwatch.describe_alarms(AlarmNamePrefix="endpoint-errors-")) == [
        "endpoint-errors-a", "endpoint-errors-b"]

    answered_in(cloudwatch.set_alarm_state(AlarmName="endpoint-errors-b", StateValue="ALARM",
                                           StateReason="testing the rollback", StateReasonData="{}"), wire)
    [fired] = cloudwatch.describe_alarms(StateValue="ALARM")["MetricAlarms"]
    assert (fired["AlarmName"], fired["StateValue"], fired["StateReason"]) == (
        "endpoint-errors-b", "ALARM", "testing the rollback")
    assert fired["StateUpdatedTimestamp"] >= fired["AlarmConfigurationUpdatedTimestamp"]
    assert names(cloudwatch.describe_alarms(StateValue="INSUFFICIENT_DATA")) == ["endpoint-errors-a", "latency"]

    pages = list(cloudwatch.get_paginator("describe_alarms").paginate(PaginationConfig={"PageSize": 2}))
    assert [names(page) for page in pages] == [["endpoint-errors-a", "endpoint-errors-b"], ["latency"]]
    assert "NextToken" in pages[0] and "NextToken" not in pages[1]

    answered_in(cloudwatch.delete_alarms(AlarmNames=["endpoint-errors-a", "endpoint-errors-b", "never-made"]), wire)
    assert names(cloudwatch.describe_alarms()) == ["latency"]


def test_refusals_carry_cloudwatchs_codes_and_change_nothing(cloudwatch: Any) -> None:
    with pytest.raises(ClientError) as operator:
        cloudwatch.put_metric_alarm(**alarm("bad", ComparisonOperator="Bigger"))
    assert operator.value.response["Error"]["Code"] == "ValidationError"
    assert operator.value.response["Error"]["QueryErrorCode"] == "ValidationException"
    assert operator.value.response["Error"]["Message"] == (
        "1 validation error detected: Value 'Bigger' at 'comparisonOperator' failed to satisfy constraint: Member "
        "must satisfy enum value set: [GreaterThanOrEqualToThreshold, GreaterThanThreshold, LessThanThreshold, "
        "LessThanOrEqualToThreshold]")
    assert operator.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    with pytest.raises(ClientError) as datapoints:
        cloudwatch.put_metric_alarm(**alarm("bad", DatapointsToAlarm=5))
    assert datapoints.value.response["Error"] == {
        "Code": "ValidationError", "QueryErrorCode": "ValidationException", "Type": "Sender",
        "Message": "1 validation error detected: Value '5' at 'datapointsToAlarm' failed to satisfy constraint: "
                   "Member must have value less than or equal to EvaluationPeriods (3)"}

    with pytest.raises(ClientError) as both_filters:
        cloudwatch.describe_alarms(AlarmNames=["a"], AlarmNamePrefix="a")
    assert both_filters.value.response["Error"]["Code"] == "ValidationError"
    assert "at 'alarmNamePrefix' failed to satisfy constraint: Member must be absent when AlarmNames is given" in \
        both_filters.value.response["Error"]["Message"]

    with pytest.raises(cloudwatch.exceptions.ResourceNotFound) as missing:
        cloudwatch.set_alarm_state(AlarmName="nope", StateValue="ALARM", StateReason="x")
    assert missing.value.response["Error"]["Message"] == "Alarm nope not found"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    with pytest.raises(ClientError) as unserved:
        cloudwatch.list_dashboards()
    assert unserved.value.response["Error"]["Code"] == "UnknownOperationException"
    assert unserved.value.response["Error"]["Message"] == (
        "forgeml does not serve CloudWatch's ListDashboards; the operations it serves are: DeleteAlarms, "
        "DescribeAlarms, PutMetricAlarm, SetAlarmState")

    assert cloudwatch.describe_alarms()["MetricAlarms"] == []


@pytest.mark.parametrize(("credentials", "code"), [
    ({"config": {"signature_version": UNSIGNED}}, "MissingAuthenticationToken"),
    ({"secret": "not-the-secret"}, "SignatureDoesNotMatch"),
    ({"key": "AKIANOTAKEYOFTHISSRV"}, "InvalidClientTokenId"),
])
def test_requests_without_a_valid_signature_are_refused(server: RunningServer, wire: str, tmp_path: Path,
                                                        credentials: dict[str, Any], code: str) -> None:
    forged = RunningServer(server.url, server.platform, credentials.get("key", server.access_key),
                           credentials.get("secret", server.secret_key), server.app)
    client = cloudwatch_client(forged, wire, tmp_path, **credentials.get("config", {}))
    with pytest.raises(ClientError) as refused:
        client.put_metric_alarm(**alarm("sneaky"))
    assert refused.value.response["Error"]["Code"] == code
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert server.platform.alarms.get_alarm("sneaky") is None


# -- the protocols, without a server -------------------------------------------------------------


@pytest.mark.parametrize(("headers", "protocol"), [
    ({"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"}, "rpc-v2-cbor"),
    ({"X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms", "x-amzn-query-mode": "true"}, "json-query"),
    ({"X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms"}, "json"),
])
def test_protocol_of_cloudwatch_requests(headers: dict[str, str], protocol: str) -> None:
    path = RPC_PATH + "DescribeAlarms" if "smithy-protocol" in headers else "/"
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"",
             "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()]}
    assert protocol_of(scope) == protocol


@pytest.mark.parametrize(("protocol", "parser", "content_type"), [
    ("rpc-v2-cbor", "smithy-rpc-v2-cbor", "application/cbor"), ("json-query", "json", "application/x-amz-json-1.0")])
def test_query_compatible_errors_read_back_by_botocore(protocol: str, parser: str, content_type: str) -> None:
    for status, code, query_code, fault in ((403, "MissingAuthenticationTokenException", "MissingAuthenticationToken",
                                             "Sender"),
                                            (500, "InternalFailure", "InternalFailure", "Receiver")):
        answer_status, headers, body = error_response(protocol, status, code, "the message")
        header_map = {name.decode(): value.decode() for name, value in headers}
        assert answer_status == status and header_map["content-type"] == content_type
        assert header_map["x-amzn-query-error"] == f"{query_code};{fault}"
        assert header_map["content-length"] == str(len(body))
        parsed = parsers.create_parser(parser).parse({"status_code": status, "body": body, "headers": header_map}, None)
        assert parsed["Error"] == {"Code": query_code, "QueryErrorCode": code, "Type": fault, "Message": "the message"}
    _, cbor_headers, cbor_body = error_response("rpc-v2-cbor", 400, "ValidationException", "bad")
    assert (b"smithy-protocol", b"rpc-v2-cbor") in cbor_headers
    assert cbor2.loads(cbor_body) == {"__type": "ValidationException", "message": "bad"}


# -- what boto3 never sends ----------------------------------------------------------------------


def cbor_call(server: RunningServer, operation: str, body: bytes, *, path: str | None = None,
              method: str = "POST") -> RawResponse:
    return raw_request(server, method, path or RPC_PATH + operation, body, CBOR_HEADERS, service="monitoring")


def cbor_error(response: RawResponse) -> tuple[int, str, str]:
    assert response.headers["smithy-protocol"] == "rpc-v2-cbor"
    assert response.headers["content-type"] == "application/cbor"
    error = cbor2.loads(response.body)
    assert response.headers["x-amzn-query-error"].split(";")[1] == "Sender"
    return response.status, error["__type"], error["message"]


def test_malformed_cbor_and_wrong_types_are_serialization_errors(server: RunningServer) -> None:
    truncated = cbor_error(cbor_call(server, "DescribeAlarms", b"\xa1\x6aAlarm"))
    assert truncated[:2] == (400, "SerializationException")
    assert truncated[2].startswith("The request body is not valid CBOR: ")
    assert cbor_error(cbor_call(server, "DescribeAlarms", cbor2.dumps({}) + b"\x00")) == (
        400, "SerializationException", "The request body has 1 bytes after its CBOR item")
    assert cbor_error(cbor_call(server, "DescribeAlarms", cbor2.dumps(["AlarmNames"]))) == (
        400, "SerializationException", "The request body must be a CBOR map, not list")
    assert cbor_error(cbor_call(server, "DescribeAlarms", cbor2.dumps({1: "x"}))) == (
        400, "SerializationException", "Map keys must be text strings; 'input' has the key 1")
    tagged = cbor2.dumps({"AlarmNamePrefix": cbor2.CBORTag(99, 1)})
    unknown_tag = cbor_error(cbor_call(server, "DescribeAlarms", tagged))
    assert unknown_tag[:2] == (400, "SerializationException") and "'AlarmNamePrefix' is a CBORTag" in unknown_tag[2]
    assert cbor_error(cbor_call(server, "DeleteAlarms", cbor2.dumps({"AlarmNames": "errors"}))) == (
        400, "SerializationException", "1 serialization error detected: Value 'errors' at 'alarmNames' cannot be "
                                       "read as a list (it is a string)")
    assert cbor_error(cbor_call(server, "SetAlarmState", cbor2.dumps(
        {"AlarmName": "a", "StateValue": "OK", "StateReason": "x", "Colour": "red"}))) == (
        400, "ValidationException", '1 validation error detected: Unknown parameter in input: "Colour", must be one '
                                    "of: AlarmName, StateReason, StateReasonData, StateValue")
    assert server.platform.alarms.describe_alarms()["MetricAlarms"] == []


def test_unknown_paths_services_and_methods(server: RunningServer) -> None:
    assert cbor_error(cbor_call(server, "", b"", path="/service/SomethingElse/operation/Describe")) == (
        400, "UnknownOperationException",
        "Unknown service 'SomethingElse'; this server serves GraniteServiceVersion20100801 (CloudWatch) "
        "over RPC v2 CBOR")
    assert cbor_error(cbor_call(server, "Frobnicate", b"")) == (
        400, "UnknownOperationException", "Unknown operation GraniteServiceVersion20100801.Frobnicate")
    wrong_method = cbor_error(cbor_call(server, "DescribeAlarms", b"", method="PUT"))
    assert wrong_method[:2] == (400, "UnknownOperationException") and wrong_method[2].startswith("PUT is not how")
    empty = cbor_call(server, "DescribeAlarms", b"")  # an input with no members may have no body at all
    assert empty.status == 200 and cbor2.loads(empty.body) == {"MetricAlarms": [], "CompositeAlarms": []}


def test_malformed_json_is_a_serialization_error_with_the_query_code(server: RunningServer) -> None:
    response = raw_request(server, "POST", "/", b"{not json", {
        "X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms", "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-query-mode": "true"}, service="monitoring")
    assert response.status == 400 and response.headers["x-amzn-query-error"] == "SerializationException;Sender"
    assert response.json()["__type"] == "SerializationException"
    assert response.json()["message"].startswith("The request body is not valid JSON")


# -- the point of it all: an alarm made with boto3 rolls an endpoint update back -----------------


def failing_model_tarball(root: Path) -> Path:
    code = root / "failing" / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text(textwrap.dedent(FAILING_SCRIPT))
    archive = root / "failing.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(code, arcname="code")
    return archive


class Traffic:
    """Invocations through the server's sagemaker-runtime client, counted by outcome, on a background thread."""

    def __init__(self, runtime: Any, endpoint: str) -> None:
        self.runtime, self.endpoint = runtime, endpoint
        self.outcomes: Counter[str] = Counter()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="cloudwatch-test-traffic")

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                self.runtime.invoke_endpoint(EndpointName=self.endpoint, Body=ROW, ContentType="text/csv")
                self.outcomes["ok"] += 1
            except ClientError as error:
                code = error.response["Error"]["Code"]
                self.outcomes["model-error" if code == "ModelError" else f"other:{code}"] += 1

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=30)


@pytest.fixture
def rollback_endpoint(server: RunningServer, linear_learner_model: Any, tmp_path: Path) -> Iterator[str]:
    """Endpoint "rb" InService on a good config, with a broken config to update to; deleted afterwards."""
    sm = server.client("sagemaker")
    sm.create_model(**linear_learner_model("good"))
    broken_uri = "s3://server-models/broken/model.tar.gz"
    server.platform.artifacts.put_file(failing_model_tarball(tmp_path), broken_uri)
    sm.create_model(ModelName="broken", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "forgeml/script-mode:latest", "ModelDataUrl": broken_uri,
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}})
    for config, model in (("good-config", "good"), ("broken-config", "broken")):
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="rb", EndpointConfigName="good-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="rb", WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    yield "rb"
    sm.delete_endpoint(EndpointName="rb")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="rb", WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})


def test_an_alarm_made_with_boto3_rolls_an_endpoint_update_back(server: RunningServer, rollback_endpoint: str,
                                                                  tmp_path: Path) -> None:
    sm, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    cloudwatch = cloudwatch_client(server, "json", tmp_path)
    cloudwatch.put_metric_alarm(
        AlarmName="rb-errors", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
        Dimensions=[{"Name": "EndpointName", "Value": rollback_endpoint},
                    {"Name": "VariantName", "Value": "AllTraffic"}],
        Statistic="Sum", Period=1, EvaluationPeriods=2, DatapointsToAlarm=1, Threshold=0.0,
        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    deployment = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 30, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}}},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "rb-errors"}]}}

    def rolled_back() -> dict[str, Any] | None:
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=rollback_endpoint)
        assert described["EndpointStatus"] != "Failed", described.get("FailureReason")
        return described if described["EndpointStatus"] == "InService" else None

    with Traffic(runtime, rollback_endpoint) as traffic:
        sm.update_endpoint(EndpointName=rollback_endpoint, EndpointConfigName="broken-config",
                           DeploymentConfig=deployment)
        described = wait_until(rolled_back, 60, "the rollback")
        served_after = traffic.outcomes["ok"]
        wait_until(lambda: traffic.outcomes["ok"] > served_after + 20, 30, "traffic after the rollback")
        errors_before = traffic.outcomes["model-error"]
        wait_until(lambda: traffic.outcomes["ok"] > served_after + 60, 30, "more traffic")
    assert traffic.outcomes["model-error"] > 0, traffic.outcomes  # the canary served, and failed
    assert traffic.outcomes["model-error"] == errors_before, traffic.outcomes  # nothing reaches it after the rollback
    assert [code for code in traffic.outcomes if code.startswith("other")] == [], traffic.outcomes
    assert described["EndpointConfigName"] == "good-config"
    assert "rolled back" in described["FailureReason"] and "rb-errors" in described["FailureReason"]
    [fired] = cloudwatch.describe_alarms(AlarmNames=["rb-errors"])["MetricAlarms"]
    assert fired["StateValue"] == "ALARM" and fired["StateReason"]
    assert isinstance(fired["StateUpdatedTimestamp"], datetime)
