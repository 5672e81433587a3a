"""UpdateEndpoint: blue/green canary shifting to a new config, and automatic rollback on an alarm."""

from __future__ import annotations

import tarfile
import textwrap
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forgeml.errors import ModelError

ROW = "0.5,1.2,-0.3,2.0"
FAILING_SCRIPT = """
def model_fn(model_dir):
    return None

def input_fn(body, content_type):
    return body

def predict_fn(data, model):
    raise RuntimeError("this model version is broken")
"""


def variant(name: str, model: str, count: int = 1) -> dict[str, Any]:
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": count, "InstanceType": "ml.m5.large"}


def config(platform: Any, name: str, model: str, count: int = 1) -> None:
    platform.endpoint_configs.create_endpoint_config({"EndpointConfigName": name,
                                                      "ProductionVariants": [variant("AllTraffic", model, count)]})


def status_is(platform: Any, name: str, wanted: str) -> Callable[[], dict[str, Any] | None]:
    def probe() -> dict[str, Any] | None:
        described: dict[str, Any] = platform.endpoints.describe_endpoint(name)
        assert described["EndpointStatus"] != "Failed", described.get("FailureReason")
        return described if described["EndpointStatus"] == wanted else None

    return probe


def failing_model_tarball(tmp_path: Path) -> Path:
    code = tmp_path / "failing" / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text(textwrap.dedent(FAILING_SCRIPT))
    archive = tmp_path / "failing.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(code, arcname="code")
    return archive


class Traffic:
    """Background requests counting which config's fleet answered (by success or ModelError)."""

    def __init__(self, platform: Any, name: str) -> None:
        self.platform, self.name = platform, name
        self.outcomes: Counter[str] = Counter()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                self.platform.runtime.invoke_endpoint(EndpointName=self.name, Body=ROW, ContentType="text/csv")
                self.outcomes["ok"] += 1
            except ModelError:
                self.outcomes["model-error"] += 1

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def test_canary_update_shifts_to_the_new_config(platform: Any, make_model: Callable[..., str],
                                                wait_for: Callable[..., Any]) -> None:
    make_model("v1")
    make_model("v2")
    config(platform, "c1", "v1")
    config(platform, "c2", "v2", count=2)
    platform.endpoints.create_endpoint({"EndpointName": "canary", "EndpointConfigName": "c1"})
    wait_for(status_is(platform, "canary", "InService"), 60, "InService")
    deployment = {"BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 1,
                                        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
        "TerminationWaitInSeconds": 0}}
    with Traffic(platform, "canary") as traffic:
        platform.endpoints.update_endpoint({"EndpointName": "canary", "EndpointConfigName": "c2",
                                            "DeploymentConfig": deployment})
        updating = platform.endpoints.describe_endpoint("canary")
        assert updating["EndpointStatus"] == "Updating"
        assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == "c2"
        described = wait_for(status_is(platform, "canary", "InService"), 60, "the update to finish")
    assert traffic.outcomes["model-error"] == 0 and traffic.outcomes["ok"] > 0
    assert described["EndpointConfigName"] == "c2"
    assert described["LastDeploymentConfig"] == deployment
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert "FailureReason" not in described


def test_alarm_during_baking_rolls_back(platform: Any, make_model: Callable[..., str], wait_for: Callable[..., Any],
                                        tmp_path: Path) -> None:
    make_model("good")
    make_model("broken", tarball=failing_model_tarball(tmp_path), image="forgeml/script-mode:latest",
               environment={"SAGEMAKER_PROGRAM": "inference.py"})
    config(platform, "good-config", "good")
    config(platform, "broken-config", "broken")
    platform.alarms.put_metric_alarm({
        "AlarmName": "errors", "Namespace": "AWS/SageMaker", "MetricName": "Invocation5XXErrors",
        "Dimensions": [{"Name": "EndpointName", "Value": "rb"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        "Statistic": "Sum", "Period": 1, "EvaluationPeriods": 2, "DatapointsToAlarm": 1, "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"})
    platform.endpoints.create_endpoint({"EndpointName": "rb", "EndpointConfigName": "good-config"})
    wait_for(status_is(platform, "rb", "InService"), 60, "InService")
    deployment = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 30, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}}},
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "errors"}]}}
    with Traffic(platform, "rb") as traffic:
        platform.endpoints.update_endpoint({"EndpointName": "rb", "EndpointConfigName": "broken-config",
                                            "DeploymentConfig": deployment})
        described = wait_for(status_is(platform, "rb", "InService"), 60, "the rollback")
        served_after = traffic.outcomes["ok"]
        wait_for(lambda: traffic.outcomes["ok"] > served_after + 20, 20, "traffic after the rollback")
        errors_before = traffic.outcomes["model-error"]
        wait_for(lambda: traffic.outcomes["ok"] > served_after + 100, 20, "more traffic")
    assert traffic.outcomes["model-error"] > 0  # the canary did serve, and failed
    assert traffic.outcomes["model-error"] == errors_before  # nothing reaches the broken fleet after the rollback
    assert described["EndpointConfigName"] == "good-config"
    assert "rolled back" in described["FailureReason"] and "errors" in described["FailureReason"]
    alarm = platform.alarms.describe_alarms(AlarmNames=["errors"])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"


def test_bad_updates_are_refused_and_the_endpoint_keeps_serving(platform: Any, make_model: Callable[..., str],
                                                                 wait_for: Callable[..., Any]) -> None:
    from forgeml.errors import ValidationException

    make_model("v1")
    make_model("doomed")
    config(platform, "c1", "v1")
    config(platform, "c-doomed", "doomed")
    platform.models.delete_model("doomed")
    platform.endpoints.create_endpoint({"EndpointName": "steady", "EndpointConfigName": "c1"})
    wait_for(status_is(platform, "steady", "InService"), 60, "InService")
    with pytest.raises(ValidationException, match='Could not find model "arn:aws:sagemaker:.*:model/doomed"'):
        platform.endpoints.update_endpoint({"EndpointName": "steady", "EndpointConfigName": "c-doomed"})
    with pytest.raises(ValidationException, match="weights must not all be zero"):
        platform.endpoints.update_endpoint_weights_and_capacities({
            "EndpointName": "steady", "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredWeight": 0}]})
    with pytest.raises(ValidationException, match=r"The variant name\(s\) \[Nope\] is/are not present"):
        platform.endpoints.update_endpoint_weights_and_capacities({
            "EndpointName": "steady", "DesiredWeightsAndCapacities": [{"VariantName": "Nope", "DesiredWeight": 1}]})
    described = platform.endpoints.describe_endpoint("steady")
    assert described["EndpointStatus"] == "InService" and described["EndpointConfigName"] == "c1"
    answer = platform.runtime.invoke_endpoint(EndpointName="steady", Body=ROW, ContentType="text/csv")
    assert answer["InvokedProductionVariant"] == "AllTraffic"
