"""Client fixtures: a published type in the test's prefix, and the real orchestrator app."""

from __future__ import annotations

import pytest
import redis
from client_support import Connect, Published, connect, publish_type

from contract.keys import Keys


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The app and redis.asyncio run on asyncio."""
    return "asyncio"


@pytest.fixture
def published(redis_client: redis.Redis, keys: Keys) -> Published:
    """Two versions of one direct type (cleaned up by `redis_client`)."""
    return publish_type(redis_client, keys)


@pytest.fixture
def app_client() -> Connect:
    """`async with app_client(settings, key) as client`: the real orchestrator app with its lifespan."""
    return connect
