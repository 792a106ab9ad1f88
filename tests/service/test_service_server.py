"""The read deadline under uvicorn: idle or trickling connections are closed, prompt ones served; and idle
keep-alive connections are dropped by our clients before our servers close them."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import aiohttp
import pytest
from service_support import Observed, build_app, served

from contract.wire import CLIENT_KEEP_ALIVE_SECONDS
from orchestrator_client import connection_pool

READ_TIMEOUT = 0.3


@pytest.fixture
def address(observed: Observed) -> Iterator[tuple[str, int]]:
    with served(build_app(observed), read_timeout=READ_TIMEOUT) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def _closed_by_server(conn: socket.socket) -> bool:
    """Whether the server ends the connection (EOF or reset) rather than the 60 s guard running out."""
    conn.settimeout(60)
    try:
        while conn.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_a_connection_that_sends_nothing_is_closed(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as conn:
        assert _closed_by_server(conn)


def test_a_request_whose_headers_never_end_is_closed(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert _closed_by_server(conn)


def test_a_body_that_never_arrives_is_closed(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as conn:
        conn.sendall(b"POST /raw HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert _closed_by_server(conn)


def test_complete_requests_on_one_connection_are_served(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=60) as conn:
        for _ in range(3):
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = conn.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 ")


def test_an_idle_connection_stays_open_longer_than_our_clients_keep_it(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(60)
        assert conn.recv(65536).startswith(b"HTTP/1.1 200 ")
        answered = time.monotonic()
        assert _closed_by_server(conn)  # keep-alive ends it: an idle client holds no connection for good
        assert time.monotonic() - answered > CLIENT_KEEP_ALIVE_SECONDS + 0.5


def test_our_clients_open_a_new_connection_rather_than_reuse_one_the_server_may_be_closing(
    address: tuple[str, int],
) -> None:
    """A request sent as the server closes the idle connection is reset, and aiohttp retries only
    idempotent ones: a POST failed so in the serving benchmark."""
    url = "http://{}:{}/peer".format(*address)

    async def ports() -> list[int]:
        seen = []
        async with aiohttp.ClientSession(connector=connection_pool(1)) as session:
            for idle in (0.0, CLIENT_KEEP_ALIVE_SECONDS + 0.5):
                await asyncio.sleep(idle)  # the idle time under test, not a wait for anything
                async with session.get(url) as response:
                    seen.append((await response.json())["port"])
        return seen

    first, second = asyncio.run(ports())
    assert first != second
