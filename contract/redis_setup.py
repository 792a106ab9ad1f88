"""The check every process starts with: Redis is of the configured topology and set up as Lockstep relies on.

Refused, naming the node and the setting: a server of the other topology (a cluster node given as
standalone answers MOVED, a standalone given as cluster cannot route), a cluster whose state is not ok,
any node without `maxmemory-policy noeviction` (eviction would silently drop vectors of a published
version), without `appendonly yes` (an acknowledged write must survive a restart), or with hash listpack
limits below what publishing's bucket sizing relies on (contract.vectors). Also refused: data in the key
schema before hash tags, which no process reads any more (`lockstep redis migrate-keys` moves it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import AskError, ClusterDownError, MovedError, RedisClusterException, RedisError
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError

from contract.keys import Keys, LegacyKeys
from contract.redis_clients import (
    REDIS_FAILURES,
    AsyncRedis,
    SyncRedis,
    cluster_seeds,
    node_login_options,
    sync_client,
)
from contract.replication import NotReplicated
from contract.settings import StoreSettings
from contract.vectors import LISTPACK_ENTRIES, LISTPACK_VALUE

log = logging.getLogger(__name__)

MIGRATE_COMMAND = "lockstep redis migrate-keys"

# Each node setting Lockstep relies on: what it must be, and why.
_RULES: Mapping[str, tuple[Callable[[str], bool], str, str]] = {
    "maxmemory-policy": (
        lambda value: value == "noeviction",
        "noeviction",
        "eviction would silently drop vectors of published versions",
    ),
    "appendonly": (
        lambda value: value == "yes",
        "yes",
        "an acknowledged publish or in_use change must survive a restart",
    ),
    "hash-max-listpack-entries": (
        lambda value: value.isdigit() and int(value) >= LISTPACK_ENTRIES,
        f">= {LISTPACK_ENTRIES}",
        "vector buckets must stay compact listpacks",
    ),
    "hash-max-listpack-value": (
        lambda value: value.isdigit() and int(value) >= LISTPACK_VALUE,
        f">= {LISTPACK_VALUE}",
        "vector buckets must stay compact listpacks",
    ),
}


class RedisSetupError(Exception):
    """Redis answers but is not what the settings say, or not set up as Lockstep needs."""


@dataclass(frozen=True)
class NodeFacts:
    """What one node says about itself."""

    name: str  # host:port
    cluster_enabled: bool
    cluster_state: str | None  # CLUSTER INFO's cluster_state, on cluster nodes
    config: Mapping[str, str]


def problems(settings: StoreSettings, nodes: Sequence[NodeFacts]) -> list[str]:
    """Every way the nodes differ from what the settings and publishing need, one line each."""
    found = []
    cluster = settings.redis_topology == "cluster"
    for node in nodes:
        if node.cluster_enabled and not cluster:
            found.append(
                f"Redis node {node.name} is a Redis Cluster node (it would answer MOVED) but "
                f"LOCKSTEP_REDIS_TOPOLOGY is {settings.redis_topology}; set LOCKSTEP_REDIS_TOPOLOGY=cluster"
            )
        elif cluster and not node.cluster_enabled:
            found.append(
                f"Redis node {node.name} is not a Redis Cluster node but LOCKSTEP_REDIS_TOPOLOGY is cluster; "
                "set LOCKSTEP_REDIS_TOPOLOGY=standalone (or sentinel)"
            )
        elif cluster and node.cluster_state != "ok":
            found.append(
                f"Redis node {node.name}: cluster_state is {node.cluster_state} (CLUSTER INFO); the Redis "
                "Cluster must be ok (every slot served) before Lockstep starts"
            )
        for setting, (holds, wanted, why) in _RULES.items():
            value = node.config.get(setting)
            if value is None or not holds(value):
                found.append(
                    f"Redis node {node.name}: {setting} is {value!r}, Lockstep needs {wanted} ({why}); "
                    f"set `{setting}` in its redis.conf (or CONFIG SET and CONFIG REWRITE)"
                )
    return found


def explain(exc: Exception) -> str | None:
    """A Redis failure that points at the setup, in the settings' terms (None: a plain outage or refusal)."""
    name = type(exc).__name__
    if isinstance(exc, RedisClusterException):
        # Its message names nodes and ports: those stay in the log, as for any outage.
        return f"{name}: no node of the Redis Cluster answers, or a slot has none; retry once they are back"
    if isinstance(exc, MovedError | AskError):
        return (
            f"{name} {exc}: the Redis at LOCKSTEP_REDIS_URL is a Redis Cluster node; "
            "set LOCKSTEP_REDIS_TOPOLOGY=cluster"
        )
    if isinstance(exc, ClusterDownError):
        return f"{name}: the Redis Cluster is down ({exc}); it answers again once every slot is served"
    if isinstance(exc, MasterNotFoundError):
        return (
            f"{name}: no Sentinel of LOCKSTEP_REDIS_SENTINEL_HOSTS names a primary for "
            f"LOCKSTEP_REDIS_SENTINEL_MASTER ({exc})"
        )
    if isinstance(exc, NotReplicated):
        return str(exc)
    return None


