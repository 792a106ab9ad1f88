"""Orchestrator fixtures: a fixture writer on the test's prefix, and apps with their lifespan running."""

from __future__ import annotations

import pytest
import redis
from orchestrator_support import AppFactory, Fixtures, open_client

from contract.keys import Keys
from contract.settings import Settings


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """The app and redis.asyncio run on asyncio."""
    return "asyncio"


@pytest.fixture
def orch_settings(settings: Settings) -> Settings:
    """Settings with a fast poll, so tests see new versions quickly."""
    return settings.model_copy(update={"orchestrator_poll_seconds": 0.05})


@pytest.fixture
def fixtures(redis_client: redis.Redis, keys: Keys) -> Fixtures:
    """Fixture writer for this test's prefix (cleaned up by `redis_client`)."""
    return Fixtures(redis_client, keys)


@pytest.fixture
def app_client() -> AppFactory:
    """`async with app_client(settings) as client`: an app with its lifespan running, over ASGI."""
    return open_client
