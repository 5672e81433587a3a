"""Benchmark: a forgeml endpoint (router + worker) beside a bare FastAPI app serving the same model.

Run as ``python bench/bench_endpoints.py`` from the repository root (about two minutes).

For a Linear Learner and an XGBoost model trained here on generated data, it deploys a real
endpoint on a temporary FORGEML_HOME (CreateModel -> CreateEndpointConfig -> CreateEndpoint: the
endpoint's host process, its router and one worker process) and starts the anchor of
``bench_serving_worker.py``: a FastAPI app whose ``POST /invocations`` calls the same
``algorithm.invoke`` directly, under uvicorn with the same loop and parser.

Single-record CSV requests go to SageMaker's runtime path ``POST /endpoints/<name>/invocations``
over keep-alive connections from the same raw-socket asyncio client, at concurrency 1, 8 and 32,
rounds alternating between the two, best round kept. The endpoint costs one more hop than the
anchor (client -> router -> worker), which is the price of variants, capture, shadowing and
replacing dead workers; the ratio (endpoint req/s / anchor req/s) is the figure to compare.
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

import bench_serving_worker as anchor_bench  # noqa: E402

ROUNDS = 2


def deploy(platform: object, name: str, algorithm: str, model_dir: Path, root: Path) -> tuple[str, int]:
    """Create the endpoint and return the router's host and port once it is InService."""
    from forgeml.sdk.image_uris import retrieve

    archive = root / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    uri = f"s3://bench/{name}/model.tar.gz"
    platform.artifacts.ensure_bucket("bench")  # type: ignore[attr-defined]
    platform.artifacts.put_file(archive, uri)  # type: ignore[attr-defined]
    platform.models.create_model({"ModelName": name, "PrimaryContainer": {  # type: ignore[attr-defined]
        "Image": retrieve(algorithm), "ModelDataUrl": uri}})
    platform.endpoint_configs.create_endpoint_config({  # type: ignore[attr-defined]
        "EndpointConfigName": name, "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": name,
                                                            "InitialInstanceCount": 1,
                                                            "InstanceType": "ml.m5.large"}]})
    platform.endpoints.create_endpoint({"EndpointName": name, "EndpointConfigName": name})  # type: ignore[attr-defined]
    deadline = time.monotonic() + 120
    while True:
        described = platform.endpoints.describe_endpoint(name)  # type: ignore[attr-defined]
        if described["EndpointStatus"] == "InService":
            break
        if described["EndpointStatus"] == "Failed" or time.monotonic() > deadline:
            raise RuntimeError(f"endpoint {name}: {described}")
        time.sleep(0.1)
    url = urlsplit(platform.endpoints.router_url(name))  # type: ignore[attr-defined]
    return url.hostname or "127.0.0.1", int(url.port or 80)


def endpoint_request(name: str, port: int, body: bytes) -> bytes:
    head = (f"POST /endpoints/{name}/invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/csv\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-endpoints-") as tmp:
        root = Path(tmp)
        os.environ["FORGEML_HOME"] = str(root / "home")
        from forgeml.service.platform import Platform

        platform = Platform.get()
        models = anchor_bench.train_models(root / "models")
        body = ",".join(f"{v:.4f}" for v in np.random.default_rng(1).normal(size=anchor_bench.FEATURES)).encode()
        rows = []
        for algorithm, model_dir in models.items():
            name = f"bench-{algorithm}"
            host, port = deploy(platform, name, algorithm, model_dir, root)
            anchor_process, anchor_host, anchor_port = anchor_bench.start(
                [sys.executable, str(BENCH / "bench_serving_worker.py"), "--anchor", str(model_dir), algorithm])
            ours_request = endpoint_request(name, port, body)
            anchor_request = anchor_bench.request_bytes(anchor_port, body)
            try:
                anchor_bench.run_load(host, port, ours_request, anchor_bench.WARMUP, 1)
                anchor_bench.run_load(anchor_host, anchor_port, anchor_request, anchor_bench.WARMUP, 1)
                for concurrency in anchor_bench.CONCURRENCY:
                    best: dict[str, anchor_bench.Cell] = {}
                    for round_index in range(ROUNDS):
                        targets = [("ours", host, port, ours_request), ("anchor", anchor_host, anchor_port, anchor_request)]
                        for key, target_host, target_port, request in targets[:: 1 if round_index % 2 == 0 else -1]:
                            cell = anchor_bench.run_load(target_host, target_port, request, anchor_bench.REQUESTS, concurrency)
                            if key not in best or cell.rps > best[key].rps:
                                best[key] = cell
                    rows.append((algorithm, concurrency, best["ours"], best["anchor"]))
            finally:
                anchor_bench.stop(anchor_process)
                platform.endpoints.delete_endpoint(name)
        deadline = time.monotonic() + 30
        while platform.endpoints.list_endpoints()["Endpoints"] and time.monotonic() < deadline:
            time.sleep(0.1)
    print(f"\nsingle-record CSV to POST /endpoints/<name>/invocations, {anchor_bench.REQUESTS} requests per cell, "
          f"best of {ROUNDS} rounds")
    print("endpoint = router + one worker process; anchor = bare FastAPI app calling the model directly; "
          "latencies in ms; ratio = endpoint req/s / anchor req/s\n")
    header = (f"{'model':<15}{'conc':>5} | {'p50 endpoint':>13}{'anchor':>8} | {'p99 endpoint':>13}{'anchor':>8} | "
              f"{'req/s endpoint':>15}{'anchor':>8}{'ratio':>7}")
    print(header)
    print("-" * len(header))
    for algorithm, concurrency, ours, anchor in rows:
        print(f"{algorithm:<15}{concurrency:>5} | {ours.p50_ms:>13.3f}{anchor.p50_ms:>8.3f} | {ours.p99_ms:>13.3f}"
              f"{anchor.p99_ms:>8.3f} | {ours.rps:>15.0f}{anchor.rps:>8.0f}{ours.rps / anchor.rps:>7.2f}")


if __name__ == "__main__":
    main()
