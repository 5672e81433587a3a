"""Benchmark: the model server worker beside a bare FastAPI/uvicorn app serving the same model.

Run as ``python bench/bench_serving_worker.py`` from the repository root (about a minute).

For a Linear Learner and an XGBoost model (trained here on generated data through
``train_builtin``), it starts two servers as subprocesses on loopback:

* ours: ``python -m forgeml.serving.worker --model-dir ... --algorithm ... --port 0``;
* the anchor: a FastAPI app with a ``POST /invocations`` route that calls the same
  ``algorithm.invoke(model, body, content_type, accept)`` (parse, predict, encode), under uvicorn
  with the same event loop and HTTP parser (uvloop/httptools when installed) and access logging
  off, uvicorn's defaults otherwise.

Then it sends single-record CSV requests over keep-alive connections from an asyncio client
(raw sockets, so the client costs little), at concurrency 1, 8 and 32: ``REQUESTS`` per cell after
a warm-up, in ``ROUNDS`` rounds alternating between the servers, keeping each server's round with
the best throughput. It prints p50/p99 latency (ms) and requests/s for ours beside the anchor,
and the throughput ratio (ours / anchor). The client and both servers share this machine's cores,
so absolute figures depend on the machine; the ratio is the comparable figure.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi import Response as FastAPIResponse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from forgeml.algorithms.harness import ChannelData, train_builtin  # noqa: E402
from forgeml.algorithms.registry import get_algorithm  # noqa: E402
from forgeml.data.csv_format import write_csv  # noqa: E402

REQUESTS = 2000
WARMUP = 300
ROUNDS = 2
CONCURRENCY = (1, 8, 32)
FEATURES = 10
LISTENING = "forgeml-worker listening on "


@dataclass
class Cell:
    p50_ms: float
    p99_ms: float
    rps: float


# -- models --------------------------------------------------------------------------------------


def train_models(root: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(2000, FEATURES)).astype(np.float32)
    labels = (features @ rng.normal(size=FEATURES) + rng.normal(0, 0.3, 2000) > 0).astype(np.float32)
    (root / "train").mkdir(parents=True)
    write_csv(root / "train" / "data.csv", features, labels)
    channels = {"train": ChannelData(root / "train", "text/csv")}
    train_builtin(
        "linear-learner",
        {"predictor_type": "binary_classifier", "feature_dim": str(FEATURES), "epochs": "3"},
        channels,
        root / "linear-learner",
        root / "out-ll",
        stream=io.StringIO(),
    )
    train_builtin(
        "xgboost",
        {"num_round": "50", "max_depth": "6", "objective": "binary:logistic"},
        channels,
        root / "xgboost",
        root / "out-xgb",
        stream=io.StringIO(),
    )
    return {"linear-learner": root / "linear-learner", "xgboost": root / "xgboost"}


def direct_invoke_us(algorithm_name: str, model_dir: Path, body: bytes) -> float:
    """The model's own time per request (parse, predict, encode), with no server in between."""
    algorithm = get_algorithm(algorithm_name)
    model = algorithm.load_model(model_dir)
    for _ in range(50):
        algorithm.invoke(model, body, "text/csv", "application/json")
    count = 500
    started = time.perf_counter()
    for _ in range(count):
        algorithm.invoke(model, body, "text/csv", "application/json")
    return (time.perf_counter() - started) / count * 1e6


# -- servers -------------------------------------------------------------------------------------


def start(command: list[str]) -> tuple[subprocess.Popen[str], str, int]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(LISTENING):
        process.kill()
        raise RuntimeError(f"{command} did not start: {line!r}")
    host, port = line[len(LISTENING) :].strip().removeprefix("http://").rsplit(":", 1)
    return process, host, int(port)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def serve_anchor(model_dir: Path, algorithm_name: str) -> None:
    """The anchor: FastAPI routing and request objects around the same ``algorithm.invoke``."""
    from forgeml.serving.worker import bind_socket, socket_url

    algorithm = get_algorithm(algorithm_name)
    model = algorithm.load_model(model_dir)
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> FastAPIResponse:
        return FastAPIResponse(status_code=200)

    @app.post("/invocations")
    async def invocations(request: Request) -> FastAPIResponse:
        body = await request.body()
        answer, answer_type = algorithm.invoke(
            model, body, request.headers.get("content-type", ""), request.headers.get("accept", "")
        )
        return FastAPIResponse(content=answer, media_type=answer_type)

    sock = bind_socket("127.0.0.1", 0)
    print(f"{LISTENING}{socket_url(sock)}", flush=True)
    uvicorn.Server(uvicorn.Config(app, access_log=False, log_level="warning")).run(sockets=[sock])


