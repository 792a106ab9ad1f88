"""Catalog changes reach the live index's answers: a deleted item is gone and an edit changes filter results
after the next incremental cycle, also while cycles run on a period and queries keep coming."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from indexer_support import RunnerFactory, make_type, wait_latest

from contract.filters import FilterNode, parse_filter
from contract.indexing import IndexedLocation
from contract.settings import Settings
from contract.types import EmbeddingType
from indexer.scheduler import Runner
from search.requests import VersionedKnnQuery

pytestmark = pytest.mark.anyio

LANGUAGE = parse_filter({"op": "in", "field": "language", "values": ["zz"]})


async def _location(runner: Runner, etype: EmbeddingType) -> IndexedLocation:
    location = (await runner.orchestrator.type_info(etype.name)).in_use_location()
    assert location is not None
    return location


async def _answer(
    runner: Runner,
    etype: EmbeddingType,
    location: IndexedLocation,
    k: int = 300,
    filter: FilterNode | None = None,
) -> list[str]:
    vector = np.ones(etype.dim, dtype=np.float32)
    found = await runner.search.knn(VersionedKnnQuery(location, etype.similarity, vector, k=k, filter=filter))
    # Every answer is of the location's version alone (the invariant), whatever changed meanwhile.
    assert all(hit.source.get(location.version_field) == location.version for hit in found)
    return [hit.item_id for hit in found]


async def test_a_delete_and_an_edit_are_served_after_the_next_cycle(
    orchestrator: Settings, publish_version, make_runner: RunnerFactory
) -> None:
    etype = make_type("vis-d8")
    runner = make_runner(orchestrator)
    await wait_latest(orchestrator, etype.name, publish_version(etype, 1))
    await runner.incremental()
    location = await _location(runner, etype)
    before = await _answer(runner, etype, location)
    gone, edited = before[0], before[1]
    assert await _answer(runner, etype, location, filter=LANGUAGE) == []

    await runner.store.delete([gone])
    await runner.store.patch(edited, {"language": "zz"})
    assert gone in await _answer(runner, etype, location)  # nothing changes before a cycle applies it
    (cycle,) = (await runner.incremental()).results
    assert cycle.changes == 2 and cycle.deleted == 1
    assert gone not in await _answer(runner, etype, location)
    assert await _answer(runner, etype, location, filter=LANGUAGE) == [edited]
    (doc,) = (await runner.search.get_items(location.index, [edited])).values()
    assert doc["language"] == "zz" and doc[location.vector_field] is not None  # the edit kept its vector


async def test_visibility_bound_while_cycles_run_every_half_second(
    orchestrator: Settings, publish_version, make_runner: RunnerFactory
) -> None:
    """The time from an acknowledged write until answers show it, measured under steady queries."""
    etype = make_type("bound-d8")
    runner = make_runner(orchestrator)
    await wait_latest(orchestrator, etype.name, publish_version(etype, 1))
    await runner.incremental()
    location = await _location(runner, etype)
    stop = asyncio.Event()
    cycles = asyncio.create_task(runner.run_forever("incremental", 0.5, [etype.name], stop))
    answered = 0

    async def queries() -> None:
        nonlocal answered
        while not stop.is_set():
            await _answer(runner, etype, location, k=10)
            answered += 1

    load = asyncio.create_task(queries())
    bounds = []
    try:
        for round_ in range(5):
            victims = (await _answer(runner, etype, location))[:2]
            written = time.monotonic()
            await runner.store.delete([victims[0]])
            await runner.store.patch(victims[1], {"language": f"z{round_}"})
            edited = parse_filter({"op": "in", "field": "language", "values": [f"z{round_}"]})
            guard = written + 60  # fails a run that would hang; the bound itself is reported, not asserted
            while victims[0] in await _answer(runner, etype, location) or await _answer(
                runner, etype, location, filter=edited
            ) != [victims[1]]:
                assert time.monotonic() < guard, "a catalog change never reached the answers"
                await asyncio.sleep(0.02)  # polling the index: there is no event to wait on
            bounds.append(time.monotonic() - written)
    finally:
        stop.set()
        await load
        await cycles
    assert answered > 0
    print(f"\ncatalog change visible after {[round(b, 2) for b in bounds]} s (cycles every 0.5 s)")
