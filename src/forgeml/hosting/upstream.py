"""Keep-alive HTTP/1.1 connections from an endpoint's router to one model-server worker.

Every invocation crosses this hop on loopback, so it has to cost tens of microseconds, which a
general-purpose client (httpx, aiohttp) does not manage. Here a connection is an ``asyncio.Protocol``
that feeds received bytes straight into its own ``httptools`` response parser; a request is one
encoded write and one future, which the parsed response resolves. Nothing is logged per request, the
parser is made once per connection (llhttp resets it between responses), and timeouts share one
timer per pool rather than arming one per request.

One request at a time per connection, no pipelining. After a complete response a connection goes
back to the pool's idle list (most recently used first) unless the worker said it would close it.
A worker closes a connection idle for 60 s, so the pool drops idle connections older than
``idle_timeout`` (50 s) before using them; and when the worker closed a reused connection just as a
request went out (nothing came back), the request is sent again on a fresh connection, since the
worker cannot have seen it. Every failure is an ``UpstreamError`` naming the worker's URL, never a
raw ``OSError`` or asyncio exception, and says whether the router may retry it on another instance.

A pool belongs to the event loop that first uses it (uvloop or the plain asyncio loop).
"""

from __future__ import annotations

import asyncio
import math
import socket
from contextlib import suppress
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

#: bodies up to this size are copied behind the request head and sent in one write
_SINGLE_WRITE_BYTES = 64 * 1024
#: request headers the pool writes itself; a caller's copies would frame the body twice
_FRAMING_HEADERS = frozenset({b"host", b"content-length", b"transfer-encoding"})
#: a timer may fire this early (loops round to their clock's resolution) and still count as on time
_TIMER_SLACK = 0.001
#: methods whose empty body goes without a Content-Length, as user agents send them
_BODILESS_METHODS = frozenset({b"GET", b"HEAD", b"DELETE", b"OPTIONS", b"TRACE"})


class UpstreamError(Exception):
    """The worker did not give a complete response."""

    #: True when the router may send the request to another instance (see the subclasses)
    retryable: bool = False


class UpstreamConnectError(UpstreamError):
    """No connection: refused, unreachable, or not made within the connect timeout; nothing was sent."""

    retryable = True


class UpstreamClosed(UpstreamError):
    """The connection was lost before a complete response; inference is idempotent, so it may be retried."""

    retryable = True


class UpstreamTimeout(UpstreamError):
    """No complete response within the timeout: the worker may still be working on the request."""

    retryable = False


