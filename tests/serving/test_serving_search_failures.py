"""An OpenSearch 5xx reaches serving's callers as the dependency's outage, never as serving's own error."""

from __future__ import annotations

import asyncio

import pytest

from contract.settings import Settings
from search.errors import SearchFailed, SearchUnavailable
from serving.searching import searched
from serving.state import AppState


def test_an_opensearch_5xx_is_an_outage_counted_against_the_breaker(settings: Settings) -> None:
    async def run() -> None:
        state = AppState.build(settings)
        try:

            async def failing() -> None:
                raise SearchFailed("knn search: OpenSearch failed (500): node_closed_exception")

            before = state.search_breaker.failures
            with pytest.raises(SearchUnavailable, match="OpenSearch failed"):
                await searched(state, failing())
            assert state.search_breaker.failures == before + 1
        finally:
            await state.aclose()

    asyncio.run(run())
