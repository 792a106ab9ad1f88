"""Mode per type: one type shadow, another incremental; switching a type only when asked, safely."""

from __future__ import annotations

import numpy as np
import pytest
import redis
from indexer_support import CATALOG_SIZE, MovableClock, RunnerFactory, grace_of, make_type, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import (
    IndexedLocation,
    Mode,
    Slot,
    items_alias,
    live_index,
    vector_field,
    version_field,
)
from contract.keys import Keys
from contract.settings import Settings
from indexer.errors import ModeConflictError
from indexer.scheduler import Runner
from search.port import SearchEngine
from search.requests import VersionedKnnQuery, holding_any_body

A = make_type("mode-a-d8")
B = make_type("mode-b-d8")

pytestmark = pytest.mark.anyio


async def _location(runner: Runner, type_name: str) -> IndexedLocation:
    info = await runner.orchestrator.type_info(type_name)
    return next(x for x in info.indexed if x.version == info.in_use)


async def _answers(search: SearchEngine, location: IndexedLocation) -> None:
    """A versioned k-NN query at `location` finds 10 items, all of its version."""
    query = VersionedKnnQuery(location, A.similarity, np.ones(A.dim).tolist(), 10, source_fields=())
    hits = await search.knn(query)
    assert len(hits) == 10 and {h.version for h in hits} == {location.version}


async def test_types_keep_their_mode_and_switch_only_when_asked(
    orchestrator: Settings, publish_version, make_runner: RunnerFactory, clock: MovableClock
) -> None:
    settings = orchestrator
    runner = make_runner(settings)
    search = runner.search
    for etype in (A, B):
        await wait_latest(settings, etype.name, publish_version(etype, 1))
    await runner.shadow([A.name])
    await runner.incremental([B.name])
    assert (await _location(runner, A.name)).mode is Mode.SHADOW
    assert (await _location(runner, B.name)).mode is Mode.INCREMENTAL

    # Unnamed, a cycle takes only its own mode's types; named, the other mode's type is an error.
    assert [r.type_name for r in (await runner.shadow()).results] == [A.name]
    (live,) = (await runner.incremental()).results
    assert [t.type_name for t in live.types] == [B.name]
    with pytest.raises(ModeConflictError, match=f"{A.name}.*shadow.*--switch-mode"):
        await runner.incremental([A.name])
    with pytest.raises(ModeConflictError, match=f"{B.name}.*incremental"):
        await runner.shadow([B.name])

    # Switch A to incremental: in_use is re-indexed into the live index and re-recorded there;
    # the shadow index stays, so a request routed to it before the switch still gets its version.
    old = await _location(runner, A.name)
    await runner.incremental([A.name], switch=True)
    new = await _location(runner, A.name)
    assert new.mode is Mode.INCREMENTAL and new.index == live_index(settings.index_prefix)
    assert new.version == old.version
    await _answers(search, old)
    await _answers(search, new)
    assert (await _location(runner, B.name)).mode is Mode.INCREMENTAL  # B's slots untouched

    # Back to shadow within the grace would rebuild (so first delete) the index `old` still names.
    with pytest.raises(ModeConflictError, match=f"{old.index}.*before the last switch"):
        await runner.shadow([A.name], switch=True)
    await _answers(search, old)
    # After the grace: a fresh shadow build of the same version becomes its location.
    clock.shift(grace_of(settings))
    await runner.shadow([A.name], switch=True)
    back = await _location(runner, A.name)
    assert back.mode is Mode.SHADOW and back.version == old.version
    await _answers(search, back)
    await _answers(search, new)


