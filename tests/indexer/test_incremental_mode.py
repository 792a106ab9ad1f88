"""Incremental mode on the live index: slots, catalog changes from the stream, grace before overwrite."""

from __future__ import annotations

import pytest
import redis
from indexer_support import CATALOG_SIZE, MovableClock, RunnerFactory, grace_of, make_type, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import Mode, Slot, live_index, vector_field, version_field
from contract.keys import Keys
from contract.settings import Settings
from contract.types import EmbeddingType
from indexer.changes import ChangeConsumer
from indexer.errors import VerificationError
from indexer.incremental import CycleStep, IncrementalIndexer
from indexer.scheduler import Runner

pytestmark = pytest.mark.anyio


def _count(client: OpenSearch, index: str, field: str, value: str) -> int:
    client.indices.refresh(index=index)
    return int(client.count(index=index, body={"query": {"term": {field: value}}})["count"])


async def test_incremental_cycles_follow_versions_and_changes(
    orchestrator: Settings,
    publish_version,
    opensearch_client: OpenSearch,
    redis_client: redis.Redis,
    keys: Keys,
    make_runner: RunnerFactory,
    clock: MovableClock,
) -> None:
    settings = orchestrator
    etype = make_type()
    live = live_index(settings.index_prefix)
    runner = make_runner(settings)
    v1 = publish_version(etype, 1)
    await wait_latest(settings, etype.name, v1)
    (first,) = (await runner.incremental()).results
    assert first.bootstrapped and first.types[0].promoted
    info = await runner.orchestrator.type_info(etype.name)
    assert info.in_use == v1
    (loc,) = info.indexed
    assert (
        loc.mode is Mode.INCREMENTAL
        and loc.index == live
        and loc.vector_field == vector_field(etype.name, Slot.A)
    )
    assert _count(opensearch_client, live, loc.version_field, v1) == CATALOG_SIZE - 5

    # Catalog changes: a new item, a retitled one, a deleted one.
    catalog = await runner.catalog()
    new_item = catalog[7].replaced(item_id="99999", title="A new book")
    await runner.store.put([new_item.document()])
    await runner.store.put([catalog[9].replaced(title="Retitled").document()])
    await runner.store.delete([catalog[20].item_id])
    (second,) = (await runner.incremental()).results
    assert second.changes == 3 and second.deleted == 1 and not second.types[0].promoted
    assert await ChangeConsumer(runner.redis, keys).pending() == 0  # acknowledged after indexing
    # Each step of a cycle is timed, in the result and in the step histogram (two cycles so far).
    assert set(second.seconds) == {step.value for step in CycleStep}
    assert all(seconds >= 0 for seconds in second.seconds.values())
    counts = {
        sample.labels["step"]: sample.value
        for metric in runner.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "lockstep_indexer_incremental_step_seconds_count"
    }
    assert counts == {step.value: 2 for step in CycleStep}
    docs = opensearch_client.mget(
        index=live, body={"ids": ["99999", catalog[9].item_id, catalog[20].item_id]}
    )["docs"]
    # Cold: the new item has no vector of v1, so its slot is empty.
    assert docs[0]["found"] and docs[0]["_source"].get(vector_field(etype.name, Slot.A)) is None
    assert docs[1]["_source"]["title"] == "Retitled"
    assert docs[1]["_source"][version_field(etype.name, Slot.A)] == v1
    assert not docs[2]["found"]

    v2 = publish_version(etype, 2)
    await wait_latest(settings, etype.name, v2)
    (third,) = (await runner.incremental()).results
    assert third.types[0].promoted and third.types[0].target == v2
    info = await runner.orchestrator.type_info(etype.name)
    assert info.in_use == v2
    slots = {x.version: x.vector_field for x in info.indexed}
    assert slots == {v1: vector_field(etype.name, Slot.A), v2: vector_field(etype.name, Slot.B)}
    assert _count(opensearch_client, live, version_field(etype.name, Slot.A), v1) == CATALOG_SIZE - 5 - 1

    # v3 right away: slot A still holds the previous in-use v1 within its grace, so the cycle waits.
    v3 = publish_version(etype, 3)
    await wait_latest(settings, etype.name, v3)
    (fourth,) = (await runner.incremental()).results
    assert not fourth.types[0].promoted and fourth.types[0].waiting_until is not None
    assert (await runner.orchestrator.type_info(etype.name)).in_use == v2
    clock.shift(grace_of(settings))
    (fifth,) = (await runner.incremental()).results
    assert fifth.types[0].promoted
    info = await runner.orchestrator.type_info(etype.name)
    assert info.in_use == v3
    # v3 went into slot A (v2 keeps slot B), whatever the sequence parity, and v1's record is gone.
    assert {x.version: x.vector_field for x in info.indexed} == {
        v2: vector_field(etype.name, Slot.B),
        v3: vector_field(etype.name, Slot.A),
    }
    assert _count(opensearch_client, live, version_field(etype.name, Slot.A), v1) == 0


