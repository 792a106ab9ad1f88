"""API fuzzing fixtures: the serving test world, served by a real orchestrator and serving."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from opensearchpy import OpenSearch

# The serving tests' world and stack helpers (tests/serving is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))

from serving_stack import Stack, start_stack
from serving_support import World, build_world

from contract.settings import Settings


@pytest.fixture
def world(settings: Settings, redis_client: redis.Redis, opensearch_client: OpenSearch) -> World:
    """Two versions of one type, indexed, the first in use, with user profiles."""
    return build_world(settings, redis_client, opensearch_client)


@pytest.fixture
def stack(settings: Settings, world: World) -> Iterator[Stack]:
    """The world served by a real orchestrator and serving (uvicorn on free ports)."""
    yield from start_stack(settings, world, world.versions[0].name)
