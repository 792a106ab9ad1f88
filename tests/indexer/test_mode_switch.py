"""Mode per type: one type shadow, another incremental; switching a type only when asked, safely."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest
import redis
from indexer_support import CATALOG_SIZE, make_type, wait_latest
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
from indexer.changes import ChangeKind, publish_change
from indexer.errors import ModeConflictError
from indexer.metrics import IndexerMetrics
from indexer.scheduler import Runner
from search import engine
from search.requests import VersionedKnnQuery, holding_any_body

A = make_type("mode-a-d8")
B = make_type("mode-b-d8")


def _location(runner: Runner, type_name: str) -> IndexedLocation:
    info = runner.orchestrator.type_info(type_name)
    return next(x for x in info.indexed if x.version == info.in_use)


def _answers(client: OpenSearch, location: IndexedLocation) -> None:
    """A versioned k-NN query at `location` finds 10 items, all of its version."""
    query = VersionedKnnQuery(location, A.similarity, np.ones(A.dim).tolist(), 10, source_fields=())
    hits = engine.knn_search(client, query)
    assert len(hits) == 10 and {h.version for h in hits} == {location.version}


def test_types_keep_their_mode_and_switch_only_when_asked(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch
) -> None:
    settings = orchestrator
    runner = Runner(settings, IndexerMetrics.create(), catalog_limit=CATALOG_SIZE, batch_size=100)
    try:
        for etype in (A, B):
            wait_latest(settings, etype.name, publish_version(etype, 1))
        runner.shadow([A.name])
        runner.incremental([B.name])
        assert _location(runner, A.name).mode is Mode.SHADOW
        assert _location(runner, B.name).mode is Mode.INCREMENTAL

        # Unnamed, a cycle takes only its own mode's types; named, the other mode's type is an error.
        assert [r.type_name for r in runner.shadow().results] == [A.name]
        (live,) = runner.incremental().results
        assert [t.type_name for t in live.types] == [B.name]
        with pytest.raises(ModeConflictError, match=f"{A.name}.*shadow.*--switch-mode"):
            runner.incremental([A.name])
        with pytest.raises(ModeConflictError, match=f"{B.name}.*incremental"):
            runner.shadow([B.name])

        # Switch A to incremental: in_use is re-indexed into the live index and re-recorded there;
        # the shadow index stays, so a request routed to it before the switch still gets its version.
        old = _location(runner, A.name)
        runner.incremental([A.name], switch=True)
        new = _location(runner, A.name)
        assert new.mode is Mode.INCREMENTAL and new.index == live_index(settings.index_prefix)
        assert new.version == old.version
        _answers(opensearch_client, old)
        _answers(opensearch_client, new)
        assert _location(runner, B.name).mode is Mode.INCREMENTAL  # B's slots untouched

        # Back to shadow within the grace would rebuild (so first delete) the index `old` still names.
        with pytest.raises(ModeConflictError, match=f"{old.index}.*before the last switch"):
            runner.shadow([A.name], switch=True)
        _answers(opensearch_client, old)
        # After the grace: a fresh shadow build of the same version becomes its location.
        time.sleep(settings.slot_grace_seconds + settings.request_timeout_seconds + 0.2)
        runner.shadow([A.name], switch=True)
        back = _location(runner, A.name)
        assert back.mode is Mode.SHADOW and back.version == old.version
        _answers(opensearch_client, back)
        _answers(opensearch_client, new)
    finally:
        runner.close()


def test_a_cycle_given_one_type_covers_every_type_served_incrementally(
    orchestrator: Settings,
    publish_version,
    opensearch_client: OpenSearch,
    redis_client: redis.Redis,
    keys: Keys,
) -> None:
    settings = orchestrator
    c, d = make_type("mode-c-d8"), make_type("mode-d-d8")
    live = live_index(settings.index_prefix)
    runner = Runner(settings, IndexerMetrics.create(), catalog_limit=CATALOG_SIZE, batch_size=100)
    try:
        for etype in (A, B, c):
            wait_latest(settings, etype.name, publish_version(etype, 1))
        runner.shadow([A.name])
        runner.incremental([B.name])
        runner.incremental([c.name])
        c_at = _location(runner, c.name)
        assert c_at.mode is Mode.INCREMENTAL

        # A catalog change read by a cycle given only B: C's vector of that item is (re)written too.
        item = runner.catalog()[9]
        opensearch_client.update(
            index=live, id=item.item_id, body={"doc": {c_at.vector_field: None, c_at.version_field: None}}
        )
        publish_change(redis_client, keys, ChangeKind.UPSERT, replace(item, title="Retitled"))
        (cycle,) = runner.incremental([B.name]).results
        written = {t.type_name: t.written for t in cycle.types}
        assert set(written) == {B.name, c.name} and written[c.name] >= 1
        doc = opensearch_client.get(index=live, id=item.item_id)["_source"]
        assert doc["title"] == "Retitled" and doc[c_at.version_field] == c_at.version

        # Neither the shadow type nor a type with no version in use yet is taken along.
        wait_latest(settings, d.name, publish_version(d, 1))
        (cycle,) = runner.incremental([B.name]).results
        assert {t.type_name for t in cycle.types} == {B.name, c.name}
        assert _location(runner, A.name).mode is Mode.SHADOW
        assert runner.orchestrator.type_info(d.name).in_use is None
    finally:
        runner.close()


def test_the_old_modes_index_or_slots_go_once_the_grace_after_a_switch_is_over(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch
) -> None:
    settings = orchestrator
    live = live_index(settings.index_prefix)
    grace = settings.slot_grace_seconds + settings.request_timeout_seconds + 0.2
    runner = Runner(settings, IndexerMetrics.create(), catalog_limit=CATALOG_SIZE, batch_size=100)

    def holding(name: str) -> int:
        fields = [f(name, slot) for slot in Slot for f in (vector_field, version_field)]
        return engine.count(opensearch_client, live, holding_any_body(fields))

    try:
        for etype in (A, B):
            wait_latest(settings, etype.name, publish_version(etype, 1))
        runner.shadow([A.name])
        runner.incremental([B.name])
        shadow_at = _location(runner, A.name)

        # To incremental: within the grace the shadow index stays (requests may be routed to it)...
        (cycle,) = runner.incremental([A.name], switch=True).results
        assert {t.type_name: t.removed for t in cycle.types} == {A.name: [], B.name: []}
        _answers(opensearch_client, shadow_at)
        time.sleep(grace)
        # ...after it, the next incremental cycle withdraws the shadow records and deletes the index.
        (cycle,) = runner.incremental().results
        assert {t.type_name: t.removed for t in cycle.types} == {A.name: [shadow_at.index], B.name: []}
        assert not engine.index_exists(opensearch_client, shadow_at.index)
        assert not engine.index_exists(opensearch_client, items_alias(settings.index_prefix, A.name))
        assert {x.mode for x in runner.orchestrator.type_info(A.name).indexed} == {Mode.INCREMENTAL}
        _answers(opensearch_client, _location(runner, A.name))

        # Back to shadow: A's live slots stay within the grace, go after it; B's are untouched.
        (result,) = runner.shadow([A.name], switch=True).results
        held = holding(A.name)
        assert result.cleared_live_docs == 0 and held == CATALOG_SIZE - 5  # 5 cold items have no vector
        time.sleep(grace)
        (result,) = runner.shadow().results
        assert result.cleared_live_docs == held
        assert holding(A.name) == 0 and holding(B.name) == CATALOG_SIZE - 5
        assert {x.mode for x in runner.orchestrator.type_info(A.name).indexed} == {Mode.SHADOW}
        _answers(opensearch_client, _location(runner, A.name))
        for kind, count in (("shadow_indices", 1), ("live_documents", held)):
            labels = {"type": A.name, "kind": kind}
            sample = runner.metrics.registry.get_sample_value(
                "lockstep_indexer_switch_leftovers_removed_total", labels
            )
            assert sample == count
        (cycle,) = runner.incremental().results  # B still indexes from the live index
        assert [t.type_name for t in cycle.types] == [B.name]
        assert _location(runner, B.name).mode is Mode.INCREMENTAL
    finally:
        runner.close()
