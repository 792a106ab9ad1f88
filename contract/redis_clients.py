"""The one place Redis clients are made, for every process and CLI: the topology comes from StoreSettings.

`standalone` is one server at `redis_url`; `cluster` a Redis Cluster found from `redis_cluster_nodes` (or
`redis_url`); `sentinel` the primary the Sentinels name, followed across failovers. A client for immutable
data (vectors, manifests) may read from replicas (`redis_replica_reads`); the primary client never does.
"""

from __future__ import annotations

from typing import Any, TypeAlias
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.cluster import ClusterNode, LoadBalancingStrategy, RedisCluster
from redis.sentinel import Sentinel

from contract.settings import StoreSettings

SyncRedis: TypeAlias = redis.Redis | RedisCluster
AsyncRedis: TypeAlias = aioredis.Redis | AsyncRedisCluster


def _host_port(entry: str) -> tuple[str, int]:
    host, _, port = entry.rpartition(":")
    return host, int(port)


def cluster_seeds(settings: StoreSettings) -> list[tuple[str, int]]:
    """host, port of the nodes a cluster client starts from (redis_cluster_nodes, else redis_url's)."""
    if settings.redis_cluster_nodes:
        return [_host_port(entry) for entry in settings.redis_cluster_nodes]
    url = urlsplit(settings.redis_endpoint)
    return [(url.hostname or "127.0.0.1", url.port or 6379)]


def _timeouts(timeout: float | None) -> dict[str, Any]:
    return {} if timeout is None else {"socket_timeout": timeout, "socket_connect_timeout": timeout}


def sync_client(
    settings: StoreSettings, *, timeout: float | None = None, replica_reads: bool = False, **options: Any
) -> SyncRedis:
    """A blocking client of the topology; with `replica_reads` (and the setting), one reading replicas.

    `options` go to every connection (redis-py keyword arguments). No I/O happens yet.
    """
    options = {**_timeouts(timeout), **options}
    replicas = replica_reads and settings.redis_replica_reads
    if settings.redis_topology == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in cluster_seeds(settings)],  # type: ignore[no-untyped-call]
            load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN_REPLICAS if replicas else None,
            **options,
        )
    if settings.redis_topology == "sentinel":
        sentinel = Sentinel([_host_port(h) for h in settings.redis_sentinel_hosts], **options)  # type: ignore[no-untyped-call]
        name = settings.redis_sentinel_master
        chosen: redis.Redis = sentinel.slave_for(name) if replicas else sentinel.master_for(name)  # type: ignore[no-untyped-call]
        return chosen
    return redis.Redis.from_url(settings.redis_endpoint, **options)


def async_client(
    settings: StoreSettings, *, timeout: float | None = None, replica_reads: bool = False, **options: Any
) -> AsyncRedis:
    """An asyncio client of the configured topology (see `sync_client`); no I/O happens yet."""
    options = {**_timeouts(timeout), **options}
    replicas = replica_reads and settings.redis_replica_reads
    if settings.redis_topology == "cluster":
        return AsyncRedisCluster(
            startup_nodes=[AsyncClusterNode(host, port) for host, port in cluster_seeds(settings)],
            load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN_REPLICAS if replicas else None,
            **options,
        )
    if settings.redis_topology == "sentinel":
        sentinel = AsyncSentinel([_host_port(h) for h in settings.redis_sentinel_hosts], **options)  # type: ignore[no-untyped-call]
        name = settings.redis_sentinel_master
        client: aioredis.Redis = sentinel.slave_for(name) if replicas else sentinel.master_for(name)
        return client
    return aioredis.Redis.from_url(settings.redis_endpoint, **options)