async def _served_in_slot_a(
    settings: Settings, publish_version, make_runner: RunnerFactory
) -> tuple[EmbeddingType, Runner, str]:
    """A new type with v1 published and served from the live index's slot A: its type, runner and v1."""
    etype = make_type()
    runner = make_runner(settings)
    v1 = publish_version(etype, 1)
    await wait_latest(settings, etype.name, v1)
    await runner.incremental()
    return etype, runner, v1


async def test_verification_names_an_item_whose_slot_lacks_its_vector(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch, make_runner: RunnerFactory
) -> None:
    etype, runner, v1 = await _served_in_slot_a(orchestrator, publish_version, make_runner)
    live = live_index(orchestrator.index_prefix)
    vfield, verfield = vector_field(etype.name, Slot.A), version_field(etype.name, Slot.A)
    indexer = IncrementalIndexer(
        orchestrator, runner.search, runner.orchestrator, runner.redis, runner.keys, runner.metrics
    )
    # 5 cold items lack v1 and the orchestrator confirms they have no vector: that verifies.
    assert await indexer.verify(etype.name, verfield, v1) == CATALOG_SIZE - 5
    victim = (await runner.catalog())[100].item_id
    opensearch_client.update(index=live, id=victim, body={"doc": {vfield: None, verfield: None}})
    opensearch_client.indices.refresh(index=live)
    with pytest.raises(VerificationError, match=f"item '{victim}' has a vector"):
        await indexer.verify(etype.name, verfield, v1)


async def test_an_edit_of_metadata_keeps_the_vectors_unwritten_and_drops_fields_the_item_no_longer_has(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch, make_runner: RunnerFactory
) -> None:
    etype, runner, v1 = await _served_in_slot_a(orchestrator, publish_version, make_runner)
    live = live_index(orchestrator.index_prefix)
    vfield, verfield = vector_field(etype.name, Slot.A), version_field(etype.name, Slot.A)
    catalog = await runner.catalog()
    sources = opensearch_client.mget(index=live, body={"ids": [i.item_id for i in catalog]})["docs"]
    item = next(
        i
        for i, doc in zip(catalog, sources, strict=True)
        if i.fields.get("tags") and doc["_source"].get(verfield)
    )
    before = opensearch_client.get(index=live, id=item.item_id)["_source"]
    tag = item.fields["tags"][0]

    edited = {k: v for k, v in item.document().items() if k != "tags"} | {"title": "Retitled"}
    await runner.store.put([edited])
    (cycle,) = (await runner.incremental()).results
    assert cycle.changes == 1 and cycle.types[0].written == 0  # its v1 vector is already in the slot
    after = opensearch_client.get(index=live, id=item.item_id)["_source"]
    assert after["title"] == "Retitled" and after.get("tags") is None
    assert after[verfield] == v1 and after[vfield] == before[vfield]
    by_tag = {"query": {"bool": {"filter": [{"ids": {"values": [item.item_id]}}, {"term": {"tags": tag}}]}}}
    assert opensearch_client.count(index=live, body=by_tag)["count"] == 0

    # Deleted, then put back: a new document, so its vector is written again.
    await runner.store.delete([item.item_id])
    await runner.incremental()
    await runner.store.put([item.document()])
    (back,) = (await runner.incremental()).results
    assert back.types[0].written == 1
    restored = opensearch_client.get(index=live, id=item.item_id)["_source"]
    assert restored[vfield] == before[vfield] and restored["tags"] == list(item.fields["tags"])
    assert opensearch_client.count(index=live, body=by_tag)["count"] == 1


