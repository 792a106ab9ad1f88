"""Shadow mode against real OpenSearch, Redis and orchestrator: build, verify, swap, promote, retire."""

from __future__ import annotations

import time

import pytest
from indexer_support import CATALOG_SIZE, make_type, wait_latest
from opensearchpy import OpenSearch

from contract.indexing import Mode, items_alias, shadow_index
from contract.settings import Settings
from indexer.errors import DocumentRejectedError
from indexer.metrics import IndexerMetrics
from indexer.scheduler import Runner


def _runner(settings: Settings) -> Runner:
    return Runner(settings, IndexerMetrics.create(), catalog_limit=CATALOG_SIZE, batch_size=100)


def test_shadow_builds_promotes_and_retires(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch
) -> None:
    settings = orchestrator.model_copy(update={"shadow_keep": 1})
    etype = make_type()
    alias = items_alias(settings.index_prefix, etype.name)
    v1 = publish_version(etype, 1)
    wait_latest(settings, etype.name, v1)
    runner = _runner(settings)
    try:
        report = runner.shadow()
        (result,) = report.results
        assert result.built and result.promoted and result.recall >= settings.recall_floor
        info = runner.orchestrator.type_info(etype.name)
        assert info.in_use == v1
        (loc,) = info.indexed
        assert loc.mode is Mode.SHADOW and loc.index == shadow_index(settings.index_prefix, etype.name, v1)
        assert opensearch_client.indices.get_alias(name=alias).keys() == {loc.index}
        assert opensearch_client.count(index=alias)["count"] == CATALOG_SIZE
        # Cold items (no vector of v1) are there with metadata but without the slot.
        assert (
            opensearch_client.count(index=alias, body={"query": {"exists": {"field": loc.vector_field}}})[
                "count"
            ]
            == CATALOG_SIZE - 5
        )

        again = runner.shadow().results[0]
        assert not again.built and not again.promoted  # idempotent when nothing changed

        v2 = publish_version(etype, 2)
        wait_latest(settings, etype.name, v2)
        second = runner.shadow().results[0]
        assert second.built and second.promoted
        assert runner.orchestrator.type_info(etype.name).in_use == v2
        old = shadow_index(settings.index_prefix, etype.name, v1)
        assert opensearch_client.indices.exists(index=old)  # still answerable within the grace period
        time.sleep(settings.slot_grace_seconds + settings.request_timeout_seconds + 0.2)
        third = runner.shadow().results[0]
        assert third.removed == [old]
        assert not opensearch_client.indices.exists(index=old)
        assert [x.version for x in runner.orchestrator.type_info(etype.name).indexed] == [v2]
        samples = {s.name: s.value for m in runner.metrics.registry.collect() for s in m.samples}
        assert samples["lockstep_indexer_docs_indexed_total"] == 2 * CATALOG_SIZE
        assert samples["lockstep_indexer_promotions_total"] == 2
    finally:
        runner.close()


def test_rejected_document_fails_the_cycle_and_names_the_item(
    orchestrator: Settings, publish_version, opensearch_client: OpenSearch
) -> None:
    etype = make_type()
    v1 = publish_version(etype, 1, bad_item="42")
    wait_latest(orchestrator, etype.name, v1)
    runner = _runner(orchestrator)
    try:
        with pytest.raises(DocumentRejectedError, match=r"item '42'"):
            runner.shadow()
        info = runner.orchestrator.type_info(etype.name)
        assert info.in_use is None and info.indexed == []
        assert not opensearch_client.indices.exists_alias(
            name=items_alias(orchestrator.index_prefix, etype.name)
        )
    finally:
        runner.close()