@dataclass(slots=True)
class UpstreamResponse:
    """A complete response; header names are lower-cased and kept in the order received."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        """The first value of the header called ``name`` (lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class _Connection(asyncio.Protocol):
    """One connection: sends a request, parses its response, then waits in the pool's idle list."""

    __slots__ = (
        "url",
        "idle_since",
        "closed",
        "deadline",
        "pooled",
        "received",
        "reusable",
        "timeout",
        "transport",
        "waiter",
        "_body",
        "_forget",
        "_head_only",
        "_headers",
        "_headers_done",
        "_loop",
        "_parser",
        "_parser_spent",
        "_status",
    )

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, forget: _Forget) -> None:
        self.url = url
        self._loop = loop
        self._forget = forget
        self._parser = httptools.HttpResponseParser(self)
        self._parser_spent = False
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[UpstreamResponse] | None = None
        self.idle_since = 0.0
        self.deadline = 0.0  # loop time by which the current request must be answered
        self.timeout = 0.0
        self.closed = False  # connection_lost has run
        self.pooled = False  # in the idle list
        self.reusable = True
        self.received = False  # a byte of the current response has arrived
        self._head_only = False
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._headers_done = False

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # one request is one write, but a large body is two: never let Nagle hold the second back
            with suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # bytes nobody asked for: this connection's framing can't be trusted
            self.reusable = False
            self.abort()
            return
        self.received = True
        try:
            self._parser.feed_data(data)
        except Exception as exc:
            self._fail(UpstreamError(f"{self.url} sent a malformed HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self.waiter is None:
            if self.pooled:
                self._forget(self)
            return
        if exc is None and self._headers_done and self._delimited_by_close():
            self._finish(keep_alive=False)
            return
        if not self.received:
            reason = "closed the connection before answering"
        else:
            reason = "closed the connection in the middle of its response"
        detail = f" ({exc})" if exc is not None and str(exc) else ""
        self._fail(UpstreamClosed(f"{self.url} {reason}{detail}"))

    # -- httptools callbacks -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.waiter is None:  # a second response in the same read: nothing was asked for it
            self.reusable = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        self._headers_done = True
        if self._head_only and self._status >= 200 and self.waiter is not None:
            # a HEAD response has no body whatever its Content-Length says, which the parser cannot
            # know: answer now and give the next request a fresh parser
            self._parser_spent = True
            self._finish(keep_alive=self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self.waiter is None:
            return
        if self._status < 200:  # an interim answer (100 Continue): the real one follows
            self._headers = []
            self._body = []
            self._headers_done = False
            return
        self._finish(keep_alive=self._parser.should_keep_alive())

    # -- used by the pool --------------------------------------------------------------------------

    def send(
        self, head: bytes, tail: bytes | None, head_only: bool, deadline: float, timeout: float
    ) -> asyncio.Future[UpstreamResponse]:
        """Write one request (``tail``: a large body sent after ``head``); the future gets its response."""
        self.deadline = deadline
        self.timeout = timeout
        if self._parser_spent:
            self._parser = httptools.HttpResponseParser(self)
            self._parser_spent = False
        self._status = 0
        self._headers = []
        self._body = []
        self._headers_done = False
        self._head_only = head_only
        self.received = False
        waiter: asyncio.Future[UpstreamResponse] = self._loop.create_future()
        self.waiter = waiter
        transport = self.transport
        if transport is None:  # only a connected protocol reaches the pool; kept for the type checker
            self._fail(UpstreamClosed(f"{self.url}: the connection is not open"))
            return waiter
        try:
            transport.write(head)
            if tail is not None:
                transport.write(tail)
        except (RuntimeError, OSError) as exc:  # uvloop refuses writes on a closed handle
            self._fail(UpstreamClosed(f"{self.url} closed the connection before answering ({exc})"))
        return waiter

    def time_out(self) -> None:
        """The request's deadline passed: give up on the connection (the worker may still answer)."""
        if self.waiter is not None:
            self._fail(UpstreamTimeout(f"no complete response from {self.url} within {self.timeout:g} s"))

    def unsent(self) -> int:
        """Bytes of the request still waiting in the transport's buffer."""
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    # -- internals ---------------------------------------------------------------------------------

    def _finish(self, keep_alive: bool) -> None:
        waiter = self.waiter
        if waiter is None:
            return
        self.waiter = None
        if not keep_alive:
            self.reusable = False
        chunks = self._body
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if not waiter.done():
            waiter.set_result(UpstreamResponse(self._status, self._headers, body))

    def _fail(self, error: UpstreamError) -> None:
        waiter = self.waiter
        self.waiter = None
        self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _delimited_by_close(self) -> bool:
        """Whether the response being read ends where the connection does (no length, not chunked)."""
        if self._head_only or self._status in (204, 304):
            return False
        return not any(name in (b"content-length", b"transfer-encoding") for name, _ in self._headers)


class _Forget:
    """Drops a connection from a pool's idle list when the worker closes it (no reference cycle to the pool)."""

    __slots__ = ("idle",)

    def __init__(self, idle: list[_Connection]) -> None:
        self.idle = idle

    def __call__(self, connection: _Connection) -> None:
        connection.pooled = False
        with suppress(ValueError):
            self.idle.remove(connection)


class UpstreamPool:
    """Keep-alive connections to one worker (http://host:port)."""

    def __init__(
        self,
        url: str,
        *,
        max_idle: int = 64,
        connect_timeout: float = 2.0,
        idle_timeout: float = 50.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"an upstream URL must look like http://host:port, not {url!r}")
        if max_idle < 0:
            raise ValueError(f"max_idle must be at least 0, not {max_idle}")
        if connect_timeout <= 0 or idle_timeout <= 0:
            raise ValueError("connect_timeout and idle_timeout must be positive")
        self.url = f"http://{parts.netloc}"
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self._host = parts.hostname
        self._port = parts.port or 80
        self._host_header = parts.netloc.rpartition("@")[2].encode("idna")
        self._idle: list[_Connection] = []
        self._forget = _Forget(self._idle)
        self._in_flight = 0
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # one timer for every outstanding request, armed at the earliest deadline (see _sweep)
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._sweep_at = math.inf

    @property
    def in_flight(self) -> int:
        """Requests currently outstanding on this pool."""
        return self._in_flight

    async def request(
        self,
        method: bytes,
        path: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeout: float = 60.0,
    ) -> UpstreamResponse:
        """Send one request and return the worker's complete response; raises only UpstreamError."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._adopt(loop)
        if self._closed:
            raise UpstreamConnectError(f"the connection pool to {self.url} is closed")
        head, tail = self._encode(method, path, headers, body)
        head_only = method == b"HEAD"
        now = loop.time()
        deadline = now + timeout
        self._in_flight += 1
        try:
            connection = self._take_idle(now)
            if connection is not None:
                try:
                    return await self._exchange(connection, head, tail, head_only, deadline, timeout)
                except UpstreamClosed:
                    if connection.received:
                        raise
                    # the worker closed this idle connection as the request went out: it never saw it
            connection = await self._connect(loop, deadline, timeout)
            return await self._exchange(connection, head, tail, head_only, deadline, timeout)
        finally:
            self._in_flight -= 1

    async def close(self) -> None:
        """Close the idle connections; in-flight requests finish, then their connections close too."""
        self._closed = True
        idle = list(self._idle)
        self._idle.clear()
        for connection in idle:
            connection.pooled = False
            connection.close()
        if idle:
            await asyncio.sleep(0)  # let the transports finish closing

    # -- internals ---------------------------------------------------------------------------------

    def _encode(
        self, method: bytes, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[bytes, bytes | None]:
        """The request's bytes: the head (with the body behind it when small) and a large body apart."""
        if body or method not in _BODILESS_METHODS:
            first = b"%s %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n" % (
                method,
                path,
                self._host_header,
                len(body),
            )
        else:
            first = b"%s %s HTTP/1.1\r\nhost: %s\r\n" % (method, path, self._host_header)
        parts = [first]
        append = parts.append
        for name, value in headers:
            if name.lower() not in _FRAMING_HEADERS:
                append(b"%s: %s\r\n" % (name, value))
        append(b"\r\n")
        if len(body) <= _SINGLE_WRITE_BYTES:
            append(body)
            return b"".join(parts), None
        return b"".join(parts), body

    def _take_idle(self, now: float) -> _Connection | None:
        idle = self._idle
        while idle:
            connection = idle.pop()
            connection.pooled = False
            if now - connection.idle_since > self.idle_timeout:
                # the most recently used connection is too old, so every one below it is as well
                for stale in (connection, *idle):
                    stale.pooled = False
                    stale.close()
                idle.clear()
                return None
            transport = connection.transport
            if not connection.closed and transport is not None and not transport.is_closing():
                return connection
        return None

    def _release(self, connection: _Connection, now: float) -> None:
        if self._closed or not connection.reusable or connection.closed or len(self._idle) >= self.max_idle:
            connection.close()
            return
        connection.idle_since = now
        connection.pooled = True
        self._idle.append(connection)

    async def _exchange(
        self,
        connection: _Connection,
        head: bytes,
        tail: bytes | None,
        head_only: bool,
        deadline: float,
        timeout: float,
    ) -> UpstreamResponse:
        waiter = connection.send(head, tail, head_only, deadline, timeout)
        busy = self._busy
        busy.add(connection)
        if deadline < self._sweep_at:
            self._arm_sweep(deadline)
        try:
            response = await waiter
        except BaseException:
            connection.abort()  # failed or cancelled halfway: the connection is mid-message
            raise
        finally:
            busy.discard(connection)
        if tail is not None and connection.unsent():
            # answered before the body was all sent (a 413 from Content-Length): don't send the rest
            connection.abort()
        self._release(connection, connection._loop.time())
        return response

    def _arm_sweep(self, when: float) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        assert self._loop is not None
        self._sweep_at = when
        self._sweeper = self._loop.call_at(when, self._sweep)

    def _sweep(self) -> None:
        """Time out the requests past their deadline, then wait for the earliest deadline left.

        A timer per request would cost several microseconds on uvloop (a libuv timer handle made and
        closed each time); this one stays armed when requests finish early, so steady traffic with
        one timeout re-arms it about once per timeout.
        """
        self._sweeper = None
        self._sweep_at = math.inf
        assert self._loop is not None
        now = self._loop.time() + _TIMER_SLACK
        earliest = math.inf
        for connection in list(self._busy):
            if connection.waiter is None:  # answered or failed; its coroutine has not resumed yet
                continue
            if connection.deadline <= now:
                connection.time_out()
            elif connection.deadline < earliest:
                earliest = connection.deadline
        if earliest < math.inf:
            self._arm_sweep(earliest)

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float, timeout: float) -> _Connection:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise UpstreamTimeout(f"no complete response from {self.url} within {timeout:g} s")
        limit = min(self.connect_timeout, remaining)
        url, forget = self.url, self._forget
        try:
            async with asyncio.timeout(limit):
                _, connection = await loop.create_connection(
                    lambda: _Connection(url, loop, forget), self._host, self._port
                )
        except TimeoutError:  # before OSError: TimeoutError is one
            if limit < self.connect_timeout:
                raise UpstreamTimeout(f"no complete response from {self.url} within {timeout:g} s") from None
            raise UpstreamConnectError(f"cannot connect to {self.url} within {limit:g} s") from None
        except OSError as exc:
            raise UpstreamConnectError(f"cannot connect to {self.url}: {exc}") from exc
        if self._closed:  # closed while connecting
            connection.close()
            raise UpstreamConnectError(f"the connection pool to {self.url} is closed")
        return connection

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start over on a new event loop: connections made on another loop cannot be used here."""
        for connection in self._idle:
            connection.pooled = False
            with suppress(RuntimeError):  # their loop may be closed already
                connection.abort()
        self._idle.clear()
        self._busy.clear()
        if self._sweeper is not None:
            with suppress(RuntimeError):
                self._sweeper.cancel()
        self._sweeper = None
        self._sweep_at = math.inf
        self._loop = loop