async def test_the_lookup_of_items_carrying_a_vector_asks_in_chunks_and_misses_none(
    orchestrator: Settings,
    publish_version,
    opensearch_client: OpenSearch,
    make_runner: RunnerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    etype, runner, v1 = await _served_in_slot_a(orchestrator, publish_version, make_runner)
    live = live_index(orchestrator.index_prefix)
    verfield = version_field(etype.name, Slot.A)
    indexer = IncrementalIndexer(
        orchestrator, runner.search, runner.orchestrator, runner.redis, runner.keys, runner.metrics
    )
    ids = [*sorted(item.item_id for item in await runner.catalog()), "new-1", "new-2"]
    docs = opensearch_client.mget(index=live, body={"ids": ids}, _source_includes=[verfield])["docs"]
    expected = [d["_id"] for d in docs if not d["found"] or d["_source"].get(verfield) != v1]
    assert len(expected) == 5 + 2  # the cold items and the new ones
    monkeypatch.setattr("indexer.incremental.LOOKUP_CHUNK", 7)  # many chunks, one ending short
    key = (etype.name, Slot.A, v1)
    carrying: dict[tuple[str, Slot, str], set[str]] = {key: set()}
    await indexer._carrying(ids, [key], carrying)
    assert sorted(carrying[key]) == sorted(set(ids) - set(expected))


async def test_changes_across_pages_land_in_their_last_state_and_a_deleted_item_put_back_gets_its_vector(
    orchestrator: Settings,
    publish_version,
    opensearch_client: OpenSearch,
    make_runner: RunnerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    etype, runner, v1 = await _served_in_slot_a(orchestrator, publish_version, make_runner)
    live = live_index(orchestrator.index_prefix)
    vfield, verfield = vector_field(etype.name, Slot.A), version_field(etype.name, Slot.A)
    catalog = await runner.catalog()
    sources = opensearch_client.mget(index=live, body={"ids": [i.item_id for i in catalog]})["docs"]
    carrying = [i for i, doc in zip(catalog, sources, strict=True) if doc["_source"].get(verfield) == v1]
    edited, put_back, dropped = carrying[:3]
    vector_before = opensearch_client.get(index=live, id=put_back.item_id)["_source"][vfield]
    monkeypatch.setattr("indexer.incremental.CHANGE_PAGE", 2)  # the six entries below: three pages
    await runner.store.put(
        [edited.replaced(title="First").document(), dropped.replaced(title="Doomed").document()]
    )
    await runner.store.delete([put_back.item_id])
    await runner.store.put([edited.replaced(title="Second").document()])  # again, in the next page
    await runner.store.delete([dropped.item_id])
    await runner.store.put([put_back.document()])  # back, after its delete went out in an earlier page

    (cycle,) = (await runner.incremental()).results
    assert cycle.changes == 6 and cycle.deleted == 1
    assert cycle.types[0].written == 1  # the item put back: a new document, without its vector
    docs = opensearch_client.mget(
        index=live, body={"ids": [edited.item_id, put_back.item_id, dropped.item_id]}
    )["docs"]
    assert docs[0]["_source"]["title"] == "Second" and docs[0]["_source"][verfield] == v1
    assert docs[1]["found"] and docs[1]["_source"][verfield] == v1
    assert docs[1]["_source"][vfield] == vector_before
    assert not docs[2]["found"]


async def _fail_a_cycle(runner: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    """One incremental cycle whose lookup of items lacking a vector fails, after reading its changes."""
    with monkeypatch.context() as patched:

        async def failing(self: IncrementalIndexer, *args: object) -> object:
            raise RuntimeError("lookup failed")

        patched.setattr(IncrementalIndexer, "_carrying", failing)
        with pytest.raises(RuntimeError, match="lookup failed"):
            await runner.incremental()


async def test_a_failed_cycle_leaves_its_changes_pending_and_the_next_reads_them_again_page_by_page(
    orchestrator: Settings,
    publish_version,
    opensearch_client: OpenSearch,
    keys: Keys,
    make_runner: RunnerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _etype, runner, _v1 = await _served_in_slot_a(orchestrator, publish_version, make_runner)
    live = live_index(orchestrator.index_prefix)
    catalog = await runner.catalog()
    monkeypatch.setattr("indexer.incremental.CHANGE_PAGE", 2)
    retitled = [item.replaced(title=f"Retitled {n}") for n, item in enumerate(catalog[:5])]
    await runner.store.put([item.document() for item in retitled])
    await _fail_a_cycle(runner, monkeypatch)
    consumer = ChangeConsumer(runner.redis, keys)
    # The first page's lookup failed; the cycle saw it on reading the second page, before writing it: two
    # pages read and never acknowledged, the fifth change not read at all.
    assert await consumer.pending() == 4

    (cycle,) = (await runner.incremental()).results
    assert cycle.changes == 5 and await consumer.pending() == 0
    docs = opensearch_client.mget(index=live, body={"ids": [i.item_id for i in retitled]})["docs"]
    assert [d["_source"]["title"] for d in docs] == [i.fields["title"] for i in retitled]


async def test_a_pending_change_deleted_from_the_stream_is_let_go_and_the_stream_is_trimmed_past_it(
    orchestrator: Settings,
    publish_version,
    opensearch_client: OpenSearch,
    keys: Keys,
    make_runner: RunnerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _etype, runner, _v1 = await _served_in_slot_a(orchestrator, publish_version, make_runner)
    live = live_index(orchestrator.index_prefix)
    retitled = [item.replaced(title=f"Renamed {n}") for n, item in enumerate((await runner.catalog())[:3])]
    await runner.store.put([item.document() for item in retitled])
    await _fail_a_cycle(runner, monkeypatch)
    consumer = ChangeConsumer(runner.redis, keys)
    assert await consumer.pending() == 3
    # An operator deletes the first of them from the stream while it is pending.
    stream = keys.catalog_changes()
    first = (await runner.redis.xrange(stream, count=1))[0][0]
    assert await runner.redis.xdel(stream, first) == 1

    (cycle,) = (await runner.incremental()).results
    assert cycle.changes == 2
    assert await consumer.pending() == 0  # the deleted entry too: nothing holds the trim point back
    assert await runner.redis.xlen(stream) == 0
    docs = opensearch_client.mget(index=live, body={"ids": [i.item_id for i in retitled[1:]]})["docs"]
    assert [d["_source"]["title"] for d in docs] == [i.fields["title"] for i in retitled[1:]]
