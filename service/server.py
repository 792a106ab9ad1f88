"""How both services run under uvicorn: a time limit on reading each request, then uvicorn as usual.

uvicorn bounds only the idle time between requests (`timeout_keep_alive`), and every byte received resets
it: a client that connects and sends nothing, or trickles a request a byte at a time, holds its
connection forever (slowloris). `ReadDeadline` closes a connection whose request is not complete within
`read_timeout` seconds of the connection or of the request's first byte.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from contract.wire import SERVER_KEEP_ALIVE_SECONDS


class ServerConfig(uvicorn.Config):
    """uvicorn's Config with our protocol and its read deadline (a module-level class: workers pickle it)."""

    def __init__(self, app: Any, *, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(app, http=ReadDeadline, timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS, **kwargs)
        self.read_timeout = read_timeout


class ReadDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request does not arrive in time."""

    def __init__(self, config: ServerConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._read_timeout = config.read_timeout
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._read_timer is None:
            self._read_timer = self.loop.call_later(self._read_timeout, self._expired)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _expired(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def serve(config: ServerConfig) -> None:
    """Run `config` as uvicorn.run would: in this process, or in `config.workers` worker processes."""
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()
