"""InvokeEndpoint through the server with boto3's sagemaker-runtime client: bodies, headers, errors, restarts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.server.conftest import RunningServer, raw_request

FAST = {"Delay": 0.2, "MaxAttempts": 300}
MIB = 1024 * 1024


def deploy(server: RunningServer, make_model: Any, name: str, variants: tuple[str, ...] = ("AllTraffic",)) -> None:
    sm = server.client("sagemaker")
    sm.create_model(**make_model(f"{name}-model"))
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[
        {"VariantName": variant, "ModelName": f"{name}-model", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0} for variant in variants])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST)


def runtime_error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[int, str, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_invoke_with_csv_and_json_bodies(server: RunningServer, linear_learner_model: Any) -> None:
    deploy(server, linear_learner_model, "proxy-ll", variants=("A", "B"))
    runtime = server.client("sagemaker-runtime")
    in_process = server.platform.runtime  # the same endpoint invoked without the server

    csv_body = b"1.0,-2.0,0.5,0.0\n-1.0,2.0,0.0,0.0\n"
    response = runtime.invoke_endpoint(EndpointName="proxy-ll", ContentType="text/csv", Body=csv_body)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] in ("A", "B")
    payload = json.loads(response["Body"].read())
    expected = json.loads(in_process.invoke_endpoint(EndpointName="proxy-ll", ContentType="text/csv",
                                                     Body=csv_body)["Body"].read())
    assert payload == expected
    assert [p["predicted_label"] for p in payload["predictions"]] == [1, 0]

    json_body = json.dumps({"instances": [{"features": [1.0, -2.0, 0.5, 0.0]}]})
    response = runtime.invoke_endpoint(EndpointName="proxy-ll", ContentType="application/json",
                                       Accept="application/json", Body=json_body)
    assert json.loads(response["Body"].read())["predictions"][0]["predicted_label"] == 1

    # X-Amzn-SageMaker-* headers reach the router: TargetVariant picks the variant every time
    for _ in range(4):
        targeted = runtime.invoke_endpoint(EndpointName="proxy-ll", ContentType="text/csv", Body=csv_body,
                                           TargetVariant="B")
        assert targeted["InvokedProductionVariant"] == "B"

    # the router's ModelError comes back as it is, with the model's status
    with pytest.raises(runtime.exceptions.ModelError) as model_error:
        runtime.invoke_endpoint(EndpointName="proxy-ll", ContentType="text/csv", Body=b"1,2\n")
    assert model_error.value.response["Error"]["Code"] == "ModelError"
    assert model_error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert model_error.value.response["OriginalStatusCode"] == 400
    assert "2 features per record but the model expects 4" in model_error.value.response["OriginalMessage"]

    # /feedback is forwarded too: this endpoint does not route by bandit, and the router says so
    feedback = raw_request(server, "POST", "/endpoints/proxy-ll/feedback", b'{"Reward": 1.0, "VariantName": "A"}',
                           {"Content-Type": "application/json"})
    assert feedback.status == 400 and feedback.headers["x-amzn-errortype"] == "ValidationError"
    assert "does not use bandit routing" in feedback.json()["message"]


def test_refusals_in_the_runtimes_shape(server: RunningServer, linear_learner_model: Any) -> None:
    runtime = server.client("sagemaker-runtime")
    with pytest.raises(ClientError) as missing:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="text/csv", Body=b"1,2,3,4")
    assert runtime_error(missing) == (400, "ValidationError",
                                      "Endpoint no-such-endpoint of account 000000000000 not found.")
    for name in ("../../etc", "bad_name!"):
        with pytest.raises(ClientError) as bad_name:
            runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv", Body=b"1")
        status, code, message = runtime_error(bad_name)
        assert (status, code) == (400, "ValidationError")
        assert f"Value '{name}' at 'endpointName' failed to satisfy constraint" in message
    with pytest.raises(ClientError) as too_big:
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", ContentType="text/csv", Body=b"1" * (7 * MIB))
    status, code, message = runtime_error(too_big)
    assert (status, code) == (400, "ValidationError")
    assert "Member must have length less than or equal to 6291456" in message
    unknown = raw_request(server, "POST", "/endpoints/some-endpoint/explain", b"{}")
    assert unknown.status == 404 and unknown.json()["__type"] == "UnknownOperationException"

    # an endpoint that is not in service: its model cannot load, so it ends Failed
    sm = server.client("sagemaker")
    broken = linear_learner_model("proxy-broken-model")
    server.platform.artifacts.put_bytes(b"not a tarball", broken["PrimaryContainer"]["ModelDataUrl"])
    sm.create_model(**broken)
    sm.create_endpoint_config(EndpointConfigName="proxy-broken", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "proxy-broken-model", "InitialInstanceCount": 1,
         "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="proxy-broken", EndpointConfigName="proxy-broken")
    with pytest.raises(Exception, match="Failed"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="proxy-broken", WaiterConfig=FAST)
    with pytest.raises(ClientError) as out_of_service:
        runtime.invoke_endpoint(EndpointName="proxy-broken", ContentType="text/csv", Body=b"1,2,3,4")
    assert runtime_error(out_of_service) == (400, "ValidationError", "Endpoint proxy-broken of account 000000000000 "
                                             "is not in service (its status is Failed).")


def test_a_router_that_stopped_answering_is_looked_up_again(server: RunningServer, linear_learner_model: Any) -> None:
    from forgeml.server.runtime_proxy import RuntimeProxy

    deploy(server, linear_learner_model, "proxy-moved")
    runtime = server.client("sagemaker-runtime")
    body = b"1.0,-2.0,0.5,0.0"
    first = json.loads(runtime.invoke_endpoint(EndpointName="proxy-moved", ContentType="text/csv", Body=body)[
        "Body"].read())
    proxy = server.part(RuntimeProxy)
    real_url = server.platform.endpoints.router_url("proxy-moved")
    # as if the host had restarted on another port: the cached URL now reaches nothing
    proxy._urls["proxy-moved"] = ("http://127.0.0.1:9", float("inf"))
    again = json.loads(runtime.invoke_endpoint(EndpointName="proxy-moved", ContentType="text/csv", Body=body)[
        "Body"].read())
    assert again == first
    assert proxy._urls["proxy-moved"][0] == real_url
    assert "http://127.0.0.1:9" not in proxy._pools

    server.client("sagemaker").delete_endpoint(EndpointName="proxy-moved")
    server.client("sagemaker").get_waiter("endpoint_deleted").wait(EndpointName="proxy-moved", WaiterConfig=FAST)
    with pytest.raises(ClientError) as deleted:
        runtime.invoke_endpoint(EndpointName="proxy-moved", ContentType="text/csv", Body=body)
    assert runtime_error(deleted) == (400, "ValidationError", "Endpoint proxy-moved of account 000000000000 "
                                      "not found.")


def test_the_runtime_without_auth(open_server: RunningServer, linear_learner_model: Any) -> None:
    deploy(open_server, linear_learner_model, "proxy-open")
    response = open_server.client("sagemaker-runtime").invoke_endpoint(
        EndpointName="proxy-open", ContentType="text/csv", Body="0.0,0.0,0.0,1.0")
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert len(json.loads(response["Body"].read())["predictions"]) == 1


def test_a_router_that_never_answers_is_service_unavailable(server: RunningServer,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[str] = []

    def dead_router(name: str) -> str:
        looked_up.append(name)
        return "http://127.0.0.1:9"  # the discard port: nothing listens there

    monkeypatch.setattr(server.platform.endpoints, "router_url", dead_router)
    with pytest.raises(ClientError) as unavailable:
        server.client("sagemaker-runtime").invoke_endpoint(EndpointName="ghost", ContentType="text/csv", Body=b"1")
    assert runtime_error(unavailable) == (503, "ServiceUnavailable", "Endpoint ghost did not answer; its host may be "
                                          "restarting. Retry shortly.")
    assert looked_up == ["ghost", "ghost"]  # read once, and once more after the router did not answer
