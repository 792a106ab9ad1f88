"""The read deadline under uvicorn: idle or trickling connections are closed, prompt ones served."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from service_support import Observed, build_app, served

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