async def test_a_cycle_given_one_type_covers_every_type_served_incrementally(
    orchestrator: Settings,
    publish_version,
    opensearch_client: OpenSearch,
    redis_client: redis.Redis,
    keys: Keys,
    make_runner: RunnerFactory,
) -> None:
    settings = orchestrator
    c, d = make_type("mode-c-d8"), make_type("mode-d-d8")
    live = live_index(settings.index_prefix)
    runner = make_runner(settings)
    for etype in (A, B, c):
        await wait_latest(settings, etype.name, publish_version(etype, 1))
    await runner.shadow([A.name])
    await runner.incremental([B.name])
    await runner.incremental([c.name])
    c_at = await _location(runner, c.name)
    assert c_at.mode is Mode.INCREMENTAL

    # A catalog change read by a cycle given only B: C's vector of that item is (re)written too.
    item = (await runner.catalog())[9]
    opensearch_client.update(
        index=live, id=item.item_id, body={"doc": {c_at.vector_field: None, c_at.version_field: None}}
    )
    # Searchable, as the indexer's own writes are at the end of each cycle: which items lack a slot's
    # vector is read by a search.
    opensearch_client.indices.refresh(index=live)
    await runner.store.put([item.replaced(title="Retitled").document()])
    (cycle,) = (await runner.incremental([B.name])).results
    written = {t.type_name: t.written for t in cycle.types}
    assert set(written) == {B.name, c.name} and written[c.name] >= 1
    doc = opensearch_client.get(index=live, id=item.item_id)["_source"]
    assert doc["title"] == "Retitled" and doc[c_at.version_field] == c_at.version

    # Neither the shadow type nor a type with no version in use yet is taken along.
    await wait_latest(settings, d.name, publish_version(d, 1))
    (cycle,) = (await runner.incremental([B.name])).results
    assert {t.type_name for t in cycle.types} == {B.name, c.name}
    assert (await _location(runner, A.name)).mode is Mode.SHADOW
    assert (await runner.orchestrator.type_info(d.name)).in_use is None


async def test_the_old_modes_index_or_slots_go_once_the_grace_after_a_switch_is_over(
    orchestrator: Settings, publish_version, make_runner: RunnerFactory, clock: MovableClock
) -> None:
    settings = orchestrator
    live = live_index(settings.index_prefix)
    runner = make_runner(settings)
    search = runner.search

    async def holding(name: str) -> int:
        fields = [f(name, slot) for slot in Slot for f in (vector_field, version_field)]
        return await search.count(live, holding_any_body(fields))

    for etype in (A, B):
        await wait_latest(settings, etype.name, publish_version(etype, 1))
    await runner.shadow([A.name])
    await runner.incremental([B.name])
    shadow_at = await _location(runner, A.name)

    # To incremental: within the grace the shadow index stays (requests may be routed to it)...
    (cycle,) = (await runner.incremental([A.name], switch=True)).results
    assert {t.type_name: t.removed for t in cycle.types} == {A.name: [], B.name: []}
    await _answers(search, shadow_at)
    clock.shift(grace_of(settings))
    # ...after it, the next incremental cycle withdraws the shadow records and deletes the index.
    (cycle,) = (await runner.incremental()).results
    assert {t.type_name: t.removed for t in cycle.types} == {A.name: [shadow_at.index], B.name: []}
    assert not await search.index_exists(shadow_at.index)
    assert not await search.index_exists(items_alias(settings.index_prefix, A.name))
    assert {x.mode for x in (await runner.orchestrator.type_info(A.name)).indexed} == {Mode.INCREMENTAL}
    await _answers(search, await _location(runner, A.name))

    # Back to shadow: A's live slots stay within the grace, go after it; B's are untouched.
    (result,) = (await runner.shadow([A.name], switch=True)).results
    held = await holding(A.name)
    assert result.cleared_live_docs == 0 and held == CATALOG_SIZE - 5  # 5 cold items have no vector
    clock.shift(grace_of(settings))
    (result,) = (await runner.shadow()).results
    assert result.cleared_live_docs == held
    assert await holding(A.name) == 0 and await holding(B.name) == CATALOG_SIZE - 5
    assert {x.mode for x in (await runner.orchestrator.type_info(A.name)).indexed} == {Mode.SHADOW}
    await _answers(search, await _location(runner, A.name))
    for kind, count in (("shadow_indices", 1), ("live_documents", held)):
        labels = {"type": A.name, "kind": kind}
        sample = runner.metrics.registry.get_sample_value(
            "lockstep_indexer_switch_leftovers_removed_total", labels
        )
        assert sample == count
    (cycle,) = (await runner.incremental()).results  # B still indexes from the live index
    assert [t.type_name for t in cycle.types] == [B.name]
    assert (await _location(runner, B.name)).mode is Mode.INCREMENTAL