# -- client --------------------------------------------------------------------------------------


def request_bytes(port: int, body: bytes) -> bytes:
    head = (
        f"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: text/csv\r\n"
        f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def connection(host: str, port: int, request: bytes, remaining: list[int], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while remaining[0] > 0:
            remaining[0] -= 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"unexpected response: {head!r}")
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def load(host: str, port: int, request: bytes, total: int, concurrency: int) -> Cell:
    remaining = [total]
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(connection(host, port, request, remaining, latencies) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return Cell(quantiles[49] * 1e3, quantiles[98] * 1e3, len(latencies) / elapsed)


def run_load(host: str, port: int, request: bytes, total: int, concurrency: int) -> Cell:
    """Send ``total`` copies of a prepared HTTP request over ``concurrency`` connections."""
    try:
        import uvloop

        return uvloop.run(load(host, port, request, total, concurrency))
    except ImportError:
        return asyncio.run(load(host, port, request, total, concurrency))


# -- the run -------------------------------------------------------------------------------------


def bench_model(name: str, model_dir: Path, body: bytes) -> dict[int, tuple[Cell, Cell]]:
    ours_cmd = [sys.executable, "-m", "forgeml.serving.worker", "--model-dir", str(model_dir), "--algorithm", name, "--port", "0"]
    anchor_cmd = [sys.executable, __file__, "--anchor", str(model_dir), name]
    servers = {"ours": start(ours_cmd), "anchor": start(anchor_cmd)}
    try:
        for _, host, port in servers.values():
            run_load(host, port, request_bytes(port, body), WARMUP, 1)
        results: dict[int, tuple[Cell, Cell]] = {}
        for concurrency in CONCURRENCY:
            best: dict[str, Cell] = {}
            for round_index in range(ROUNDS):
                order = ("ours", "anchor") if round_index % 2 == 0 else ("anchor", "ours")
                for key in order:
                    _, host, port = servers[key]
                    cell = run_load(host, port, request_bytes(port, body), REQUESTS, concurrency)
                    if key not in best or cell.rps > best[key].rps:
                        best[key] = cell
            results[concurrency] = (best["ours"], best["anchor"])
        return results
    finally:
        for process, _, _ in servers.values():
            stop(process)


def main() -> None:
    from forgeml.serving.worker import server_implementation

    loop, http = server_implementation()
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        models = train_models(Path(tmp))
        body = ",".join(f"{v:.4f}" for v in np.random.default_rng(1).normal(size=FEATURES)).encode()
        for name, model_dir in models.items():
            invoke_us = direct_invoke_us(name, model_dir, body)
            for concurrency, (ours, anchor) in bench_model(name, model_dir, body).items():
                rows.append([name, f"{invoke_us:.0f}", concurrency, ours, anchor])
    print(f"\nsingle-record CSV, {REQUESTS} requests per cell, best of {ROUNDS} rounds; server: uvicorn + {loop} + {http}")
    print("invoke us = algorithm.invoke alone, in process; latencies in ms; ratio = our req/s / anchor req/s\n")
    header = f"{'model':<15}{'invoke us':>10}{'conc':>6} | {'p50 ours':>9}{'anchor':>8} | {'p99 ours':>9}{'anchor':>8} | {'req/s ours':>11}{'anchor':>8}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for name, invoke_us, concurrency, ours, anchor in rows:
        print(
            f"{name:<15}{invoke_us:>10}{concurrency:>6} | {ours.p50_ms:>9.3f}{anchor.p50_ms:>8.3f} | "
            f"{ours.p99_ms:>9.3f}{anchor.p99_ms:>8.3f} | {ours.rps:>11.0f}{anchor.rps:>8.0f}{ours.rps / anchor.rps:>7.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--anchor", nargs=2, metavar=("MODEL_DIR", "ALGORITHM"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.anchor:
        serve_anchor(Path(arguments.anchor[0]), arguments.anchor[1])
    else:
        main()
