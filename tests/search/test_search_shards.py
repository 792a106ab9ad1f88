"""Whole answers and partial ones: `_shards` and `timed_out` of every response, shard copies, data nodes.

The parsers on responses as OpenSearch 3.6 writes them; the port on the real node, where a shard with no
copy is an index whose primary may not be allocated anywhere (a red index behind an alias).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from opensearchpy import OpenSearch
from search_support import V1, IndexFactory, embedding_type, location

from contract.indexing import Slot
from contract.settings import Settings
from contract.types import Similarity
from search.client import build_client
from search.errors import SearchFailed, SearchUnavailable, ShardsFailed
from search.opensearch import PARTIAL_ATTEMPTS
from search.port import SearchEngine
from search.requests import (
    FallbackQuery,
    ItemDocument,
    PopularQuery,
    SlotVector,
    VersionedKnnQuery,
    index_action,
)
from search.results import (
    ShardCopy,
    broadcast_failures,
    incomplete_search,
    knn_plugin_problems,
    mget_failures,
    parse_shard_copies,
    unavailable_shards,
    update_by_query_failures,
)
from search.templates import IndexLayout, vector_slot_mappings

FAILURE = {
    "shard": 1,
    "index": "items",
    "node": "n2",
    "reason": {"type": "node_disconnected_exception", "reason": "gone"},
}


def test_a_search_is_whole_only_when_every_shard_answered() -> None:
    assert incomplete_search({"_shards": {"total": 3, "successful": 3, "skipped": 0, "failed": 0}}) is None
    assert incomplete_search({"_shards": {"total": 3, "successful": 2, "skipped": 1, "failed": 0}}) is None
    # A shard with no copy left is neither successful nor failed (as OpenSearch 3.6 counts it).
    assert incomplete_search({"_shards": {"total": 3, "successful": 2, "skipped": 0, "failed": 0}}) == (
        "2 of 3 shards answered"
    )
    failed = {"_shards": {"total": 3, "successful": 2, "failed": 1, "failures": [FAILURE]}}
    assert incomplete_search(failed) == (
        "2 of 3 shards answered; shard 1 of items on node n2: node_disconnected_exception: gone"
    )
    timed_out = {"timed_out": True, "_shards": {"total": 1, "successful": 1, "failed": 0}}
    assert incomplete_search(timed_out) == "1 of 1 shards answered; the search timed out"
    assert incomplete_search({}) is None  # no _shards (an error body): the error mapping speaks


def test_broadcast_update_by_query_and_mget_failures_are_named() -> None:
    assert broadcast_failures({"_shards": {"total": 6, "successful": 3, "failed": 0}}) is None
    assert broadcast_failures(
        {"_shards": {"total": 2, "successful": 1, "failed": 1, "failures": [FAILURE]}}
    ) == ("1 of 2 shard copies failed; shard 1 of items on node n2: node_disconnected_exception: gone")
    assert update_by_query_failures({"updated": 3, "failures": [], "timed_out": False}) is None
    assert update_by_query_failures({"failures": [FAILURE], "timed_out": False}) == (
        "1 failures; shard 1 of items on node n2: node_disconnected_exception: gone"
    )
    written = {"failures": [{"id": "7", "cause": {"type": "x", "reason": "y"}}], "timed_out": True}
    assert update_by_query_failures(written) == "1 failures; timed out; document 7: x: y"
    docs = {"docs": [{"_id": "a", "found": True}, {"_id": "b", "error": {"type": "no_shard", "reason": "r"}}]}
    assert mget_failures(docs) == "1 documents unreadable, e.g. 'b': no_shard: r"
    assert mget_failures({"docs": [{"_id": "a", "found": False}]}) is None


def test_shard_copies_and_the_shards_nobody_can_answer_for() -> None:
    rows = [
        {"index": "x", "shard": "1", "prirep": "r", "state": "UNASSIGNED", "node": None, "docs": None},
        {"index": "x", "shard": "0", "prirep": "r", "state": "STARTED", "node": "n2", "docs": "5"},
        {"index": "x", "shard": "0", "prirep": "p", "state": "STARTED", "node": "n1", "docs": "5"},
        {"index": "x", "shard": "1", "prirep": "p", "state": "UNASSIGNED", "node": None, "docs": None},
        {"index": "a", "shard": "1", "prirep": "p", "state": "STARTED", "node": "n1", "docs": "0"},
    ]
    copies = parse_shard_copies(rows)
    assert copies == [
        ShardCopy("a", 1, True, "STARTED", "n1", 0),
        ShardCopy("x", 0, True, "STARTED", "n1", 5),
        ShardCopy("x", 0, False, "STARTED", "n2", 5),
        ShardCopy("x", 1, True, "UNASSIGNED", None, None),
        ShardCopy("x", 1, False, "UNASSIGNED", None, None),
    ]
    assert unavailable_shards(copies) == ["shard 1 of x"]


def test_a_copy_being_moved_is_on_its_source_node_and_answers() -> None:
    rows = [
        {
            "index": "x",
            "shard": "0",
            "prirep": "p",
            "state": "RELOCATING",
            "node": "n1 -> 127.0.0.1 mnR203s8QZehy7zDAUYrvQ n3",
            "docs": "5",
        },
        {"index": "x", "shard": "0", "prirep": "r", "state": "STARTED", "node": "n2", "docs": "5"},
    ]
    copies = parse_shard_copies(rows)
    assert copies[0] == ShardCopy("x", 0, True, "RELOCATING", "n1", 5)
    assert copies[0].serving
    assert unavailable_shards(copies[:1]) == []


def test_every_data_node_needs_the_knn_plugin() -> None:
    info = {
        "nodes": {
            "a": {"name": "os-1", "transport_address": "127.0.0.1:9301", "roles": ["data", "ingest"],
                  "plugins": [{"name": "opensearch-knn"}]},
            "b": {"name": "os-2", "transport_address": "127.0.0.1:9302", "roles": ["data"], "plugins": []},
            "c": {"name": "os-3", "transport_address": "127.0.0.1:9303", "roles": ["cluster_manager"]},
        }
    }  # fmt: skip
    assert knn_plugin_problems(info) == [
        "OpenSearch data node os-2 (127.0.0.1:9302) lacks the opensearch-knn plugin: every data node may "
        "hold a shard of a k-NN index"
    ]


@pytest.mark.anyio
async def test_the_stack_has_knn_on_every_data_node(search: SearchEngine) -> None:
    assert await search.cluster_problems() == []


@pytest.mark.anyio
async def test_a_partial_answer_is_never_a_whole_one(
    search: SearchEngine, items_index: IndexFactory, settings: Settings, opensearch_client: OpenSearch
) -> None:
    etype = embedding_type(2)
    whole = await items_index("whole", [etype])
    docs = [
        ItemDocument(f"i{i}", {"year": 2000 + i}, (SlotVector.of(etype.name, Slot.A, V1, [1.0, i]),))
        for i in range(6)
    ]
    assert (await search.bulk_write([index_action(whole, d) for d in docs], refresh=True)).ok
    # A second index whose only shard may be allocated nowhere: red, no copy answers for it.
    red = f"{settings.index_prefix}-items-red"
    opensearch_client.indices.create(
        index=red,
        body={
            "settings": {"index": {"routing.allocation.require._name": "nowhere"}},
            "mappings": {"properties": vector_slot_mappings(etype, settings, (Slot.A,))},
        },
        wait_for_active_shards=0,
    )
    alias = f"{settings.index_prefix}-items-both"
    opensearch_client.indices.put_alias(index=[whole, red], name=alias)
    query = VersionedKnnQuery(location(alias, etype, V1), Similarity.DOT, [1.0, 1.0], k=3)
    with pytest.raises(ShardsFailed) as partial:
        await search.knn(query)
    assert isinstance(partial.value, SearchUnavailable)  # a caller that does not look is told "unavailable"
    assert [hit.item_id for hit in partial.value.partial] == ["i5", "i4", "i3"]  # what the whole index found
    assert str(partial.value) == (
        f"k-NN search on {alias}: partial answer, 1 of 2 shards answered; no started copy of shard 0 of {red}"
    )
    assert "1 of 2 shards answered" in str(partial.value)
    with pytest.raises(ShardsFailed, match=r"exact k-NN search .* 1 of 2 shards answered"):
        await search.exact(query)
    with pytest.raises(ShardsFailed, match="fallback search") as fallback:
        await search.fallback(FallbackQuery(location(alias, etype, "other"), k=2))
    assert len(fallback.value.partial) == 2
    with pytest.raises(ShardsFailed, match="popularity search"):
        await search.popular(PopularQuery(alias, k=2))
    with pytest.raises(ShardsFailed, match="count"):
        await search.count(alias)
    with pytest.raises(ShardsFailed, match="list ids"):
        await search.index_id_digest(alias)
    with pytest.raises(ShardsFailed, match="documents unreadable"):
        await search.get_items(red, ["i1"])
    assert await search.count(whole) == 6  # the whole index alone is whole


@pytest.mark.anyio
async def test_replicas_are_added_waited_for_and_listed_copy_by_copy(
    search: SearchEngine, settings: Settings
) -> None:
    etype = embedding_type(2)
    index = f"{settings.index_prefix}-items-copies"
    await search.create_index(
        index, vector_slot_mappings(etype, settings), 16, build_meta={}, layout=IndexLayout(2, 1)
    )
    docs = [ItemDocument(f"d{i}", {}) for i in range(10)]
    assert (await search.bulk_write([index_action(index, d) for d in docs])).ok
    await search.finish_build(index)
    await search.force_merge(index)
    assert await search.wait_green(index, 10)  # no replica yet: every copy there is has started
    copies = await search.shard_copies(index)
    assert [(c.shard, c.primary, c.state) for c in copies] == [(0, True, "STARTED"), (1, True, "STARTED")]
    assert sum(c.docs or 0 for c in copies) == 10
    # One node cannot hold a replica beside its primary: the wait runs out, the copies say why.
    await search.set_replicas(index, 1)
    assert not await search.wait_green(index, 1)
    replicas = [c for c in await search.shard_copies(index) if not c.primary]
    assert [(c.shard, c.state, c.node) for c in replicas] == [
        (0, "UNASSIGNED", None),
        (1, "UNASSIGNED", None),
    ]
    await search.refresh(index)  # the unassigned replicas are not failures of the copies there are
    await search.set_replicas(index, 0)
    assert await search.wait_green(index, 10)


@pytest.mark.anyio
async def test_reads_go_to_another_node_writes_only_when_never_sent(
    settings: Settings, items_index: IndexFactory, caplog: pytest.LogCaptureFixture
) -> None:
    index = await items_index("hosts", [embedding_type(2)])
    live = settings.opensearch_endpoint
    for n in range(5):  # the client shuffles its hosts: whichever comes first, every call is answered
        mixed = build_client(settings.model_copy(update={"opensearch_url": f"http://127.0.0.1:9,{live}"}))
        try:
            assert await mixed.count(index) == n
            report = await mixed.bulk_write([index_action(index, ItemDocument(f"m{n}", {}))], refresh=True)
            assert report.ok and report.retries == 0  # sent again at once, to the live node
        finally:
            await mixed.aclose()
    caplog.set_level(logging.WARNING, logger="opensearch")
    refused = settings.model_copy(update={"opensearch_url": "http://127.0.0.1:9,http://127.0.0.1:10"})
    assert await _attempts(refused, index, caplog) == (1 + settings.opensearch_read_retries, 2)
    async with _dropping() as dropping:  # nodes that take the request and close without answering
        dropped = settings.model_copy(update={"opensearch_url": ",".join(dropping)})
        # A read goes again; a write that may have been applied is not sent twice.
        assert await _attempts(dropped, index, caplog) == (1 + settings.opensearch_read_retries, 1)


@pytest.mark.anyio
async def test_a_search_a_node_fails_with_a_500_is_asked_once_more_a_write_is_not(
    settings: Settings, items_index: IndexFactory, caplog: pytest.LogCaptureFixture
) -> None:
    index = await items_index("failing", [embedding_type(2)])
    live = settings.opensearch_endpoint
    caplog.set_level(logging.WARNING, logger="opensearch")
    async with _failing() as failing:
        for _ in range(5):  # the client shuffles its hosts: whichever comes first, every count is answered
            mixed = build_client(settings.model_copy(update={"opensearch_url": f"{failing[0]},{live}"}))
            try:
                assert await mixed.count(index) == 0
                assert await mixed.count(index) == 0
            finally:
                await mixed.aclose()
        dying = build_client(settings.model_copy(update={"opensearch_url": ",".join(failing)}))
        try:
            caplog.clear()
            with pytest.raises(SearchFailed, match=r"OpenSearch failed \(500\): node_closed_exception"):
                await dying.count(index)
            assert _logged(caplog, "status:500") == PARTIAL_ATTEMPTS  # no status retries by the client
            # A node that answered 500 is not taken for dead (which would also bench it for a minute).
            assert _logged(caplog, "second timeout") == 0
            caplog.clear()
            with pytest.raises(SearchFailed):
                await dying.bulk_write([index_action(index, ItemDocument("a", {}))], max_retries=0)
            assert _logged(caplog, "status:500") == 1  # it may have been applied: never sent twice
        finally:
            await dying.aclose()


async def _attempts(settings: Settings, index: str, caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    """How many nodes a failing read, then a failing write, was sent to (opensearch-py logs each)."""
    engine = build_client(settings)
    try:
        caplog.clear()
        with pytest.raises(SearchUnavailable):
            await engine.count(index)
        reads = _logged_failures(caplog)
        caplog.clear()
        report = await engine.bulk_write([index_action(index, ItemDocument("a", {}))], max_retries=0)
        assert list(report.failed) == ["a"]
        return reads, _logged_failures(caplog)
    finally:
        await engine.aclose()


def _logged_failures(caplog: pytest.LogCaptureFixture) -> int:
    return _logged(caplog, "N/A")


def _logged(caplog: pytest.LogCaptureFixture, status: str) -> int:
    """How many requests opensearch-py logged as failed with `status` (N/A: never answered)."""
    return sum(1 for r in caplog.records if r.name == "opensearch" and status in r.getMessage())


def _dropping() -> contextlib.AbstractAsyncContextManager[list[str]]:
    """Two HTTP endpoints that read a request and close the connection without a reply."""

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.close()

    return _endpoints(drop)


def _failing() -> contextlib.AbstractAsyncContextManager[list[str]]:
    """Two HTTP endpoints that answer every request as a node dying mid-search does: a 500."""
    body = (
        b'{"error":{"root_cause":[{"type":"node_closed_exception","reason":"node closed"}],'
        b'"type":"search_phase_execution_exception","reason":"all shards failed"},"status":500}'
    )

    async def fail(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:  # keep-alive: every request on the connection
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                length = (
                    head.split(b"content-length:")[1].split(b"\r\n")[0]
                    if b"content-length:" in head
                    else b"0"
                )
                await reader.readexactly(int(length))
                writer.write(
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        writer.close()

    return _endpoints(fail)


@contextlib.asynccontextmanager
async def _endpoints(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[list[str]]:
    """Two local HTTP endpoints that answer every connection with `handle`."""
    servers = [await asyncio.start_server(handle, "127.0.0.1", 0) for _ in range(2)]
    try:
        yield [f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}" for server in servers]
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
