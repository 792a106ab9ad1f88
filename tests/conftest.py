"""Fixtures shared by every test: the real stack, and a fresh key/index prefix per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch

from contract.items import schema
from contract.keys import Keys
from contract.redis_clients import SyncRedis, sync_client
from contract.settings import Settings
from search.client import connection_options
from stack.services import client_environment, ensure_running


@pytest.fixture(autouse=True)
def _item_schema_kept() -> Iterator[None]:
    """A test that changes the process's item schema must put it back (contract.items.using_schema)."""
    before = schema()
    yield
    assert schema() is before, f"the test left the item schema {schema().name!r} in effect"


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    """Settings of the running stack; brings it up through the same code as `lockstep services up`.

    A server that cannot be started is a failure, never a skip.
    """
    # The tests use the shipped dev-* keys, which only development mode accepts.
    base = Settings(development=True)
    ensure_running(base)
    # The cluster tier (LOCKSTEP_TOPOLOGY=cluster): every process, in-test or spawned, uses every node.
    os.environ.update(client_environment(base))
    return Settings(development=True)


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    """The stack's settings with a key prefix and index prefix of this test's own."""
    token = f"t{uuid.uuid4().hex[:10]}"
    return stack_settings.model_copy(update={"key_prefix": token, "index_prefix": token})


@pytest.fixture
def keys(settings: Settings) -> Keys:
    """The Redis key builder of this test's prefix."""
    return Keys(settings.key_prefix)


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[SyncRedis]:
    """A Redis client; every key of this test's prefix is deleted afterwards."""
    client = sync_client(settings)
    yield client  # a RedisCluster in the cluster tier
    batch = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
    for start in range(0, len(batch), 1000):
        client.delete(*batch[start : start + 1000])
    client.close()


@pytest.fixture
def opensearch_client(settings: Settings) -> Iterator[OpenSearch]:
    """An OpenSearch client; every index and template of this test's prefix is deleted afterwards."""
    client = OpenSearch(hosts=settings.opensearch_hosts, timeout=60, **connection_options(settings))
    yield client
    client.indices.delete(index=f"{settings.index_prefix}-*", expand_wildcards="all", ignore_unavailable=True)
    for name in client.indices.get_index_template(name=f"{settings.index_prefix}-*", ignore=404).get(
        "index_templates", []
    ):
        client.indices.delete_index_template(name=name["name"])
    client.close()
