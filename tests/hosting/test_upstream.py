"""The router's HTTP client to its workers: round trips against a real worker (``serve_in_thread``), and
against raw asyncio servers that misbehave on purpose (closing idle connections, hanging, cutting a
response short, chunking, HEAD). Every test runs on the plain asyncio loop and on uvloop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import uvloop

from forgeml.hosting.upstream import (
    UpstreamClosed,
    UpstreamConnectError,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTimeout,
)
from forgeml.serving.handlers import Response
from forgeml.serving.worker import WorkerApp, serve_in_thread

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, T]], T]

INVOCATIONS = b"/invocations"
MIB = 1024 * 1024


# -- a real worker -------------------------------------------------------------------------------


class EchoHandler:
    """Answers with the body upper-cased, in the Accept type; ``no content`` gets a 204."""

    def ping(self) -> bool:
        return True

    def invoke(
        self,
        body: bytes,
        content_type: str | None,
        accept: str | None,
        custom_attributes: str | None = None,
        *,
        inference_id: str | None = None,
    ) -> Response:
        if body == b"no content":
            return Response(b"", None, 204)
        attributes = f"seen={custom_attributes}" if custom_attributes is not None else None
        return Response(body.upper(), accept or content_type, 200, attributes)


class RecordingApp(WorkerApp):
    """The worker app, noting the client address (one per connection) of every HTTP request."""

    def __init__(self) -> None:
        super().__init__(EchoHandler(), offload="inline")
        self.clients: list[tuple[str, int]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.clients.append(tuple(scope["client"]))
        await super().__call__(scope, receive, send)


@pytest.fixture(scope="module")
def worker() -> Iterator[tuple[str, RecordingApp]]:
    app = RecordingApp()
    url, stop = serve_in_thread(app)
    yield url, app
    stop()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner[Any]:
    """Runs a coroutine to completion on a fresh loop of the parametrised kind, within 30 s."""
    factory = uvloop.new_event_loop if request.param == "uvloop" else None

    def runner(coroutine: Coroutine[Any, Any, T]) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(30):
                return await coroutine

        with asyncio.Runner(loop_factory=factory) as loop_runner:
            return loop_runner.run(bounded())

    return runner


async def invoke(
    pool: UpstreamPool, body: bytes, *headers: tuple[bytes, bytes], timeout: float = 10.0
) -> UpstreamResponse:
    return await pool.request(
        b"POST", INVOCATIONS, [(b"content-type", b"text/plain"), *headers], body, timeout
    )


# -- raw servers that misbehave ------------------------------------------------------------------

#: what a raw server does after writing its answer: keep the connection, close it, or hang until the client leaves
KEEP, CLOSE, HANG = "keep", "close", "hang"
Answer = Callable[[int, bytes, bytes], tuple[bytes, str]]


class RawServer:
    """A loopback asyncio server: ``answer(index on this connection, request head, body)`` says what to send."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.client_closed = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        if self._handlers:  # let every connection's handler see its end before the loop goes
            await asyncio.wait(self._handlers, timeout=5)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        index = 0
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                self.client_closed.set()
                writer.close()
                return
            self.requests.append(head)
            data, then = self.answer(index, head, body)
            index += 1
            writer.write(data)
            if then == CLOSE:
                await writer.drain()
                writer.close()
                return
            if then == HANG:  # never answer; only notice when the client gives up
                with contextlib.suppress(ConnectionError):
                    await reader.read()
                self.client_closed.set()
                writer.close()
                return


