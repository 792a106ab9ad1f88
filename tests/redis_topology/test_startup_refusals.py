"""Every process refuses to start on a Redis set up wrongly, naming the node and the setting.

Each case starts a throwaway redis-server with one setting broken (or of the other topology); the check
(contract.redis_setup) runs in the orchestrator's and serving's lifespans, the publish CLI and the indexer.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
import pytest
from redis_servers import GOOD_CONFIG, NO_LOGIN, RedisServer, ThrowawayCluster, free_ports, new_server
from typer.testing import CliRunner

from cli.main import app as lockstep
from contract.keys import Keys
from contract.redis_clients import async_client
from contract.redis_setup import RedisSetupError, check_async, checked_client
from contract.settings import Settings
from orchestrator.main import create_app as create_orchestrator
from serving.main import create_app as create_serving

pytestmark = pytest.mark.anyio

BROKEN = {
    "appendonly": ("no", "appendonly is 'no', Lockstep needs yes"),
    "maxmemory-policy": ("allkeys-lru", "maxmemory-policy is 'allkeys-lru', Lockstep needs noeviction"),
    "hash-max-listpack-entries": ("64", "hash-max-listpack-entries is '64', Lockstep needs >= 128"),
    "hash-max-listpack-value": ("1024", "hash-max-listpack-value is '1024', Lockstep needs >= 4096"),
}


def _on(settings: Settings, server: RedisServer) -> Settings:
    return settings.model_copy(update={"redis_url": server.url, **NO_LOGIN})


def _env(settings: Settings) -> dict[str, str | None]:
    return {
        "LOCKSTEP_REDIS_URL": str(settings.redis_url),
        "LOCKSTEP_KEY_PREFIX": settings.key_prefix,
        "LOCKSTEP_REDIS_TOPOLOGY": settings.redis_topology,
        "LOCKSTEP_DEVELOPMENT": "1",
        # Unset: these servers have no ACL users (the stack Redis's login may be in the environment).
        "LOCKSTEP_REDIS_USERNAME": None,
        "LOCKSTEP_REDIS_PASSWORD": None,
    }


@pytest.mark.parametrize("setting", sorted(BROKEN))
async def test_each_process_refuses_a_node_without_what_lockstep_relies_on(
    settings: Settings, throwaway: list[RedisServer], tmp_path: Path, setting: str
) -> None:
    value, named = BROKEN[setting]
    server = new_server(throwaway, tmp_path, {**GOOD_CONFIG, setting: value})
    own = _on(settings, server)
    where = f"Redis node 127.0.0.1:{server.port}: {named}"

    with pytest.raises(RedisSetupError, match=re.escape(where)):
        checked_client(own)
    orchestrator = create_orchestrator(own)
    with pytest.raises(RedisSetupError, match=re.escape(where)):
        async with orchestrator.router.lifespan_context(orchestrator):
            pass
    serving = create_serving(own)
    with pytest.raises(RedisSetupError, match=re.escape(where)):
        async with serving.router.lifespan_context(serving):
            pass
    published = CliRunner().invoke(lockstep, ["types", "list"], env=_env(own))
    assert published.exit_code == 2 and "refusing to use Redis" in published.output
    assert where in " ".join(published.output.split())  # the console wraps long lines
    # The indexer runs its own event loop (asyncio.run), so its command runs off this test's loop.
    indexer = await asyncio.to_thread(CliRunner().invoke, lockstep, ["index", "shadow"], env=_env(own))
    assert isinstance(indexer.exception, RedisSetupError) and where in str(indexer.exception)


async def test_a_cluster_node_given_as_standalone_is_refused_naming_the_topology_setting(
    settings: Settings, cluster: ThrowawayCluster
) -> None:
    own = settings.model_copy(update={"redis_url": f"redis://{cluster.seeds[0]}", **NO_LOGIN})
    named = "is a Redis Cluster node (it would answer MOVED) but LOCKSTEP_REDIS_TOPOLOGY is standalone"
    with pytest.raises(RedisSetupError, match=re.escape(named)):
        checked_client(own)
    client = async_client(own)
    with pytest.raises(RedisSetupError, match=re.escape("set LOCKSTEP_REDIS_TOPOLOGY=cluster")):
        await check_async(client, own, Keys(own.key_prefix))
    await client.aclose()
    orchestrator = create_orchestrator(own)
    with pytest.raises(RedisSetupError, match=re.escape(named)):
        async with orchestrator.router.lifespan_context(orchestrator):
            pass


async def test_a_standalone_given_as_cluster_and_a_failed_cluster_are_refused(
    settings: Settings, throwaway: list[RedisServer], tmp_path: Path
) -> None:
    standalone = new_server(throwaway, tmp_path, GOOD_CONFIG)
    own = settings.model_copy(update={"redis_url": standalone.url, "redis_topology": "cluster", **NO_LOGIN})
    with pytest.raises(
        RedisSetupError, match="is not a Redis Cluster node but LOCKSTEP_REDIS_TOPOLOGY is cluster"
    ):
        checked_client(own)
    client = async_client(own)
    with pytest.raises(RedisSetupError, match=re.escape("set LOCKSTEP_REDIS_TOPOLOGY=standalone")):
        await check_async(client, own, Keys(own.key_prefix))
    await client.aclose()

    # A cluster node that serves no slot: its cluster_state is fail.
    lonely = new_server(throwaway, tmp_path, {**GOOD_CONFIG, "cluster-enabled": "yes"})
    failed = settings.model_copy(update={"redis_url": lonely.url, "redis_topology": "cluster", **NO_LOGIN})
    named = f"Redis node 127.0.0.1:{lonely.port}: cluster_state is fail"
    with pytest.raises(RedisSetupError, match=re.escape(named)):
        checked_client(failed)
    orchestrator = create_orchestrator(failed)
    with pytest.raises(RedisSetupError, match=re.escape(named)):
        async with orchestrator.router.lifespan_context(orchestrator):
            pass


async def test_an_unreachable_redis_does_not_stop_the_start_but_readiness_waits_for_the_check(
    settings: Settings, throwaway: list[RedisServer], tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    server = RedisServer(port, tmp_path / "later", {**GOOD_CONFIG, "appendonly": "no"})
    own = _on(settings, server).model_copy(update={"request_timeout_seconds": 0.3})
    orchestrator = create_orchestrator(own)
    async with orchestrator.router.lifespan_context(orchestrator):
        transport = httpx.ASGITransport(app=orchestrator)
        async with httpx.AsyncClient(transport=transport, base_url="http://o") as client:
            down = await client.get("/readyz")
            assert down.status_code == 503 and down.json()["error"] == "RedisUnavailable"
            throwaway.append(server.start())  # reachable now, but without AOF
            refused = await client.get("/readyz")
            assert refused.status_code == 503 and "Retry-After" in refused.headers
            assert f"127.0.0.1:{server.port}: appendonly is 'no'" in refused.json()["detail"]
