"""The model server worker: one instance of one production variant, like a SageMaker container.

It serves one model: a single container (``--model-dir``), or an inference pipeline whose
containers run in sequence (``--containers``, see ``forgeml.serving.pipeline``).

``WorkerApp`` is a raw ASGI callable (no framework routing: a request costs two dict lookups, one
pass over the headers and the handler call) serving the container contract:

* ``GET /ping``: 200 with an empty body once the model is loaded;
* ``POST /invocations``: the body, ``Content-Type``, ``Accept``,
  ``X-Amzn-SageMaker-Custom-Attributes`` and ``X-Amzn-SageMaker-Inference-Id`` go to the handler;
  its status, body, content type and custom attributes come back, with the inference id echoed.
  A body over ``SAGEMAKER_MAX_PAYLOAD_IN_MB`` (default 6 MiB, InvokeEndpoint's limit) is a 413,
  refused from ``Content-Length`` before it is read.

The model is called inline on the event loop: one record takes microseconds, far less than a hop
to a thread. In the default ``auto`` mode, once ``SLOW_STREAK`` calls in a row have each taken
over a threshold (5 ms), every later call runs on one dedicated thread instead, so ``/ping`` and
new connections are still answered while a slow model works. The move is one-way: native
libraries keep per-thread state (OpenMP thread teams in XGBoost, for one), and a model called from
two threads in turn was measured a third slower per call on a 2-core machine. Calls never overlap,
so the model and user code need not be thread-safe.

Run it as ``python -m forgeml.serving.worker --model-dir DIR [--algorithm NAME] --host H --port P``
(``--port 0`` picks a free port), or with ``--containers FILE`` instead of ``--model-dir``: a JSON
list of container specs (``ModelDir``, ``Algorithm``, ``Environment``, ``Hostname``, as
``forgeml.serving.model_setup.ContainerSpec`` writes them), each container's Environment laid
over the worker's own variables. Its first stdout line is ``forgeml-worker listening on URL``,
printed once the model is loaded and the socket is accepting; a model that cannot load exits 1
with the reason on stderr. SIGTERM (or SIGINT) stops accepting, lets in-flight requests finish
(up to ``--graceful-timeout`` seconds, within SageMaker's 30 s before SIGKILL) and exits 0.
``start_worker`` runs it so from Python (a supervisor, tests); ``serve_in_thread`` serves a handler
on a background thread of the calling process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import uvicorn

from forgeml.serving.handlers import (
    TEXT_PLAIN,
    InferenceHandler,
    ModelLoadError,
    Response,
    error_response,
    load_handler,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MIB = 1024 * 1024
MAX_PAYLOAD_BYTES = 6 * MIB
LISTENING = "forgeml-worker listening on"
OFFLOAD_MODES = ("auto", "inline", "thread")
#: consecutive calls over the threshold that move an ``auto`` worker's model calls to a thread
SLOW_STREAK = 8

CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"
INFERENCE_ID = b"x-amzn-sagemaker-inference-id"
_TEXT = TEXT_PLAIN.encode()

log = logging.getLogger("forgeml.serving")


class WorkerApp:
    """The ASGI app serving one handler."""

    def __init__(
        self,
        handler: InferenceHandler,
        *,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        offload: str = "auto",
        offload_threshold_ms: float = 5.0,
    ) -> None:
        if offload not in OFFLOAD_MODES:
            raise ValueError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, not {offload!r}")
        self.handler = handler
        self.max_payload_bytes = max_payload_bytes
        self._watching = offload == "auto"  # timing calls, to move a slow model to a thread once
        self._threshold = offload_threshold_ms / 1000.0
        self._slow_streak = 0
        self._offloading = offload == "thread"
        self._executor: ThreadPoolExecutor | None = None

    @property
    def offloading(self) -> bool:
        """Whether new calls go to the model thread (always in ``thread`` mode)."""
        return self._offloading

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            method = scope["method"]
            if path == "/invocations":
                if method == "POST":
                    await self._invocations(scope, receive, send)
                else:
                    await _reply(send, 405, b"/invocations takes POST", [(b"allow", b"POST")])
            elif path == "/ping":
                if method in ("GET", "HEAD"):
                    await self._ping(send)
                else:
                    await _reply(send, 405, b"/ping takes GET", [(b"allow", b"GET, HEAD")])
            else:
                await _reply(send, 404, b"not found: the worker serves GET /ping and POST /invocations")
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _ping(self, send: Send) -> None:
        try:
            healthy = self.handler.ping()
        except Exception:
            log.exception("ping failed")
            healthy = False
        await send({"type": "http.response.start", "status": 200 if healthy else 500, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = accept = custom_attributes = None
        inference_id: bytes | None = None
        declared = -1
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
            elif name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"content-length":
                declared = int(value) if value.isdigit() else -1
            elif name == CUSTOM_ATTRIBUTES:
                custom_attributes = value.decode("latin-1")
            elif name == INFERENCE_ID:
                inference_id = value
        if declared > self.max_payload_bytes:
            await self._too_large(send, declared)
            return
        body = await self._read_body(receive, send)
        if body is None:
            return
        response = await self._call(body, content_type, accept, custom_attributes, inference_id)
        headers = []
        if response.content_type:
            headers.append((b"content-type", response.content_type.encode("latin-1", "replace")))
        if response.status != 204:
            headers.append((b"content-length", str(len(response.body)).encode()))
        if response.custom_attributes is not None:
            headers.append((CUSTOM_ATTRIBUTES, response.custom_attributes.encode("latin-1", "replace")))
        if inference_id is not None:
            headers.append((INFERENCE_ID, inference_id))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once answered 413 (or when the client went away)."""
        message = await receive()
        if message["type"] != "http.request":
            return None
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False) and len(body) <= self.max_payload_bytes:
            return body
        chunks = [body]
        size = len(body)
        while size <= self.max_payload_bytes and message.get("more_body", False):
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
        if size > self.max_payload_bytes:
            await self._too_large(send, size, complete=not message.get("more_body", False))
            return None
        return b"".join(chunks)

    async def _too_large(self, send: Send, size: int, complete: bool = True) -> None:
        amount = f"{size} bytes" if complete else f"at least {size} bytes"
        message = (
            f"the request body is {amount}, over the limit of {self.max_payload_bytes} bytes "
            f"({self.max_payload_bytes / MIB:g} MiB) on an invocation payload"
        )
        await _reply(send, 413, message.encode())

    async def _call(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None,
        inference_id: bytes | None,
    ) -> Response:
        request_id = inference_id.decode("latin-1") if inference_id is not None else None
        if not self._offloading:
            return self._invoke(body, content_type, accept, custom_attributes, request_id)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forgeml-model")
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._invoke, body, content_type, accept, custom_attributes, request_id
        )

    def _invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None,
        inference_id: str | None,
    ) -> Response:
        started = time.perf_counter()
        try:
            response = self.handler.invoke(body, content_type, accept, custom_attributes, inference_id=inference_id)
        except Exception as exc:  # a handler should answer errors itself; one that raises still gets a 500
            response = error_response(exc)
        if self._watching:
            elapsed = time.perf_counter() - started
            self._slow_streak = self._slow_streak + 1 if elapsed > self._threshold else 0
            if self._slow_streak >= SLOW_STREAK:
                self._watching = False
                self._offloading = True
                log.info(
                    "%d model calls in a row took over %.1f ms: running model calls on a thread from now on",
                    SLOW_STREAK,
                    self._threshold * 1e3,
                )
        return response

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._executor is not None:
                    self._executor.shutdown(wait=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _reply(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", _TEXT), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


# -- running it ----------------------------------------------------------------------------------


def payload_limit(environment: Mapping[str, str]) -> int:
    """Bytes allowed in a request body: ``SAGEMAKER_MAX_PAYLOAD_IN_MB`` MiB, else 6 MiB."""
    value = environment.get("SAGEMAKER_MAX_PAYLOAD_IN_MB")
    if not value:
        return MAX_PAYLOAD_BYTES
    try:
        megabytes = float(value)
    except ValueError:
        raise ModelLoadError(f"SAGEMAKER_MAX_PAYLOAD_IN_MB must be a number, not {value!r}") from None
    if megabytes <= 0:
        raise ModelLoadError(f"SAGEMAKER_MAX_PAYLOAD_IN_MB must be positive, not {value!r}")
    return int(megabytes * MIB)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket, bound before serving so that port 0 can be reported.

    The protocol is named explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose
    ``proto`` is IPPROTO_TCP, and without it the response's header and body writes meet Nagle's
    algorithm and delayed ACKs (40 ms per request on the plain asyncio loop).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def server_implementation() -> tuple[str, str]:
    """The event loop and HTTP parser uvicorn's ``auto`` picks: uvloop/httptools when installed."""
    import importlib.util

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


class _Server(uvicorn.Server):
    """uvicorn's server, telling its caller once the socket is being served."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_started is not None:
            self._on_started()


def _server(
    app: WorkerApp,
    on_started: Callable[[], None] | None,
    *,
    log_level: str = "warning",
    graceful_timeout: int = 25,
    keep_alive_timeout: int = 60,
    loop: str = "auto",
    http: str = "auto",
) -> _Server:
    config = uvicorn.Config(
        app,
        loop=loop,
        http=http,
        interface="asgi3",
        lifespan="on",
        log_config=None,
        log_level=log_level,
        access_log=False,
        server_header=False,
        date_header=False,
        timeout_keep_alive=keep_alive_timeout,
        timeout_graceful_shutdown=graceful_timeout,
    )
    return _Server(config, on_started)


def serve(
    app: WorkerApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    on_listening: Callable[[str], None] | None = None,
    **server_options: Any,
) -> None:
    """Serve in this thread until SIGTERM/SIGINT (from the main thread) or a stop; then return."""
    sock = bind_socket(host, port)
    url = socket_url(sock)
    server = _server(app, (lambda: on_listening(url)) if on_listening else None, **server_options)
    # uvicorn handles SIGTERM/SIGINT while it serves, then re-raises the signal through the handler
    # installed before it: this one, which asks for a stop (a signal in the moment before uvicorn
    # takes over still stops it) and otherwise lets a SIGTERM stop end in a normal exit.
    def stop_requested(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    main_thread = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, stop_requested) for sig in signals} if main_thread else {}
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_in_thread(
    handler: InferenceHandler | WorkerApp,
    host: str = "127.0.0.1",
    port: int = 0,
    **server_options: Any,
) -> tuple[str, Callable[[], None]]:
    """Serve on a background thread (for tests and embedding): returns the URL and a stop function.

    The stop function shuts down gracefully (in-flight requests finish) and waits for the thread.
    """
    app = handler if isinstance(handler, WorkerApp) else WorkerApp(handler)
    sock = bind_socket(host, port)
    started = threading.Event()
    server = _server(app, started.set, **server_options)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="forgeml-worker", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not started.wait(0.02):
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the worker thread did not start serving")

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()

    return socket_url(sock), stop


# -- as a subprocess -----------------------------------------------------------------------------


class WorkerStartError(RuntimeError):
    """The worker process exited, or said nothing, before listening; the message ends with its output."""


@dataclass
class WorkerProcess:
    """A worker subprocess and its URL; ``output`` keeps its latest lines (stdout and stderr)."""

    process: subprocess.Popen[bytes]
    url: str
    output: deque[str]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (in-flight requests finish), SIGKILL after ``timeout``; the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def start_worker(
    model_dir: Path | None = None,
    *,
    containers: Path | None = None,
    algorithm: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    environment: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    timeout: float = 120.0,
    on_output: Callable[[str], None] | None = None,
) -> WorkerProcess:
    """Start ``python -m forgeml.serving.worker`` and wait until it listens (or fails).

    It serves either ``model_dir`` (one container, ``algorithm`` naming a built-in one) or the
    ``containers`` spec file of an inference pipeline, never both. ``environment`` is the
    container's Environment (a pipeline's: the variables every container shares), laid over this
    process's own variables. ``on_output`` gets every line the worker prints (stdout and stderr),
    from a reader thread, for as long as it runs.
    """
    if (model_dir is None) == (containers is None):
        raise ValueError("start_worker serves exactly one of model_dir (one container) and containers (a pipeline)")
    if containers is not None and algorithm:
        raise ValueError("algorithm goes with model_dir: each container of a pipeline names its own")
    model = ["--model-dir", str(model_dir)] if model_dir is not None else ["--containers", str(containers)]
    command = [sys.executable, "-m", "forgeml.serving.worker", *model, "--host", host]
    command += ["--port", str(port), *(["--algorithm", algorithm] if algorithm else []), *args]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(environment or {})},
    )
    output: deque[str] = deque(maxlen=200)
    listening: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None and process.stderr is not None
    readers = [
        threading.Thread(target=_drain, args=(process.stdout, output, listening, on_output), daemon=True),
        threading.Thread(target=_drain, args=(process.stderr, output, None, on_output), daemon=True),
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + timeout
    while True:
        with suppress(queue.Empty):  # not listening yet: check the process and the clock, then wait again
            return WorkerProcess(process, listening.get(timeout=0.05), output)
        if process.poll() is not None or time.monotonic() > deadline:
            status = process.poll()
            if status is None:
                process.kill()
                process.wait()
            for reader in readers:
                reader.join(timeout=2)
            reason = f"exited with status {status}" if status is not None else f"did not listen within {timeout:g} s"
            raise WorkerStartError(f"the model server worker {reason}:\n" + "\n".join(output))


def _drain(stream: IO[bytes], output: deque[str], listening: queue.Queue[str] | None,
           on_output: Callable[[str], None] | None) -> None:
    """Keep a pipe flowing (a full pipe would stall the worker), handing on the listening line."""
    for raw in stream:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if listening is not None and line.startswith(LISTENING):
            listening.put(line[len(LISTENING) :].strip())
            listening = None
        else:
            output.append(line)
        if on_output is not None:
            on_output(line)


# -- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m forgeml.serving.worker",
        description="Serve one model over SageMaker's container contract (GET /ping, POST /invocations).",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--model-dir", type=Path, help="the extracted model (SageMaker's /opt/ml/model)")
    model.add_argument(
        "--containers", type=Path, help="an inference pipeline: a JSON list of container specs, served in sequence"
    )
    parser.add_argument("--model-data", type=Path, help="a model.tar.gz to extract into --model-dir first")
    parser.add_argument("--algorithm", help="a built-in algorithm's registry name or image URI; omit for custom code")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=None, help="0 picks a free port (default: $SAGEMAKER_BIND_TO_PORT or 8080)"
    )
    parser.add_argument("--offload", choices=OFFLOAD_MODES, default="auto", help="where the model runs (default auto)")
    parser.add_argument(
        "--offload-threshold-ms", type=float, default=5.0, help="auto mode: call time that, repeated, moves calls to a thread"
    )
    parser.add_argument("--graceful-timeout", type=int, default=25, help="seconds in-flight requests get after SIGTERM")
    parser.add_argument("--keep-alive-timeout", type=int, default=60, help="seconds an idle connection stays open")
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop (as on SIGTERM) when the process that started this one is gone")
    args = parser.parse_args(argv)
    if args.containers is not None and (args.model_data is not None or args.algorithm):
        parser.error("--model-data and --algorithm go with --model-dir; each of --containers names its own")
    return args


def _load_model(args: argparse.Namespace, environment: Mapping[str, str]) -> InferenceHandler:
    """The handler for ``--model-dir``, or the pipeline of ``--containers``."""
    if args.containers is None:
        return load_handler(args.model_dir, algorithm=args.algorithm, environment=environment)
    from forgeml.serving.pipeline import load_pipeline, read_container_specs

    return load_pipeline(read_container_specs(args.containers), environment=environment)


def exit_with_parent(poll: float = 1.0) -> None:
    """SIGTERM this process once its parent is gone, so a killed endpoint host leaves no worker behind."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="forgeml-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.exit_with_parent:
        exit_with_parent()
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    environment = dict(os.environ)
    try:
        if args.model_data is not None:
            from forgeml.runtime.packaging import extract_tarball

            try:
                extract_tarball(args.model_data, args.model_dir)
            except Exception as exc:
                raise ModelLoadError(f"could not extract {args.model_data}: {exc}") from exc
        # whatever user code prints while loading goes to stderr: the listening line stays first
        with contextlib.redirect_stdout(sys.stderr):
            handler = _load_model(args, environment)
        app = WorkerApp(
            handler,
            max_payload_bytes=payload_limit(environment),
            offload=args.offload,
            offload_threshold_ms=args.offload_threshold_ms,
        )
    except ModelLoadError as exc:
        print(f"forgeml-worker: {exc}", file=sys.stderr, flush=True)
        return 1
    port = args.port if args.port is not None else int(environment.get("SAGEMAKER_BIND_TO_PORT") or 8080)
    try:
        serve(
            app,
            host=args.host,
            port=port,
            on_listening=lambda url: print(f"{LISTENING} {url}", flush=True),
            log_level=args.log_level,
            graceful_timeout=args.graceful_timeout,
            keep_alive_timeout=args.keep_alive_timeout,
        )
    except OSError as exc:
        print(f"forgeml-worker: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
