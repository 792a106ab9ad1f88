"""The indexer's latency budget (LOCKSTEP_INDEXER_SEARCH_LATENCY_BUDGET_MS): a build backs off while the
cluster's searches are slower than the budget, and climbs back once they are not."""

from __future__ import annotations

import math

import pytest
from opensearchpy import OpenSearch

from contract.settings import Settings
from indexer.metrics import IndexerMetrics
from indexer.throttle import MIN_DOCS_PER_SECOND, Throttle, next_rate
from search.client import build_client
from search.requests import ItemDocument, index_action
from search.templates import install_items_template


def test_over_the_budget_the_rate_halves_what_was_sent_and_within_it_climbs_back_to_the_cap() -> None:
    assert next_rate(math.inf, math.inf, True, 800.0) == 400.0  # half of what was sent, not of "no cap"
    assert next_rate(300.0, 1000.0, True, 800.0) == 150.0  # half of what was allowed, when that is less
    assert next_rate(60.0, 1000.0, True, 60.0) == MIN_DOCS_PER_SECOND  # a build always progresses
    assert next_rate(400.0, 1000.0, False, 400.0) == 500.0
    assert next_rate(900.0, 1000.0, False, 900.0) == 1000.0  # never past the cap
    assert next_rate(math.inf, math.inf, False, 800.0) == math.inf


@pytest.mark.anyio
async def test_searches_over_the_budget_slow_the_writes_and_within_it_the_writes_climb_back(
    settings: Settings, opensearch_client: OpenSearch
) -> None:
    search = build_client(settings)
    index = f"{settings.index_prefix}-items-throttled"
    now = [0.0]
    metrics = IndexerMetrics.create()
    # Any search costs more than a nanosecond: every interval with searches is over this budget.
    throttle = Throttle(search, budget_ms=1e-6, interval=1.0, metrics=metrics, clock=lambda: now[0])
    try:
        await install_items_template(search, settings)
        await search.create_index(index, {}, settings.hnsw_ef_search)
        await search.bulk_write([index_action(index, ItemDocument(f"d{n}", {})) for n in range(10)])
        await search.refresh(index)

        await throttle.acquire(200)  # the first reading: nothing to compare with yet
        assert throttle.rate == math.inf
        for _ in range(50):
            opensearch_client.search(index=index, body={"query": {"match_all": {}}})
        now[0] += 1.0
        await throttle.acquire(1)  # 200 documents went out in the interval while searches were slow
        assert throttle.search_ms is not None and throttle.search_ms > 0
        assert throttle.rate == 100.0
        assert metrics.registry.get_sample_value("lockstep_indexer_backoffs_total") == 1
        assert metrics.registry.get_sample_value("lockstep_indexer_write_rate_limit") == 100.0

        now[0] += 0.5  # within the interval: no reading, no change
        await throttle.acquire(1)
        assert throttle.rate == 100.0

        # Searches within the budget (other tests' clusters may search at any time; this holds either way).
        throttle.budget_ms = 1e9
        now[0] += 0.5
        await throttle.acquire(1)
        assert throttle.rate == 125.0
        assert metrics.registry.get_sample_value("lockstep_indexer_backoffs_total") == 1
    finally:
        await search.delete_index(index)
        await search.aclose()
