"""Traffic: weights between variants, target variant, shadow variants, data capture, bandit routing,
and a worker killed while requests are flowing."""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from forgeml.hosting.capture import read_capture_records

ROW = "0.5,1.2,-0.3,2.0"


def variant(name: str, model: str, count: int = 1, weight: float = 1.0) -> dict[str, Any]:
    return {"VariantName": name, "ModelName": model, "InitialInstanceCount": count, "InstanceType": "ml.m5.large",
            "InitialVariantWeight": weight}


def deploy(platform: Any, wait_for: Callable[..., Any], name: str, variants: list[dict[str, Any]],
           **config: Any) -> dict[str, Any]:
    platform.endpoint_configs.create_endpoint_config({"EndpointConfigName": name, "ProductionVariants": variants,
                                                      **config})
    platform.endpoints.create_endpoint({"EndpointName": name, "EndpointConfigName": name})

    def probe() -> dict[str, Any] | None:
        described = platform.endpoints.describe_endpoint(name)
        assert described["EndpointStatus"] != "Failed", described.get("FailureReason")
        return described if described["EndpointStatus"] == "InService" else None

    result: dict[str, Any] = wait_for(probe, 60, f"{name} InService")
    return result


def invoke(platform: Any, name: str, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = platform.runtime.invoke_endpoint(EndpointName=name, Body=ROW, ContentType="text/csv",
                                                              **extra)
    return result


def test_weights_split_traffic_and_target_variant_overrides(platform: Any, make_model: Callable[..., str],
                                                           wait_for: Callable[..., Any]) -> None:
    make_model("ll-a")
    make_model("ll-b")
    deploy(platform, wait_for, "ab", [variant("A", "ll-a", weight=3.0), variant("B", "ll-b", weight=1.0)])
    seen = Counter(invoke(platform, "ab")["InvokedProductionVariant"] for _ in range(800))
    assert set(seen) == {"A", "B"}
    assert 0.68 < seen["A"] / 800 < 0.82  # 0.75 expected; binomial sd ~0.015
    assert {invoke(platform, "ab", TargetVariant="B")["InvokedProductionVariant"] for _ in range(20)} == {"B"}


def test_weights_and_capacities_update(platform: Any, make_model: Callable[..., str],
                                       wait_for: Callable[..., Any]) -> None:
    make_model("ll-a")
    make_model("ll-b")
    deploy(platform, wait_for, "wc", [variant("A", "ll-a"), variant("B", "ll-b")])
    platform.endpoints.update_endpoint_weights_and_capacities({"EndpointName": "wc", "DesiredWeightsAndCapacities": [
        {"VariantName": "A", "DesiredWeight": 0.0}, {"VariantName": "B", "DesiredInstanceCount": 2}]})
    assert platform.endpoints.describe_endpoint("wc")["EndpointStatus"] == "Updating"
    described = wait_for(lambda: (d := platform.endpoints.describe_endpoint("wc"))["EndpointStatus"] == "InService"
                         and d, 30, "the update")
    summaries = {v["VariantName"]: v for v in described["ProductionVariants"]}
    assert summaries["A"]["CurrentWeight"] == 0.0
    assert summaries["B"]["CurrentInstanceCount"] == 2
    assert {invoke(platform, "wc")["InvokedProductionVariant"] for _ in range(50)} == {"B"}


def test_a_killed_worker_is_replaced_and_requests_keep_succeeding(platform: Any, make_model: Callable[..., str],
                                                                  wait_for: Callable[..., Any]) -> None:
    make_model("ll")
    deploy(platform, wait_for, "kill", [variant("AllTraffic", "ll", count=2)])
    failures: list[BaseException] = []
    done = threading.Event()

    def traffic() -> None:
        while not done.is_set():
            try:
                invoke(platform, "kill")
            except Exception as exc:  # noqa: BLE001 - the test counts every failure
                failures.append(exc)

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        workers = _worker_pids(platform, "kill")
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: len(set(_worker_pids(platform, "kill")) - {workers[0]}) == 2, 30, "a replacement worker")
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert platform.endpoints.describe_endpoint("kill")["ProductionVariants"][0]["CurrentInstanceCount"] == 2


def _worker_pids(platform: Any, name: str) -> list[int]:
    """The host's worker processes (its children running forgeml.serving.worker)."""
    import psutil

    from forgeml.store import endpoints as repo

    host = psutil.Process(repo.get_endpoint(platform.db, name)["runner_pid"])
    pids = []
    for child in host.children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "forgeml.serving.worker" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.NoSuchProcess:  # a zombie or a process that just ended
            continue
    return pids


def test_shadow_variant_gets_a_copy_and_capture_records_every_request(platform: Any, make_model: Callable[..., str],
                                                                      wait_for: Callable[..., Any]) -> None:
    make_model("prod")
    make_model("shadow")
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://capture/data",
               "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
               "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}}
    described = deploy(platform, wait_for, "shadowed", [variant("Prod", "prod")], DataCaptureConfig=capture,
                       ShadowProductionVariants=[variant("Shadow", "shadow")])
    assert described["ShadowProductionVariants"][0]["VariantName"] == "Shadow"
    assert described["DataCaptureConfig"]["CaptureStatus"] == "Started"
    ids = [f"req-{i}" for i in range(30)]
    for inference_id in ids:
        answer = invoke(platform, "shadowed", InferenceId=inference_id, Accept="application/json")
        assert answer["InvokedProductionVariant"] == "Prod"
    platform.endpoints.delete_endpoint("shadowed")  # a graceful shutdown flushes every captured record
    wait_for(lambda: not platform.endpoints.exists("shadowed"), 20, "the delete")
    production = read_capture_records(platform.artifacts, "s3://capture/data", "shadowed", "Prod")
    shadow = read_capture_records(platform.artifacts, "s3://capture/data", "shadowed", "Shadow")
    assert sorted(r["eventMetadata"]["inferenceId"] for r in production) == sorted(ids)
    assert sorted(r["eventMetadata"]["inferenceId"] for r in shadow) == sorted(ids)
    record = production[0]
    assert record["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                                      "data": ROW, "encoding": "CSV"}
    assert record["captureData"]["endpointOutput"]["encoding"] == "JSON"
    assert '"predicted_label"' in record["captureData"]["endpointOutput"]["data"]
    assert record["eventVersion"] == "0"


def test_bandit_routing_shifts_traffic_to_the_rewarded_variant(platform: Any, make_model: Callable[..., str],
                                                              wait_for: Callable[..., Any]) -> None:
    make_model("ll-a")
    make_model("ll-b")
    deploy(platform, wait_for, "mab", [variant("A", "ll-a"), variant("B", "ll-b")],
           Tags=[{"Key": "forgeml:routing", "Value": "bandit"}])
    for i in range(300):
        answer = invoke(platform, "mab", InferenceId=f"r{i}")
        won = answer["InvokedProductionVariant"] == "B"
        platform.runtime.send_feedback("mab", 1.0 if won else 0.0, inference_id=f"r{i}")
    recent = Counter(invoke(platform, "mab")["InvokedProductionVariant"] for _ in range(200))
    assert recent["B"] > 150
    described = wait_for(lambda: (d := platform.endpoints.describe_endpoint("mab"))
                         and {v["VariantName"]: v["CurrentWeight"] for v in d["ProductionVariants"]}["B"] > 0.75 and d,
                         10, "the bandit's shares in DescribeEndpoint")
    assert described["EndpointStatus"] == "InService"