def ok(body: bytes = b"ok", *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n" % len(body)
    return head + b"".join(line + b"\r\n" for line in extra) + b"\r\n" + body


def refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- against the worker --------------------------------------------------------------------------


def test_round_trip_gives_status_body_and_headers(worker: tuple[str, RecordingApp], run: Runner[Any]) -> None:
    url, _ = worker

    async def scenario() -> UpstreamResponse:
        pool = UpstreamPool(url)
        try:
            return await invoke(pool, b"hello, worker", (b"accept", b"application/x-echo"))
        finally:
            await pool.close()

    response = run(scenario())
    assert response.status == 200
    assert response.body == b"HELLO, WORKER"
    assert response.header(b"content-type") == b"application/x-echo"
    assert response.header(b"content-length") == b"13"
    assert response.header(b"x-missing") is None
    assert all(name == name.lower() for name, _ in response.headers)


def test_custom_attributes_and_inference_id_pass_through(
    worker: tuple[str, RecordingApp], run: Runner[Any]
) -> None:
    url, _ = worker

    async def scenario() -> UpstreamResponse:
        pool = UpstreamPool(url)
        try:
            return await invoke(
                pool,
                b"x",
                (b"x-amzn-sagemaker-custom-attributes", b"trace=abc"),
                (b"x-amzn-sagemaker-inference-id", b"id-42"),
            )
        finally:
            await pool.close()

    response = run(scenario())
    assert response.header(b"x-amzn-sagemaker-custom-attributes") == b"seen=trace=abc"
    assert response.header(b"x-amzn-sagemaker-inference-id") == b"id-42"


def test_sequential_requests_share_one_connection(worker: tuple[str, RecordingApp], run: Runner[Any]) -> None:
    url, app = worker

    async def scenario() -> list[bytes]:
        pool = UpstreamPool(url)
        try:
            bodies = [(await invoke(pool, b"r%d" % i)).body for i in range(100)]
            assert pool.in_flight == 0
            return bodies
        finally:
            await pool.close()

    app.clients.clear()
    assert run(scenario()) == [b"R%d" % i for i in range(100)]
    assert len(app.clients) == 100
    assert len(set(app.clients)) == 1


def test_concurrent_requests_each_get_their_own_answer(
    worker: tuple[str, RecordingApp], run: Runner[Any]
) -> None:
    url, _ = worker

    async def scenario() -> tuple[int, list[bytes], int]:
        pool = UpstreamPool(url)
        try:
            tasks = [asyncio.ensure_future(invoke(pool, b"body-%d" % i)) for i in range(50)]
            await asyncio.sleep(0)  # every task has started and is waiting on the worker
            outstanding = pool.in_flight
            responses = await asyncio.gather(*tasks)
            return outstanding, [r.body for r in responses], pool.in_flight
        finally:
            await pool.close()

    outstanding, bodies, after = run(scenario())
    assert outstanding == 50
    assert bodies == [b"BODY-%d" % i for i in range(50)]
    assert after == 0


def test_at_most_max_idle_connections_are_kept(worker: tuple[str, RecordingApp], run: Runner[Any]) -> None:
    url, app = worker

    async def burst(pool: UpstreamPool, count: int) -> None:
        await asyncio.gather(*(invoke(pool, b"x") for _ in range(count)))

    async def scenario() -> tuple[set[tuple[str, int]], list[tuple[str, int]]]:
        pool = UpstreamPool(url, max_idle=4)
        try:
            await burst(pool, 20)
            first = set(app.clients)
            app.clients.clear()
            await burst(pool, 6)  # four take the idle connections, two connect
            return first, list(app.clients)
        finally:
            await pool.close()

    app.clients.clear()
    first, second = run(scenario())
    assert len(first) == 20
    assert len(second) == 6
    assert sum(client in first for client in second) == 4


def test_204_has_an_empty_body_and_keeps_the_connection(
    worker: tuple[str, RecordingApp], run: Runner[Any]
) -> None:
    url, app = worker

    async def scenario() -> tuple[UpstreamResponse, UpstreamResponse]:
        pool = UpstreamPool(url)
        try:
            return await invoke(pool, b"no content"), await invoke(pool, b"after")
        finally:
            await pool.close()

    app.clients.clear()
    empty, after = run(scenario())
    assert (empty.status, empty.body) == (204, b"")
    assert (after.status, after.body) == (200, b"AFTER")
    assert len(set(app.clients)) == 1


def test_five_mib_both_ways(worker: tuple[str, RecordingApp], run: Runner[Any]) -> None:
    url, _ = worker
    body = bytes(range(97, 123)) * (5 * MIB // 26)

    async def scenario() -> UpstreamResponse:
        pool = UpstreamPool(url)
        try:
            return await invoke(pool, body)
        finally:
            await pool.close()

    response = run(scenario())
    assert response.status == 200
    assert len(response.body) == len(body)
    assert response.body == body.upper()


def test_worker_errors_are_responses_not_exceptions(
    worker: tuple[str, RecordingApp], run: Runner[Any]
) -> None:
    url, _ = worker

    async def scenario() -> tuple[UpstreamResponse, UpstreamResponse]:
        pool = UpstreamPool(url)
        try:
            missing = await pool.request(b"GET", b"/nowhere", [], b"")
            ping = await pool.request(b"GET", b"/ping", [], b"")
            return missing, ping
        finally:
            await pool.close()

    missing, ping = run(scenario())
    assert missing.status == 404
    assert missing.body.startswith(b"not found")
    assert (ping.status, ping.body) == (200, b"")


# -- the request on the wire ---------------------------------------------------------------------


def test_pool_frames_the_request_and_passes_caller_headers(run: Runner[Any]) -> None:
    async def scenario() -> tuple[str, list[bytes]]:
        server = RawServer(lambda index, head, body: (ok(body), KEEP))
        async with server as url:
            pool = UpstreamPool(url)
            headers = [(b"X-Custom", b"Value 1"), (b"content-length", b"999"), (b"Host", b"elsewhere")]
            response = await pool.request(b"POST", b"/invocations?x=1", headers, b"abc")
            assert response.body == b"abc"
            await pool.request(b"GET", b"/ping", [], b"")
            await pool.close()
            return url, server.requests

    url, requests = run(scenario())
    host = url.removeprefix("http://").encode()
    assert requests[0] == (
        b"POST /invocations?x=1 HTTP/1.1\r\nhost: "
        + host
        + b"\r\ncontent-length: 3\r\nX-Custom: Value 1\r\n\r\n"
    )
    assert requests[1] == b"GET /ping HTTP/1.1\r\nhost: " + host + b"\r\n\r\n"


# -- connections the worker closes ---------------------------------------------------------------


def test_reused_connection_closed_by_the_worker_is_retried_transparently(run: Runner[Any]) -> None:
    def answer(index: int, head: bytes, body: bytes) -> tuple[bytes, str]:
        # the second request on a connection meets the worker closing it: nothing comes back
        return (ok(body), KEEP) if index == 0 else (b"", CLOSE)

    async def scenario() -> tuple[list[bytes], int, int]:
        server = RawServer(answer)
        async with server as url:
            pool = UpstreamPool(url)
            bodies = [(await invoke(pool, b"first")).body, (await invoke(pool, b"second")).body]
            in_flight = pool.in_flight
            await pool.close()
            return bodies, server.connections, in_flight

    bodies, connections, in_flight = run(scenario())
    assert bodies == [b"first", b"second"]
    assert connections == 2
    assert in_flight == 0


def test_connection_closed_while_idle_is_not_used_again(run: Runner[Any]) -> None:
    async def scenario() -> tuple[list[bytes], int]:
        server = RawServer(lambda index, head, body: (ok(body), CLOSE))  # keep-alive promised, then closed
        async with server as url:
            pool = UpstreamPool(url)
            first = await invoke(pool, b"one")
            await asyncio.sleep(0.05)  # the close reaches the idle connection
            second = await invoke(pool, b"two")
            await pool.close()
            return [first.body, second.body], server.connections

    bodies, connections = run(scenario())
    assert bodies == [b"one", b"two"]
    assert connections == 2


def test_idle_connections_older_than_idle_timeout_are_dropped(run: Runner[Any]) -> None:
    async def scenario() -> tuple[int, bool]:
        server = RawServer(lambda index, head, body: (ok(body), KEEP))
        async with server as url:
            pool = UpstreamPool(url, idle_timeout=0.05)
            await invoke(pool, b"one")
            await asyncio.sleep(0.15)
            await invoke(pool, b"two")
            await asyncio.wait_for(server.client_closed.wait(), 5)  # the stale one was closed by the pool
            await pool.close()
            return server.connections, server.client_closed.is_set()

    connections, closed = run(scenario())
    assert connections == 2
    assert closed


def test_connection_close_in_the_response_is_honoured(run: Runner[Any]) -> None:
    async def scenario() -> tuple[list[bytes], int]:
        server = RawServer(lambda index, head, body: (ok(body, b"connection: close"), KEEP))
        async with server as url:
            pool = UpstreamPool(url)
            bodies = [(await invoke(pool, b"a")).body, (await invoke(pool, b"b")).body]
            await pool.close()
            return bodies, server.connections

    bodies, connections = run(scenario())
    assert bodies == [b"a", b"b"]
    assert connections == 2


def test_http10_body_delimited_by_close(run: Runner[Any]) -> None:
    async def scenario() -> UpstreamResponse:
        server = RawServer(
            lambda index, head, body: (b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\n" + body, CLOSE)
        )
        async with server as url:
            pool = UpstreamPool(url)
            response = await invoke(pool, b"until the end")
            await pool.close()
            return response

    response = run(scenario())
    assert (response.status, response.body) == (200, b"until the end")


def test_an_answer_before_the_whole_body_is_sent_is_returned(run: Runner[Any]) -> None:
    refusal = b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\n\r\ntoo big!"

    async def scenario() -> tuple[UpstreamResponse, int]:
        body_bytes_read: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")  # the head only: the body is refused unread
            writer.write(refusal)
            await writer.drain()
            count = 0
            with contextlib.suppress(ConnectionError):
                while chunk := await reader.read(MIB):  # until the client stops sending
                    count += len(chunk)
            writer.close()
            body_bytes_read.set_result(count)

        server = await asyncio.start_server(refuse, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool(f"http://127.0.0.1:{port}")
        try:
            response = await invoke(pool, b"x" * (64 * MIB))
            return response, await asyncio.wait_for(body_bytes_read, 10)
        finally:
            await pool.close()
            server.close()
            await server.wait_closed()

    response, body_bytes_read = run(scenario())
    assert (response.status, response.body) == (413, b"too big!")
    assert body_bytes_read < 32 * MIB  # the pool stopped sending the refused body


# -- other framings ------------------------------------------------------------------------------


def test_chunked_response_is_reassembled_and_the_connection_kept(run: Runner[Any]) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: text/csv\r\n\r\n"
        b"5\r\nhello\r\n1\r\n,\r\n6\r\nworld!\r\n0\r\n\r\n"
    )

    async def scenario() -> tuple[list[UpstreamResponse], int]:
        server = RawServer(lambda index, head, body: (chunked, KEEP))
        async with server as url:
            pool = UpstreamPool(url)
            responses = [await invoke(pool, b"x"), await invoke(pool, b"y")]
            await pool.close()
            return responses, server.connections

    responses, connections = run(scenario())
    assert [r.body for r in responses] == [b"hello,world!", b"hello,world!"]
    assert responses[0].header(b"transfer-encoding") == b"chunked"
    assert connections == 1


def test_head_response_has_no_body_whatever_its_length(run: Runner[Any]) -> None:
    def answer(index: int, head: bytes, body: bytes) -> tuple[bytes, str]:
        if head.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n", KEEP
        return ok(b"after"), KEEP

    async def scenario() -> tuple[UpstreamResponse, UpstreamResponse, int]:
        server = RawServer(answer)
        async with server as url:
            pool = UpstreamPool(url)
            head = await pool.request(b"HEAD", b"/ping", [], b"")
            after = await pool.request(b"GET", b"/ping", [], b"")
            await pool.close()
            return head, after, server.connections

    head, after, connections = run(scenario())
    assert (head.status, head.body, head.header(b"content-length")) == (200, b"", b"7")
    assert after.body == b"after"
    assert connections == 1


def test_interim_100_continue_is_skipped(run: Runner[Any]) -> None:
    async def scenario() -> UpstreamResponse:
        server = RawServer(lambda index, head, body: (b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final"), KEEP))
        async with server as url:
            pool = UpstreamPool(url)
            response = await invoke(pool, b"x")
            await pool.close()
            return response

    response = run(scenario())
    assert (response.status, response.body) == (200, b"final")
    assert response.header(b"content-type") == b"text/plain"


# -- failures ------------------------------------------------------------------------------------


def test_connection_refused_is_a_retryable_connect_error(run: Runner[Any]) -> None:
    url = refused_url()

    async def scenario() -> None:
        pool = UpstreamPool(url)
        await invoke(pool, b"x")

    with pytest.raises(UpstreamConnectError) as caught:
        run(scenario())
    assert caught.value.retryable is True
    assert str(caught.value).startswith(f"cannot connect to {url}: ")


def test_a_worker_that_never_answers_times_out(run: Runner[Any]) -> None:
    async def scenario() -> tuple[UpstreamTimeout, int, list[bytes]]:
        server = RawServer(lambda index, head, body: (b"", HANG))
        async with server as url:
            pool = UpstreamPool(url)
            with pytest.raises(UpstreamTimeout) as caught:
                await invoke(pool, b"x", timeout=0.2)
            in_flight = pool.in_flight
            await asyncio.wait_for(server.client_closed.wait(), 5)  # the pool gave the connection up
            await pool.close()
            return caught.value, in_flight, server.requests

    error, in_flight, requests = run(scenario())
    assert error.retryable is False
    assert "within 0.2 s" in str(error)
    assert "http://127.0.0.1:" in str(error)
    assert in_flight == 0
    assert len(requests) == 1  # a timeout is not retried


def test_a_short_timeout_is_not_held_back_by_a_longer_one_outstanding(run: Runner[Any]) -> None:
    async def scenario() -> tuple[UpstreamTimeout, bool]:
        server = RawServer(lambda index, head, body: (b"", HANG))
        async with server as url:
            pool = UpstreamPool(url)
            patient = asyncio.ensure_future(invoke(pool, b"patient", timeout=25))
            while not server.requests:
                await asyncio.sleep(0.01)
            with pytest.raises(UpstreamTimeout) as caught:
                await invoke(pool, b"hasty", timeout=0.2)
            patient_waiting = not patient.done()
            patient.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await patient
            await pool.close()
            return caught.value, patient_waiting

    error, patient_waiting = run(scenario())
    assert "within 0.2 s" in str(error)
    assert patient_waiting


def test_a_worker_closing_mid_response_is_upstream_closed(run: Runner[Any]) -> None:
    cut_short = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part of it"

    async def scenario() -> tuple[UpstreamClosed, int]:
        server = RawServer(lambda index, head, body: (cut_short, CLOSE))
        async with server as url:
            pool = UpstreamPool(url)
            with pytest.raises(UpstreamClosed) as caught:
                await invoke(pool, b"x")
            await pool.close()
            return caught.value, server.connections

    error, connections = run(scenario())
    assert error.retryable is True
    assert "closed the connection in the middle of its response" in str(error)
    assert connections == 1


def test_fresh_connection_closed_before_answering_is_not_retried_by_the_pool(run: Runner[Any]) -> None:
    async def scenario() -> tuple[UpstreamClosed, int, str]:
        server = RawServer(lambda index, head, body: (b"", CLOSE))
        async with server as url:
            pool = UpstreamPool(url)
            with pytest.raises(UpstreamClosed) as caught:
                await invoke(pool, b"x")
            await pool.close()
            return caught.value, server.connections, url

    error, connections, url = run(scenario())
    assert str(error).startswith(f"{url} closed the connection before answering")
    assert error.retryable is True
    assert connections == 1


def test_malformed_response_is_an_upstream_error(run: Runner[Any]) -> None:
    async def scenario() -> UpstreamError:
        server = RawServer(lambda index, head, body: (b"NOT HTTP AT ALL\r\n\r\n", KEEP))
        async with server as url:
            pool = UpstreamPool(url)
            with pytest.raises(UpstreamError) as caught:
                await invoke(pool, b"x")
            await pool.close()
            return caught.value

    error = run(scenario())
    assert type(error) is UpstreamError
    assert error.retryable is False
    assert "sent a malformed HTTP response" in str(error)


def test_cancelled_request_does_not_leave_its_connection_in_the_pool(run: Runner[Any]) -> None:
    async def scenario() -> tuple[int, int, int]:
        def answer(index: int, head: bytes, body: bytes) -> tuple[bytes, str]:
            return (b"", HANG) if body == b"slow" else (ok(body), KEEP)

        server = RawServer(answer)
        async with server as url:
            pool = UpstreamPool(url)
            task = asyncio.ensure_future(invoke(pool, b"slow"))
            while not server.requests:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            in_flight = pool.in_flight
            await invoke(pool, b"next")
            await pool.close()
            return in_flight, server.connections, len(server.requests)

    in_flight, connections, requests = run(scenario())
    assert in_flight == 0
    assert connections == 2
    assert requests == 2


def test_close_closes_idle_connections_and_refuses_requests(run: Runner[Any]) -> None:
    async def scenario() -> tuple[UpstreamConnectError, bool]:
        server = RawServer(lambda index, head, body: (ok(body), KEEP))
        async with server as url:
            pool = UpstreamPool(url)
            await invoke(pool, b"x")
            await pool.close()
            await asyncio.wait_for(server.client_closed.wait(), 5)
            with pytest.raises(UpstreamConnectError) as caught:
                await invoke(pool, b"y")
            return caught.value, server.client_closed.is_set()

    error, closed = run(scenario())
    assert closed
    assert error.retryable is True
    assert str(error).startswith("the connection pool to http://127.0.0.1:")
    assert str(error).endswith(" is closed")


def test_pool_rejects_urls_it_cannot_serve() -> None:
    with pytest.raises(ValueError, match="must look like http://host:port"):
        UpstreamPool("https://127.0.0.1:8080")
    with pytest.raises(ValueError, match="max_idle must be at least 0"):
        UpstreamPool("http://127.0.0.1:8080", max_idle=-1)
    assert UpstreamPool("http://127.0.0.1:8080/").url == "http://127.0.0.1:8080"
