"""A Redis Cluster that loses a primary without a replica goes to `fail`: 503 naming it, never a 500."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_servers import NO_LOGIN, ThrowawayCluster, eventually
from topology_support import TYPE, auth, orchestrator, publish_versions

from contract import routes
from contract.keys import Keys
from contract.redis_clients import sync_client
from contract.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def fragile(tmp_path: Path) -> Iterator[ThrowawayCluster]:
    """Three primaries and no replica: losing one fails the cluster."""
    started = ThrowawayCluster(tmp_path, primaries=3, replicas=0)
    try:
        yield started.start()
    finally:
        started.stop()


def _state(cluster: ThrowawayCluster, address: str) -> str:
    client = cluster.node(address).client()
    try:
        text = client.execute_command("CLUSTER", "INFO").decode()
    finally:
        client.close()
    return dict(line.split(":", 1) for line in text.split() if ":" in line)["cluster_state"]


async def test_a_failed_cluster_answers_503_naming_the_state(
    settings: Settings, fragile: ThrowawayCluster
) -> None:
    own = settings.model_copy(
        update={
            "redis_topology": "cluster",
            "redis_cluster_nodes": fragile.seeds,
            "redis_wait_replicas": 0,
            "request_timeout_seconds": 0.5,
            **NO_LOGIN,
        }
    )
    client = sync_client(own)
    (version,) = publish_versions(client, own, 20, months=1)
    client.set(Keys(own.key_prefix).in_use(TYPE.name), version)
    owner = client.get_node_from_key(Keys(own.key_prefix).in_use(TYPE.name)).name  # type: ignore[no-untyped-call]
    client.close()
    reader = auth(own, "reader")
    user = routes.user_vector_path(TYPE.name, "u3")
    async with orchestrator(own) as api:
        assert (await api.get(user, headers=reader)).status_code == 200
        victim = next(node for node in fragile.nodes if node.address != owner)
        assert victim.process is not None
        os.kill(victim.process.pid, signal.SIGKILL)
        victim.process.wait()
        victim.process = None
        survivor = fragile.node(owner).address
        eventually(lambda: _state(fragile, survivor) == "fail", "the cluster notices the lost primary")
        down = await api.get(user, headers=reader)
        assert down.status_code == 503 and down.json()["error"] == "RedisUnavailable", down.text
        assert "Retry-After" in down.headers
        ready = await api.get("/readyz")
        assert ready.status_code == 503 and f"{survivor} fail" in ready.json()["detail"], ready.text
