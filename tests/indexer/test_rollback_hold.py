"""An admin rollback sticks: neither mode re-promotes the version rolled back from; a newer one resumes."""

from __future__ import annotations

import time

import httpx
from indexer_support import CATALOG_SIZE, make_type, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import Slot, items_alias, shadow_index, vector_field
from contract.settings import Settings
from indexer.metrics import IndexerMetrics
from indexer.scheduler import Runner


def _rollback(settings: Settings, type_name: str) -> None:
    admin = settings.admin_keys[0].get_secret_value()
    response = httpx.post(
        f"{settings.orchestrator_url}/v1/embedding-types/{type_name}/rollback",
        headers={"Authorization": f"Bearer {admin}"},
        json={"reason": "test: bad model"},
        timeout=5,
    )
    assert response.status_code == 200, response.text


def _held_gauge(runner: Runner, mode: str, type_name: str) -> float | None:
    return runner.metrics.registry.get_sample_value(
        "lockstep_indexer_latest_held_back", {"mode": mode, "type": type_name}
    )


def test_shadow_does_not_undo_a_rollback(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch
) -> None:
    settings = orchestrator
    etype = make_type()
    alias = items_alias(settings.index_prefix, etype.name)
    runner = Runner(settings, IndexerMetrics.create(), catalog_limit=CATALOG_SIZE, batch_size=100)
    try:
        v1 = publish_version(etype, 1)
        wait_latest(settings, etype.name, v1)
        runner.shadow()
        v2 = publish_version(etype, 2)
        wait_latest(settings, etype.name, v2)
        assert runner.shadow().results[0].promoted
        _rollback(settings, etype.name)
        assert runner.orchestrator.type_info(etype.name).in_use == v1

        for _ in range(2):  # every later cycle keeps holding it, not just the first
            (held,) = runner.shadow().results
            assert not held.promoted and not held.built
            assert held.held_back is not None and v2 in held.held_back
            assert runner.orchestrator.type_info(etype.name).in_use == v1
            assert _held_gauge(runner, "shadow", etype.name) == 1.0
        # The alias follows what serves; v2's index stays (recorded) for a manual re-promotion.
        assert set(opensearch_client.indices.get_alias(name=alias)) == {
            shadow_index(settings.index_prefix, etype.name, v1)
        }
        assert opensearch_client.indices.exists(index=shadow_index(settings.index_prefix, etype.name, v2))

        v3 = publish_version(etype, 3)
        wait_latest(settings, etype.name, v3)
        (resumed,) = runner.shadow().results
        assert resumed.built and resumed.promoted and resumed.held_back is None
        assert runner.orchestrator.type_info(etype.name).in_use == v3
        assert _held_gauge(runner, "shadow", etype.name) == 0.0
    finally:
        runner.close()


def test_incremental_does_not_undo_a_rollback(orchestrator: Settings, publish_version) -> None:
    settings = orchestrator
    etype = make_type()
    runner = Runner(settings, IndexerMetrics.create(), catalog_limit=CATALOG_SIZE, batch_size=100)
    try:
        v1 = publish_version(etype, 1)
        wait_latest(settings, etype.name, v1)
        runner.incremental()
        v2 = publish_version(etype, 2)
        wait_latest(settings, etype.name, v2)
        assert runner.incremental().results[0].types[0].promoted
        _rollback(settings, etype.name)
        rolled_back_at = time.monotonic()

        (held,) = runner.incremental().results[0].types
        assert not held.promoted and held.held_back is not None and v2 in held.held_back
        info = runner.orchestrator.type_info(etype.name)
        assert info.in_use == v1
        # v2 keeps its slot and its record: an admin may move in_use back to it by hand.
        assert {x.version: x.vector_field for x in info.indexed}[v2] == vector_field(etype.name, Slot.B)
        assert _held_gauge(runner, "incremental", etype.name) == 1.0

        # v3 goes into v2's slot, but only after v2's grace, counted from the rollback (v2 served until
        # then), not from when v1 was first indexed.
        v3 = publish_version(etype, 3)
        wait_latest(settings, etype.name, v3)
        grace = settings.slot_grace_seconds + settings.request_timeout_seconds
        (waiting,) = runner.incremental().results[0].types
        if time.monotonic() - rolled_back_at < grace - 0.5:
            assert not waiting.promoted and waiting.waiting_until is not None
        time.sleep(max(0.0, grace + 0.2 - (time.monotonic() - rolled_back_at)))
        (resumed,) = runner.incremental().results[0].types
        assert resumed.promoted and resumed.held_back is None and resumed.target == v3
        info = runner.orchestrator.type_info(etype.name)
        assert info.in_use == v3
        assert {x.version: x.vector_field for x in info.indexed} == {
            v1: vector_field(etype.name, Slot.A),
            v3: vector_field(etype.name, Slot.B),
        }
        assert _held_gauge(runner, "incremental", etype.name) == 0.0
    finally:
        runner.close()
