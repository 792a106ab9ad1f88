"""A keep-alive HTTP/1.1 client for serving's request path: one host, reused connections, a timeout per call.

Serving makes two calls per recommendation (orchestrator, then OpenSearch). aiohttp spent ~0.13 ms of CPU
per call on this box, a third of everything serving adds to a raw script; this client, an asyncio protocol
over httptools (llhttp, already here through uvicorn[standard]), spends ~0.04 ms. It does only what those
calls need: one request in flight per connection, Content-Length bodies out, any framing back, a retry on
a fresh connection when a reused one turns out to be closed before answering. Both callers send reads only
(GET, or POST of a query), so that retry cannot apply a change twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast
from urllib.parse import urlsplit

import httptools

_JSON: Final = b"application/json"


class HttpUnavailable(Exception):  # noqa: N818 - a condition callers degrade on
    """The server could not be reached, closed the connection, answered garbage, or timed out."""


class _Closed(HttpUnavailable):
    """The connection closed before the reply was whole (retryable: a reused one, before any byte)."""

    def __init__(self, why: str, retryable: bool) -> None:
        super().__init__(why)
        self.retryable = retryable


@dataclass(frozen=True)
class Reply:
    """A whole response: status and body."""

    status: int
    content: bytes


class _Connection(asyncio.Protocol):
    """One TCP connection; at most one request in flight, its reply delivered to `waiter`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Reply] | None = None
        self.reused = False  # served a reply before: a close before any byte of the next one is benign
        self.keep_alive = False  # the last reply allows another request on this connection
        self._received = False
        self._body: list[bytes] = []
        self._parser = httptools.HttpResponseParser(self)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpUnavailable(f"malformed HTTP response ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        why = "closed by the server before answering" if not self._received else "closed mid-response"
        self._fail(_Closed(why, retryable=self.reused and not self._received))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        reply = Reply(self._parser.get_status_code(), b"".join(self._body))
        self.keep_alive = self._parser.should_keep_alive()
        self._body = []
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    # ours
    def send(self, request: bytes, waiter: asyncio.Future[Reply]) -> None:
        assert self.transport is not None
        self.waiter = waiter
        self._received = False
        self.transport.write(request)

    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()


def _expire(waiter: asyncio.Future[Reply], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(HttpUnavailable(f"no reply within {timeout:g} s"))


class KeepAlivePool:
    """Connections to the host of `url`, reused LIFO; at most `limit` at once (more callers wait)."""

    def __init__(
        self, url: str, timeout: float, headers: Mapping[str, str] | None = None, limit: int = 64
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"url: expected http://host[:port], got {url!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._prefix = parts.path.rstrip("/").encode()
        self._timeout = timeout
        fixed = {"Host": parts.netloc, **(headers or {})}
        self._headers = b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in fixed.items())
        self._idle: list[_Connection] = []
        self._limit = limit
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    async def request(self, method: str, path: str, body: bytes | None = None) -> Reply:
        """Send one request (a JSON `body` if given) and read the whole reply, within the timeout."""
        if self._closed:
            raise HttpUnavailable("client closed")
        head = b"%s %s%s HTTP/1.1\r\n%s" % (method.encode(), self._prefix, path.encode(), self._headers)
        if body is None:
            message = head + (b"Content-Length: 0\r\n\r\n" if method != "GET" else b"\r\n")
        else:
            message = b"%sContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s" % (head, _JSON, len(body), body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout  # one bound for the whole call: a wait for a slot, a retry
        await self._acquire(deadline)
        try:
            try:
                return await self._exchange(loop, message, deadline)
            except _Closed as exc:
                if not exc.retryable:
                    raise
                return await self._exchange(loop, message, deadline)  # the server dropped an idle one
        except OSError as exc:
            raise HttpUnavailable(f"cannot reach {self._host}:{self._port} ({exc})") from exc
        finally:
            self._slots.release()

    async def _acquire(self, deadline: float) -> None:
        if not self._slots.locked():
            await self._slots.acquire()  # free: returns at once, no timer needed
            return
        try:
            await asyncio.wait_for(
                self._slots.acquire(), max(0.0, deadline - asyncio.get_running_loop().time())
            )
        except TimeoutError as exc:
            raise HttpUnavailable(
                f"no free connection within {self._timeout:g} s ({self._limit} busy)"
            ) from exc

    async def _exchange(self, loop: asyncio.AbstractEventLoop, message: bytes, deadline: float) -> Reply:
        conn = self._checkout() or await self._connect(loop, deadline)
        waiter: asyncio.Future[Reply] = loop.create_future()
        # A bare timer on the waiter: asyncio.timeout() costs a task lookup and a reschedule per call.
        timer = loop.call_at(deadline, _expire, waiter, self._timeout)
        try:
            conn.send(message, waiter)
            reply = await waiter
        except BaseException:
            conn.close()  # a reply may still be on its way: this connection is no longer in step
            raise
        finally:
            timer.cancel()
        if conn.keep_alive and conn.usable() and not self._closed:
            conn.reused = True
            self._idle.append(conn)
        else:
            conn.close()
        return reply

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        connecting = loop.create_connection(_Connection, self._host, self._port)
        try:
            _, conn = await asyncio.wait_for(connecting, max(0.0, deadline - loop.time()))
        except TimeoutError as exc:
            raise HttpUnavailable(f"no connection within {self._timeout:g} s") from exc
        return conn

    def _checkout(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
        return None

    async def aclose(self) -> None:
        """Close every idle connection; later requests fail."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
