"""Cluster test fixtures: a 3-node OpenSearch cluster of these tests' own, and the runners a test makes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from cluster_support import Cluster, cluster_settings, running_cluster

from contract.settings import Settings
from indexer.scheduler import Runner


@pytest.fixture(scope="session")
def cluster(stack_settings: Settings) -> Iterator[Cluster]:
    """Three OpenSearch nodes with k-NN, fresh for the session, stopped afterwards."""
    settings = cluster_settings(stack_settings)
    with running_cluster(settings) as layout:
        yield Cluster(settings, layout)


@pytest.fixture
def anyio_backend() -> str:
    """The indexer and the load run on asyncio."""
    return "asyncio"


@pytest.fixture
async def runners() -> AsyncIterator[list[Runner]]:
    """Runners a test makes (closed afterwards)."""
    made: list[Runner] = []
    yield made
    for runner in made:
        await runner.aclose()