def legacy_problem(keys: Keys, legacy_types: Sequence[str]) -> str | None:
    """The refusal for types still stored in the key schema before hash tags, or None."""
    if not legacy_types:
        return None
    example = LegacyKeys(keys.prefix).published(legacy_types[0])
    return (
        f"Redis holds types {', '.join(legacy_types)} in the key schema before hash tags (e.g. {example}), "
        f"which this Lockstep no longer reads; run `{MIGRATE_COMMAND}` once (with publishers and "
        "indexers stopped), or re-publish those versions"
    )


def _facts(
    name: str, info: Mapping[str, Any], cluster_info: str | None, config: Mapping[Any, Any]
) -> NodeFacts:
    state = None
    if cluster_info is not None:
        lines = dict(line.split(":", 1) for line in cluster_info.splitlines() if ":" in line)
        state = lines.get("cluster_state", "unknown").strip()
    return NodeFacts(
        name=name,
        cluster_enabled=bool(info.get("cluster_enabled")),
        cluster_state=state,
        config={_text(k): _text(v) for k, v in config.items()},
    )


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _raise(found: Sequence[str]) -> None:
    if found:
        raise RedisSetupError("; ".join(found))


# Blocking variant (training, the indexer, the CLI).


def _node(host: str, port: int, timeout: float, settings: StoreSettings) -> redis.Redis:
    """A client of one node for a check: one attempt, since what it finds now is the answer (redis-py's
    default retries an unreachable node with backoff for seconds, and a probe asks every node)."""
    return redis.Redis(
        host,
        port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **node_login_options(settings),
    )


