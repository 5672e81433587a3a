"""Benchmark: the router's hop to a worker, ``UpstreamPool`` beside aiohttp and httpx clients.

Run as ``python bench/bench_upstream.py`` from the repository root (under a minute).

A worker serving a trivial echo handler (the body back, no model) runs as a subprocess, so the
client measured here does not share a process or a GIL with the server. Each client sends
single-record ``POST /invocations`` requests over keep-alive connections from a uvloop event loop
(what the router runs on), sequentially and from 8 concurrent senders. Each cell is ``--requests``
requests after a warm-up, repeated ``--runs`` times with the clients taking turns; the table shows
the median requests/s, p50 latency and client CPU time per request (the cost the router pays
itself, whatever the worker's), and each client's throughput relative to ``UpstreamPool``. Client and worker share this machine's cores: the ratios are the comparable figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from forgeml.hosting.upstream import UpstreamPool  # noqa: E402
from forgeml.serving.worker import LISTENING  # noqa: E402

BODY = b"0.5,1.25,-3.0,4.75,0.0,2.5,-1.5,3.25,0.125,7.0"
HEADERS = {"content-type": "text/csv", "accept": "text/csv"}
CONCURRENCY = (1, 8)
WARMUP = 300

#: the worker subprocess: ``WorkerApp`` around a handler that answers with the request's body
WORKER_CODE = """
from forgeml.serving.handlers import Response
from forgeml.serving.worker import LISTENING, WorkerApp, serve

class Echo:
    def ping(self):
        return True

    def invoke(self, body, content_type, accept, custom_attributes=None, *, inference_id=None):
        return Response(body, accept or content_type)

serve(WorkerApp(Echo(), offload="inline"), host="127.0.0.1", port=0,
      on_listening=lambda url: print(f"{LISTENING} {url}", flush=True))
"""

Send = Callable[[], Awaitable[bytes]]


@dataclass
class Cell:
    rps: float
    p50_us: float
    cpu_us: float  # the client process's CPU time per request: what the router itself pays


# -- clients -------------------------------------------------------------------------------------


class Client(Protocol):
    """One HTTP client under test: ``send`` posts BODY once and returns the response body."""

    async def open(self, url: str) -> None: ...

    async def send(self) -> bytes: ...

    async def close(self) -> None: ...


class PoolClient:
    async def open(self, url: str) -> None:
        self.pool = UpstreamPool(url)
        self.headers = [(name.encode(), value.encode()) for name, value in HEADERS.items()]

    async def send(self) -> bytes:
        response = await self.pool.request(b"POST", b"/invocations", self.headers, BODY)
        if response.status != 200:
            raise RuntimeError(f"unexpected status {response.status}")
        return response.body

    async def close(self) -> None:
        await self.pool.close()


class AiohttpClient:
    async def open(self, url: str) -> None:
        self.url = f"{url}/invocations"
        self.session = aiohttp.ClientSession()

    async def send(self) -> bytes:
        async with self.session.post(self.url, data=BODY, headers=HEADERS) as response:
            if response.status != 200:
                raise RuntimeError(f"unexpected status {response.status}")
            return await response.read()

    async def close(self) -> None:
        await self.session.close()


class HttpxClient:
    async def open(self, url: str) -> None:
        self.url = f"{url}/invocations"
        self.client = httpx.AsyncClient()

    async def send(self) -> bytes:
        response = await self.client.post(self.url, content=BODY, headers=HEADERS)
        if response.status_code != 200:
            raise RuntimeError(f"unexpected status {response.status_code}")
        return response.content

    async def close(self) -> None:
        await self.client.aclose()


# -- measuring -----------------------------------------------------------------------------------


async def sender(send: Send, remaining: list[int], latencies: list[float]) -> None:
    clock = time.perf_counter
    while remaining[0] > 0:
        remaining[0] -= 1
        started = clock()
        if await send() != BODY:
            raise RuntimeError("the echo came back different")
        latencies.append(clock() - started)


async def measure(client: Client, url: str, total: int, concurrency: int) -> Cell:
    await client.open(url)
    try:
        await sender(client.send, [WARMUP], [])
        remaining = [total]
        latencies: list[float] = []
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(sender(client.send, remaining, latencies) for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    finally:
        await client.close()
    count = len(latencies)
    return Cell(count / elapsed, statistics.median(latencies) * 1e6, cpu / count * 1e6)


def start_worker() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER_CODE], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(LISTENING):
        process.kill()
        raise RuntimeError(f"the echo worker did not start: {line!r}")
    return process, line[len(LISTENING) :].strip()


def stop_worker(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="requests per cell (default 3000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per cell; the median is shown (default 3)")
    arguments = parser.parse_args()
    clients: list[tuple[str, Callable[[], Client]]] = [
        ("UpstreamPool", PoolClient),
        ("aiohttp", AiohttpClient),
        ("httpx", HttpxClient),
    ]
    process, url = start_worker()
    cells: dict[tuple[str, int], list[Cell]] = {}
    try:
        for concurrency in CONCURRENCY:
            for run_index in range(arguments.runs):
                order = clients if run_index % 2 == 0 else clients[::-1]
                for name, make in order:
                    cell = uvloop.run(measure(make(), url, arguments.requests, concurrency))
                    cells.setdefault((name, concurrency), []).append(cell)
    finally:
        stop_worker(process)

    print(
        f"\nPOST /invocations to an echo worker (subprocess), {arguments.requests} requests per cell, "
        f"median of {arguments.runs} runs; client on uvloop"
    )
    header = f"{'client':<14}{'conc':>5} | {'req/s':>8}{'p50 us':>9}{'client CPU us':>15}{'vs pool':>9}"
    print(header)
    print("-" * len(header))
    for concurrency in CONCURRENCY:
        pool_rps = statistics.median(c.rps for c in cells[("UpstreamPool", concurrency)])
        for name, _ in clients:
            runs = cells[(name, concurrency)]
            rps = statistics.median(c.rps for c in runs)
            p50 = statistics.median(c.p50_us for c in runs)
            cpu = statistics.median(c.cpu_us for c in runs)
            print(f"{name:<14}{concurrency:>5} | {rps:>8.0f}{p50:>9.0f}{cpu:>15.1f}{rps / pool_rps:>9.2f}")


if __name__ == "__main__":
    main()
