"""The one place Redis clients are made, for every process and CLI: the topology comes from StoreSettings.

`standalone` is one server at `redis_url`; `cluster` a Redis Cluster found from `redis_cluster_nodes` (or
`redis_url`); `sentinel` the primary the Sentinels name, followed across failovers. A client for immutable
data (vectors, manifests) may read from replicas (`redis_replica_reads`); the primary client never does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.cluster import ClusterNode, LoadBalancingStrategy, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.sentinel import Sentinel

from contract.settings import StoreSettings

SyncRedis: TypeAlias = redis.Redis | RedisCluster
AsyncRedis: TypeAlias = aioredis.Redis | AsyncRedisCluster

# What a failed Redis call may raise. redis-py's cluster clients raise RedisClusterException, which is not a
# RedisError, when no node answers while they learn the slot map (every node restarting) or a slot has no
# node: an outage all the same, so whatever handles RedisError handles these too.
REDIS_FAILURES: tuple[type[Exception], ...] = (RedisError, RedisClusterException)


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


def login_options(settings: StoreSettings) -> dict[str, Any]:
    """redis-py keyword arguments that log in (ACL user and password) and verify a TLS server (rediss://),
    for a client made from a URL (`from_url` takes TLS itself from the rediss:// scheme).

    A user or password written in redis_url takes precedence over these (redis-py's from_url).
    """
    options: dict[str, Any] = {}
    if settings.redis_username is not None:
        options["username"] = settings.redis_username
    if settings.redis_password is not None:
        options["password"] = settings.redis_password.get_secret_value()
    if settings.redis_tls:
        options["ssl_cert_reqs"] = "required"
        if settings.redis_ca_file is not None:
            options["ssl_ca_certs"] = str(settings.redis_ca_file)
    return options


def node_login_options(settings: StoreSettings) -> dict[str, Any]:
    """`login_options` for a client made from a host and port (a cluster's nodes, a check of one node)."""
    options = login_options(settings)
    if settings.redis_tls:
        options["ssl"] = True
    return options


def sync_client(
    settings: StoreSettings, *, timeout: float | None = None, replica_reads: bool = False, **options: Any
) -> SyncRedis:
    """A blocking client of the topology; with `replica_reads` (and the setting), one reading replicas.

    `options` go to every connection (redis-py keyword arguments). No I/O happens yet.
    """
    options = {**_timeouts(timeout), **options}
    replicas = replica_reads and settings.redis_replica_reads
    if settings.redis_topology != "standalone":
        options = {**node_login_options(settings), **options}
    else:
        options = {**login_options(settings), **options}
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


class _ClusterConnection(aioredis.Connection):
    """redis-py 8.1's asyncio connection, writing through the writer it holds at that moment.

    The cluster client disconnects every connection, including ones other tasks are using, when a node
    answers CLUSTERDOWN during a failover; redis-py 8.1 then reads `self._writer` after it was cleared
    and raises AttributeError (not a RedisError: a 500) instead of ConnectionError. Fixed upstream after
    8.1 (redis/redis-py#4288); this is that fix.
    """

    async def _send_packed_command(self, command: Iterable[bytes]) -> None:
        writer = self._writer
        if writer is None or writer.transport is None or writer.transport.is_closing():
            raise RedisConnectionError("connection closed by another task (a cluster client reset)")
        writer.writelines(command)
        await writer.drain()


def _safe_connections(client: AsyncRedisCluster) -> AsyncRedisCluster:
    # Nodes learned later take their class from these kwargs; the seeds were made already.
    client.nodes_manager.connection_kwargs["connection_class"] = _ClusterConnection
    for node in client.nodes_manager.startup_nodes.values():
        node.connection_class = _ClusterConnection
    return client


def async_client(
    settings: StoreSettings, *, timeout: float | None = None, replica_reads: bool = False, **options: Any
) -> AsyncRedis:
    """An asyncio client of the configured topology (see `sync_client`); no I/O happens yet."""
    options = {**_timeouts(timeout), **options}
    replicas = replica_reads and settings.redis_replica_reads
    if settings.redis_topology != "standalone":
        options = {**node_login_options(settings), **options}
    else:
        options = {**login_options(settings), **options}
    if settings.redis_topology == "cluster":
        return _safe_connections(
            AsyncRedisCluster(
                startup_nodes=[AsyncClusterNode(host, port) for host, port in cluster_seeds(settings)],
                load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN_REPLICAS if replicas else None,
                **options,
            )
        )
    if settings.redis_topology == "sentinel":
        sentinel = AsyncSentinel([_host_port(h) for h in settings.redis_sentinel_hosts], **options)  # type: ignore[no-untyped-call]
        name = settings.redis_sentinel_master
        client: aioredis.Redis = sentinel.slave_for(name) if replicas else sentinel.master_for(name)
        return client
    return aioredis.Redis.from_url(settings.redis_endpoint, **options)