def _node_facts(client: redis.Redis, name: str) -> NodeFacts:
    info = client.info("cluster")
    cluster_info = None
    if info.get("cluster_enabled"):
        cluster_info = _text(client.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
    config: dict[Any, Any] = {}
    for setting in _RULES:
        config.update(client.config_get(setting))
    return _facts(name, info, cluster_info, config)


def _sync_nodes(client: SyncRedis, settings: StoreSettings) -> list[tuple[str, redis.Redis, bool]]:
    """(name, client, is_primary) of every node to check; clients of extra nodes are closed by the caller."""
    timeout = settings.request_timeout_seconds
    if isinstance(client, RedisCluster):
        return [
            (
                node.name,
                _node(node.host, node.port, timeout, settings),
                node.server_type == "primary",
            )
            for node in client.get_nodes()  # type: ignore[no-untyped-call]
        ]
    kwargs = client.connection_pool.connection_kwargs
    nodes: list[tuple[str, redis.Redis, bool]] = [
        (f"{kwargs.get('host')}:{kwargs.get('port')}", client, True)
    ]
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    if manager is not None:
        host, port = manager.discover_master(settings.redis_sentinel_master)
        nodes = [(f"{host}:{port}", client, True)]
        for host, port in manager.discover_slaves(settings.redis_sentinel_master):
            nodes.append((f"{host}:{port}", _node(host, port, timeout, settings), False))
    return nodes


def _seed_failure(settings: StoreSettings, exc: RedisClusterException) -> RedisError | RedisSetupError:
    """Why a cluster client could not start: what its seed nodes say of themselves, else its own error."""
    facts = []
    for host, port in cluster_seeds(settings):
        node = _node(host, port, settings.request_timeout_seconds, settings)
        try:
            facts.append(_node_facts(node, f"{host}:{port}"))
        except (redis.ConnectionError, redis.TimeoutError):
            continue
        finally:
            node.close()
    return _judged_seeds(settings, facts, exc)


def _judged_seeds(
    settings: StoreSettings, facts: Sequence[NodeFacts], exc: RedisClusterException
) -> RedisError | RedisSetupError:
    if not facts:
        return redis.ConnectionError(f"no seed node of the Redis Cluster answers ({exc})")
    found = problems(settings, facts)
    if found:
        return RedisSetupError("; ".join(found))
    return RedisSetupError(
        f"LOCKSTEP_REDIS_TOPOLOGY is cluster but the Redis Cluster does not answer as one ({exc})"
    )


def check(client: SyncRedis, settings: StoreSettings, keys: Keys, *, refuse_legacy: bool = True) -> None:
    """Raise RedisSetupError naming every problem; connection errors of the primary propagate.

    `refuse_legacy=False` lets data of the old key schema pass (for the command that migrates it).
    """
    try:
        if isinstance(client, RedisCluster):
            client.nodes_manager.initialize()
        nodes = _sync_nodes(client, settings)
    except RedisClusterException as exc:
        raise _seed_failure(settings, exc) from exc
    facts = []
    for name, node, primary in nodes:
        try:
            facts.append(_node_facts(node, name))
        except (redis.ConnectionError, redis.TimeoutError):
            if primary and not isinstance(client, RedisCluster):
                raise
            log.warning("redis node %s did not answer the setup check; skipped", name)
        finally:
            if node is not client:
                node.close()
    found = problems(settings, facts)
    if not found and refuse_legacy:
        legacy = _legacy_types(client, keys)
        found = [p for p in [legacy_problem(keys, legacy)] if p]
    _raise(found)


def checked_client(settings: StoreSettings, **options: Any) -> SyncRedis:
    """A blocking client (contract.redis_clients.sync_client) of a Redis that passed `check`."""
    try:
        client = sync_client(settings, **options)  # a cluster client reads the slot map right away
    except RedisClusterException as exc:
        raise _seed_failure(settings, exc) from exc
    try:
        check(client, settings, Keys(settings.key_prefix))
    except BaseException:
        client.close()
        raise
    return client


def _legacy_types(client: SyncRedis, keys: Keys) -> list[str]:
    names = sorted(_text(name) for name in client.hkeys(keys.types()))
    legacy = LegacyKeys(keys.prefix)
    return [name for name in names if client.exists(legacy.published(name))]


# Asyncio variant (the orchestrator, serving).


def _async_node(host: str, port: int, timeout: float, settings: StoreSettings) -> aioredis.Redis:
    """`_node` for asyncio."""
    return aioredis.Redis(
        host=host,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=AsyncRetry(NoBackoff(), 0),
        **node_login_options(settings),
    )


async def _async_node_facts(client: aioredis.Redis, name: str) -> NodeFacts:
    info = await client.info("cluster")
    cluster_info = None
    if info.get("cluster_enabled"):
        cluster_info = _text(await client.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
    config: dict[Any, Any] = {}
    for setting in _RULES:
        config.update(await client.config_get(setting))
    return _facts(name, info, cluster_info, config)


async def _async_nodes(client: AsyncRedis, settings: StoreSettings) -> list[tuple[str, aioredis.Redis, bool]]:
    timeout = settings.request_timeout_seconds
    if isinstance(client, AsyncRedisCluster):
        await client.initialize()
        return [
            (
                node.name,
                _async_node(node.host, int(node.port), timeout, settings),
                node.server_type == "primary",
            )
            for node in client.get_nodes()
        ]
    kwargs = client.connection_pool.connection_kwargs
    nodes: list[tuple[str, aioredis.Redis, bool]] = [
        (f"{kwargs.get('host')}:{kwargs.get('port')}", client, True)
    ]
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    if manager is not None:
        host, port = await manager.discover_master(settings.redis_sentinel_master)
        nodes = [(f"{host}:{port}", client, True)]
        for host, port in await manager.discover_slaves(settings.redis_sentinel_master):
            nodes.append((f"{host}:{port}", _async_node(host, port, timeout, settings), False))
    return nodes


async def check_async(client: AsyncRedis, settings: StoreSettings, keys: Keys) -> None:
    """`check` for asyncio clients."""
    try:
        nodes = await _async_nodes(client, settings)
    except RedisClusterException as exc:
        facts = []
        for host, port in cluster_seeds(settings):
            node = _async_node(host, port, settings.request_timeout_seconds, settings)
            try:
                facts.append(await _async_node_facts(node, f"{host}:{port}"))
            except (redis.ConnectionError, redis.TimeoutError):
                continue
            finally:
                await node.aclose()
        raise _judged_seeds(settings, facts, exc) from exc
    facts = []
    for name, node, primary in nodes:
        try:
            facts.append(await _async_node_facts(node, name))
        except (redis.ConnectionError, redis.TimeoutError):
            if primary and not isinstance(client, AsyncRedisCluster):
                raise
            log.warning("redis node %s did not answer the setup check; skipped", name)
        finally:
            if node is not client:
                await node.aclose()
    found = problems(settings, facts)
    if not found:
        names = sorted(_text(name) for name in await client.hkeys(keys.types()))
        legacy = LegacyKeys(keys.prefix)
        stale = [name for name in names if await client.exists(legacy.published(name))]
        found = [p for p in [legacy_problem(keys, stale)] if p]
    _raise(found)


async def cluster_states(settings: StoreSettings) -> str:
    """What the cluster's seed nodes say their cluster_state is (a readiness probe's diagnosis); asked
    all at once, so a probe takes one timeout at most however many nodes are unreachable."""

    async def said(host: str, port: int) -> str:
        node = _async_node(host, port, settings.request_timeout_seconds, settings)
        try:
            info = _text(await node.execute_command("CLUSTER", "INFO"))  # type: ignore[no-untyped-call]
            return f"{host}:{port} {_facts(f'{host}:{port}', {'cluster_enabled': 1}, info, {}).cluster_state}"
        except (redis.ConnectionError, redis.TimeoutError):
            return f"{host}:{port} unreachable"
        except RedisError as exc:
            return f"{host}:{port} {type(exc).__name__}"
        finally:
            await node.aclose()

    answers = await asyncio.gather(*(said(host, port) for host, port in cluster_seeds(settings)))
    return "cluster_state: " + ", ".join(answers)


async def unready(client: AsyncRedis, settings: StoreSettings) -> str | None:
    """Why Redis cannot serve now (None: it can): a PING, and on a cluster every primary's cluster_state.

    A cluster in `fail` still answers PING, so a cluster is asked for its state instead.
    """
    try:
        if not isinstance(client, AsyncRedisCluster):
            await client.ping()
            return None
        # Asked of several nodes, it answers per node.
        states: Mapping[str, Mapping[str, str]] = await client.cluster_info(  # type: ignore[assignment]
            target_nodes=AsyncRedisCluster.PRIMARIES
        )
    except REDIS_FAILURES as exc:
        if settings.redis_topology != "cluster":
            return f"{type(exc).__name__}"
        # A lost node often surfaces as a connection error: say what each seed says instead.
        return f"{type(exc).__name__}; {await cluster_states(settings)}"
    failing = sorted(
        f"{node} {info.get('cluster_state')}"
        for node, info in states.items()
        if info.get("cluster_state") != "ok"
    )
    return f"cluster_state: {', '.join(failing)}" if failing else None


class SetupGate:
    """The check of a long-running process: at startup when Redis answers, else once it first does."""

    def __init__(self, client: AsyncRedis, settings: StoreSettings, keys: Keys) -> None:
        self._client = client
        self._settings = settings
        self._keys = keys
        self._passed = False

    async def startup(self) -> None:
        """Check now: RedisSetupError refuses to start; an unreachable Redis is checked later instead."""
        try:
            await self.ensure()
        except (RedisError, OSError) as exc:
            log.warning("redis did not answer the setup check at startup (%s); checking once it answers", exc)

    async def ensure(self) -> None:
        """Pass once the check has passed; otherwise check (RedisSetupError, or the Redis failure)."""
        if not self._passed:
            await check_async(self._client, self._settings, self._keys)
            self._passed = True
