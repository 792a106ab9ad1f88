"""An admin rollback sticks: neither mode re-promotes the version rolled back from; a newer one resumes."""

from __future__ import annotations

import pytest
from indexer_support import MovableClock, RunnerFactory, grace_of, make_type, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import Slot, items_alias, shadow_index, vector_field
from contract.settings import Settings
from indexer.scheduler import Runner
from orchestrator_client import OrchestratorClient

pytestmark = pytest.mark.anyio


async def _rollback(settings: Settings, type_name: str) -> None:
    admin = settings.admin_keys[0].get_secret_value()
    async with OrchestratorClient(settings.orchestrator_url, admin, timeout=5) as client:
        await client.rollback(type_name, "test: bad model")


def _held_gauge(runner: Runner, mode: str, type_name: str) -> float | None:
    return runner.metrics.registry.get_sample_value(
        "lockstep_indexer_latest_held_back", {"mode": mode, "type": type_name}
    )


async def test_shadow_does_not_undo_a_rollback(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch, make_runner: RunnerFactory
) -> None:
    settings = orchestrator
    etype = make_type()
    alias = items_alias(settings.index_prefix, etype.name)
    runner = make_runner(settings)
    v1 = publish_version(etype, 1)
    await wait_latest(settings, etype.name, v1)
    await runner.shadow()
    v2 = publish_version(etype, 2)
    await wait_latest(settings, etype.name, v2)
    assert (await runner.shadow()).results[0].promoted
    await _rollback(settings, etype.name)
    assert (await runner.orchestrator.type_info(etype.name)).in_use == v1

    for _ in range(2):  # every later cycle keeps holding it, not just the first
        (held,) = (await runner.shadow()).results
        assert not held.promoted and not held.built
        assert held.held_back is not None and v2 in held.held_back
        assert (await runner.orchestrator.type_info(etype.name)).in_use == v1
        assert _held_gauge(runner, "shadow", etype.name) == 1.0
    # The alias follows what serves; v2's index stays (recorded) for a manual re-promotion.
    assert set(opensearch_client.indices.get_alias(name=alias)) == {
        shadow_index(settings.index_prefix, etype.name, v1)
    }
    assert opensearch_client.indices.exists(index=shadow_index(settings.index_prefix, etype.name, v2))

    v3 = publish_version(etype, 3)
    await wait_latest(settings, etype.name, v3)
    (resumed,) = (await runner.shadow()).results
    assert resumed.built and resumed.promoted and resumed.held_back is None
    assert (await runner.orchestrator.type_info(etype.name)).in_use == v3
    assert _held_gauge(runner, "shadow", etype.name) == 0.0


async def test_incremental_does_not_undo_a_rollback(
    orchestrator: Settings, publish_version, make_runner: RunnerFactory, clock: MovableClock
) -> None:
    settings = orchestrator
    etype = make_type()
    runner = make_runner(settings)
    # v1 and v2 are recorded a grace ago, by the runner's clock: their records hold no slot back now.
    clock.shift(-grace_of(settings))
    v1 = publish_version(etype, 1)
    await wait_latest(settings, etype.name, v1)
    await runner.incremental()
    v2 = publish_version(etype, 2)
    await wait_latest(settings, etype.name, v2)
    assert (await runner.incremental()).results[0].types[0].promoted
    clock.shift(grace_of(settings))
    await _rollback(settings, etype.name)

    (held,) = (await runner.incremental()).results[0].types
    assert not held.promoted and held.held_back is not None and v2 in held.held_back
    info = await runner.orchestrator.type_info(etype.name)
    assert info.in_use == v1
    # v2 keeps its slot and its record: an admin may move in_use back to it by hand.
    assert {x.version: x.vector_field for x in info.indexed}[v2] == vector_field(etype.name, Slot.B)
    assert _held_gauge(runner, "incremental", etype.name) == 1.0

    # v3 goes into v2's slot, but only after v2's grace, counted from the rollback (v2 served until
    # then), not from when v1 was first indexed.
    v3 = publish_version(etype, 3)
    await wait_latest(settings, etype.name, v3)
    (waiting,) = (await runner.incremental()).results[0].types
    assert not waiting.promoted and waiting.waiting_until is not None
    clock.shift(grace_of(settings))
    (resumed,) = (await runner.incremental()).results[0].types
    assert resumed.promoted and resumed.held_back is None and resumed.target == v3
    info = await runner.orchestrator.type_info(etype.name)
    assert info.in_use == v3
    assert {x.version: x.vector_field for x in info.indexed} == {
        v1: vector_field(etype.name, Slot.A),
        v3: vector_field(etype.name, Slot.B),
    }
    assert _held_gauge(runner, "incremental", etype.name) == 0.0
