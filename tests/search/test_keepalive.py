"""search.keepalive: replies reach their own request, connections are reused, and every failure is named.

Reuse and concurrency are checked against the real OpenSearch node (its HTTP stats count opened
connections). Misbehaving peers (drops an idle connection, never answers, answers garbage, dies mid-reply)
are small asyncio servers scripted per test, since no real server misbehaves on cue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from opensearchpy import OpenSearch

from contract.settings import Settings
from search.keepalive import HttpUnavailable, KeepAlivePool

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def _opened(client: OpenSearch) -> int:
    stats = client.nodes.stats(metric="http")
    return sum(int(node["http"]["total_opened"]) for node in stats["nodes"].values())


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


def _serve(script: Script, test: Callable[[str], Awaitable[Any]]) -> Any:
    """Run `test(url)` against a local server whose every connection runs `script`."""

    async def main() -> Any:
        server = await asyncio.start_server(script, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await test(f"http://127.0.0.1:{port}")

    return asyncio.run(main())


def test_sequential_requests_share_one_connection(settings: Settings, opensearch_client: OpenSearch) -> None:
    before = _opened(opensearch_client)

    async def run() -> list[int]:
        pool = KeepAlivePool(settings.opensearch_endpoint, timeout=10)
        statuses = [(await pool.request("GET", "/_cluster/health")).status for _ in range(20)]
        await pool.aclose()
        return statuses

    assert asyncio.run(run()) == [200] * 20
    assert _opened(opensearch_client) - before <= 1


def test_concurrent_replies_reach_their_own_requests(
    settings: Settings, opensearch_client: OpenSearch
) -> None:
    index = f"{settings.index_prefix}-keepalive"
    for n in range(40):
        opensearch_client.index(index=index, id=str(n), body={"n": n})
    opensearch_client.indices.refresh(index=index)

    async def one(pool: KeepAlivePool, n: int) -> tuple[int, Any]:
        if n % 2:
            reply = await pool.request("GET", f"/{index}/_doc/{n % 40}")
            return n % 40, orjson.loads(reply.content)["_source"]["n"]
        body = orjson.dumps({"query": {"term": {"_id": str(n % 40)}}})
        reply = await pool.request("POST", f"/{index}/_search", body)
        return n % 40, orjson.loads(reply.content)["hits"]["hits"][0]["_source"]["n"]

    async def run() -> list[tuple[int, Any]]:
        pool = KeepAlivePool(settings.opensearch_endpoint, timeout=10, limit=8)
        try:
            return await asyncio.gather(*(one(pool, n) for n in range(400)))
        finally:
            await pool.aclose()

    pairs = asyncio.run(run())
    assert len(pairs) == 400
    assert all(asked == got for asked, got in pairs)


def test_a_dropped_idle_connection_is_replaced_transparently() -> None:
    connections = 0

    async def answer_once_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _read_request(reader)
        writer.write(OK)  # keep-alive implied by HTTP/1.1, then the server drops it anyway
        await writer.drain()
        writer.close()

    async def test(url: str) -> list[int]:
        pool = KeepAlivePool(url, timeout=5)
        statuses = []
        for _ in range(3):
            statuses.append((await pool.request("GET", "/")).status)
            await asyncio.sleep(0.05)  # let the close arrive, or not: both paths must work
        return statuses

    assert _serve(answer_once_then_close, test) == [200, 200, 200]
    assert connections == 3


def test_a_reused_connection_closed_unanswered_is_retried_once_on_a_fresh_one() -> None:
    connections = 0

    async def drop_the_second_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()
        await _read_request(reader)  # the idle-timeout race: the server closes as the next request lands
        writer.close()

    async def test(url: str) -> list[int]:
        pool = KeepAlivePool(url, timeout=5)
        return [(await pool.request("GET", "/")).status for _ in range(2)]

    assert _serve(drop_the_second_request, test) == [200, 200]
    assert connections == 2


def test_connection_close_is_honoured() -> None:
    connections = 0

    async def close_header(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                await _read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def test(url: str) -> list[bytes]:
        pool = KeepAlivePool(url, timeout=5)
        return [(await pool.request("GET", "/")).content for _ in range(3)]

    assert _serve(close_header, test) == [b"ok"] * 3
    assert connections == 3


def test_chunked_replies_and_request_bodies_round_trip() -> None:
    async def echo_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _read_request(reader)
        head, body = request.split(b"\r\n\r\n", 1)
        assert b"content-type: application/json" in head.lower()
        writer.write(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in range(0, len(body), 7):
            piece = body[start : start + 7]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def test(url: str) -> tuple[int, bytes]:
        pool = KeepAlivePool(url, timeout=5)
        reply = await pool.request("POST", "/echo", b'{"vector": [1.0, 2.0, 3.0]}')
        return reply.status, reply.content

    assert _serve(echo_chunked, test) == (201, b'{"vector": [1.0, 2.0, 3.0]}')


def test_a_silent_server_times_out_and_its_connection_is_not_reused() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async def test(url: str) -> tuple[str, float, int]:
        pool = KeepAlivePool(url, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(HttpUnavailable) as caught:
            await pool.request("GET", "/")
        return str(caught.value), time.monotonic() - started, len(pool._idle)

    message, elapsed, idle = _serve(silent, test)
    assert "no reply within 0.3 s" in message
    assert 0.25 < elapsed < 2
    assert idle == 0


def test_garbage_and_a_reply_cut_short_are_errors_not_retries() -> None:
    requests = 0

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        requests += 1
        await _read_request(reader)
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()

    async def cut_short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        requests += 1
        await _read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')
        await writer.drain()
        writer.close()

    async def test(url: str) -> str:
        pool = KeepAlivePool(url, timeout=5)
        with pytest.raises(HttpUnavailable) as caught:
            await pool.request("GET", "/")
        return str(caught.value)

    assert "malformed HTTP response" in _serve(garbage, test)
    assert "closed mid-response" in _serve(cut_short, test)
    assert requests == 2  # one each: a reply that began is never resent


def test_unreachable_server_and_bad_urls_are_named() -> None:
    async def test() -> str:
        pool = KeepAlivePool("http://127.0.0.1:9", timeout=2)  # discard port: nothing listens
        with pytest.raises(HttpUnavailable) as caught:
            await pool.request("GET", "/")
        return str(caught.value)

    assert "cannot reach 127.0.0.1:9" in asyncio.run(test())
    with pytest.raises(ValueError, match="url: expected http://host"):
        KeepAlivePool("https://example.org", timeout=1)


def test_waiting_for_a_free_connection_counts_against_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async def test(url: str) -> tuple[list[str], float]:
        pool = KeepAlivePool(url, timeout=0.4, limit=1)
        started = time.monotonic()
        outcomes = await asyncio.gather(
            pool.request("GET", "/a"), pool.request("GET", "/b"), return_exceptions=True
        )
        return [str(outcome) for outcome in outcomes], time.monotonic() - started

    messages, elapsed = _serve(silent, test)
    assert messages == ["no reply within 0.4 s", "no free connection within 0.4 s (1 busy)"]
    assert elapsed < 0.8  # both within one timeout, not one after the other
