"""Serving fixtures: a published, indexed world; real orchestrator and serving on threads, behind proxies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from opensearchpy import OpenSearch
from serving_stack import Stack, start_stack
from serving_support import World, build_world

from contract.settings import Settings


@pytest.fixture
def world(settings: Settings, redis_client: redis.Redis, opensearch_client: OpenSearch) -> World:
    """Two versions of one type, incrementally indexed (slot A = V1, slot B = V2), V1 in use."""
    return build_world(settings, redis_client, opensearch_client)


@pytest.fixture
def stack(settings: Settings, world: World) -> Iterator[Stack]:
    """The world served, V1 in use."""
    yield from start_stack(settings, world, world.versions[0].name)
