"""Fixtures of the search tests: the engine as each process builds it, and items indices with vector slots."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from search_support import IndexFactory

from contract.settings import Settings
from contract.types import EmbeddingType
from indexer.scheduler import SEARCH_TIMEOUT_SECONDS
from search.client import build_client
from search.port import SearchEngine
from search.templates import install_items_template, vector_slot_mappings

# The two ways a process builds its engine: every test of the port passes with both.
BUILDS: dict[str, Callable[[Settings], SearchEngine]] = {
    "indexer": lambda s: build_client(s, timeout=SEARCH_TIMEOUT_SECONDS),  # indexer.scheduler.Runner
    # serving.state.AppState.build: a short timeout per call (then it degrades), a pool for concurrency.
    "serving": lambda s: build_client(s, timeout=s.serving_opensearch_timeout_seconds, pool_size=64),
}


@pytest.fixture
def anyio_backend() -> str:
    """The engine runs on asyncio (aiohttp)."""
    return "asyncio"


@pytest.fixture(params=sorted(BUILDS))
async def search(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[SearchEngine]:
    """The search engine as the indexer, then as serving, builds it; closed afterwards."""
    engine = BUILDS[request.param](settings)
    yield engine
    await engine.aclose()


@pytest.fixture
async def items_index(search: SearchEngine, settings: Settings, opensearch_client: object) -> IndexFactory:
    """Create `{prefix}-items-<suffix>` with the template installed and both slots of each given type.

    `opensearch_client` (tests/conftest.py) deletes every index of the test's prefix afterwards.
    """
    await install_items_template(search, settings)

    async def make(suffix: str, types: Sequence[EmbeddingType]) -> str:
        name = f"{settings.index_prefix}-items-{suffix}"
        properties: dict[str, object] = {}
        for etype in types:
            properties.update(vector_slot_mappings(etype, settings))
        await search.create_index(name, properties, settings.hnsw_ef_search)
        return name

    return make
