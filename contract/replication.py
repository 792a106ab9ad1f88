"""Atomic writes that count as done only once replicas have them: a script, then WAIT on its connection.

Every multi-key change (a manifest commit, an in_use move) is one Lua script over keys of one hash tag, so
it is atomic and single-slot in every topology. WAIT covers only the writes of the connection it is sent
on, so the script and the WAIT go out together on one connection to the primary that owns the keys. Too
few acknowledgements raise NotReplicated: the primary applied the write, but a failover could still lose
it, so the caller must not report success (a retry is safe: every such script is idempotent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.exceptions import AskError, MovedError, RedisError, ResponseError

from contract.redis_clients import AsyncRedis, SyncRedis
from contract.settings import StoreSettings

Arg = str | bytes | int | float
_TOPOLOGY_MOVES = (MovedError, AskError)


@dataclass(frozen=True)
class Replication:
    """How many replicas must acknowledge a commit, and how long to wait for them."""

    replicas: int
    timeout_ms: int

    @classmethod
    def of(cls, settings: StoreSettings) -> Replication:
        """The settings' requirement (redis_wait_replicas, redis_wait_timeout_ms)."""
        return cls(settings.redis_replicas_to_wait, settings.redis_wait_timeout_ms)


UNCONFIRMED = Replication(0, 1)  # a write is done when the primary has it (standalone without replicas)


class NotReplicated(RedisError):  # noqa: N818 - a RedisError, so every Redis failure path handles it
    """The primary applied a write, but fewer replicas than required acknowledged it in time."""

    def __init__(self, acknowledged: int, replication: Replication, reply: Any) -> None:
        super().__init__(
            f"redis replication: {acknowledged} of {replication.replicas} replicas acknowledged the write "
            f"within {replication.timeout_ms} ms (LOCKSTEP_REDIS_WAIT_REPLICAS, "
            "LOCKSTEP_REDIS_WAIT_TIMEOUT_MS); it may be lost in a failover, retry"
        )
        self.acknowledged = acknowledged
        self.reply = reply


def _eval(script: str, keys: Sequence[str], args: Sequence[Arg]) -> tuple[Arg, ...]:
    return ("EVAL", script, len(keys), *keys, *args)


def _wait(replication: Replication) -> tuple[Arg, ...]:
    return ("WAIT", replication.replicas, replication.timeout_ms)


def _checked(acknowledged: Any, replication: Replication, reply: Any) -> Any:
    if int(acknowledged) < replication.replicas:
        raise NotReplicated(int(acknowledged), replication, reply)
    return reply


# Blocking variant (training).


@contextmanager
def primary_connection(client: SyncRedis, key: str | bytes) -> Iterator[Any]:
    """A connection of its own to the primary that owns `key`; dropped if a reply may be left unread."""
    if isinstance(client, RedisCluster):
        node = client.get_node_from_key(key)  # type: ignore[no-untyped-call]
        pool = client.get_redis_connection(node).connection_pool
    else:
        pool = client.connection_pool
    connection: Any = pool.get_connection()
    try:
        yield connection
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)


def send(connection: Any, commands: Sequence[Sequence[Arg] | bytes]) -> None:
    """Write commands in one go; a command is its arguments, or RESP bytes packed by the caller."""
    packed: list[bytes] = []
    for command in commands:
        if isinstance(command, bytes):
            packed.append(command)
        else:
            packed.extend(connection.pack_command(*command))
    connection.send_packed_command(packed)


def receive(connection: Any, count: int) -> list[Any]:
    """Read `count` replies; an error reply is raised once all are read (so the stream stays in step)."""
    replies: list[Any] = []
    failure: ResponseError | None = None
    for _ in range(count):
        try:
            replies.append(connection.read_response())
        except ResponseError as exc:
            failure = failure or exc
            replies.append(exc)
    if failure is not None:
        raise failure
    return replies


def exchange(connection: Any, commands: Sequence[Sequence[Arg] | bytes]) -> list[Any]:
    """Send commands in one write and read every reply."""
    send(connection, commands)
    return receive(connection, len(commands))


def wait_for_replicas(connection: Any, replication: Replication) -> None:
    """WAIT for the writes sent so far on `connection`; NotReplicated if too few replicas have them."""
    if replication.replicas:
        (acknowledged,) = exchange(connection, [_wait(replication)])
        _checked(acknowledged, replication, None)


def run_script_on(
    connection: Any, script: str, keys: Sequence[str], args: Sequence[Arg], replication: Replication
) -> Any:
    """The script's reply, once `replication` holds for it (on a connection to the keys' primary)."""
    if not replication.replicas:
        return exchange(connection, [_eval(script, keys, args)])[0]
    reply, acknowledged = exchange(connection, [_eval(script, keys, args), _wait(replication)])
    return _checked(acknowledged, replication, reply)


def run_script(
    client: SyncRedis, script: str, keys: Sequence[str], args: Sequence[Arg], replication: Replication
) -> Any:
    """Run a single-slot script on the primary owning `keys` and wait for `replication`."""
    if not replication.replicas:
        return client.eval(script, len(keys), *keys, *args)
    for attempt in range(2):
        try:
            with primary_connection(client, keys[0]) as connection:
                return run_script_on(connection, script, keys, args, replication)
        except _TOPOLOGY_MOVES:
            # The slot moved (a failover or resharding): the script did not run; learn the map, retry once.
            if attempt or not isinstance(client, RedisCluster):
                raise
            client.nodes_manager.initialize()
    raise AssertionError("unreachable")


# Asyncio variant (the orchestrator).


@asynccontextmanager
async def primary_connection_async(client: AsyncRedis, key: str | bytes) -> AsyncIterator[Any]:
    """`primary_connection` for asyncio clients."""
    if isinstance(client, AsyncRedisCluster):
        await client.initialize()
        node = client.get_node_from_key(key.decode() if isinstance(key, bytes) else key)
        if node is None:
            raise RedisError(f"no Redis Cluster node serves the slot of {key!r}")
        connection = node.acquire_connection()
        try:
            yield connection
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            node.release(connection)
        return
    pool = client.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        yield connection
    except BaseException:
        await connection.disconnect()
        raise
    finally:
        await pool.release(connection)


async def exchange_async(connection: Any, commands: Sequence[Sequence[Arg]]) -> list[Any]:
    """`exchange` for asyncio connections."""
    await connection.send_packed_command(connection.pack_commands(commands))
    replies: list[Any] = []
    failure: ResponseError | None = None
    for _ in commands:
        try:
            replies.append(await connection.read_response())
        except ResponseError as exc:
            failure = failure or exc
            replies.append(exc)
    if failure is not None:
        raise failure
    return replies


async def run_script_async(
    client: AsyncRedis, script: str, keys: Sequence[str], args: Sequence[Arg], replication: Replication
) -> Any:
    """`run_script` for asyncio clients."""
    if not replication.replicas:
        return await client.eval(script, len(keys), *keys, *args)
    for attempt in range(2):
        try:
            async with primary_connection_async(client, keys[0]) as connection:
                reply, acknowledged = await exchange_async(
                    connection, [_eval(script, keys, args), _wait(replication)]
                )
                return _checked(acknowledged, replication, reply)
        except _TOPOLOGY_MOVES:
            if attempt or not isinstance(client, AsyncRedisCluster):
                raise
            await client.nodes_manager.initialize()
    raise AssertionError("unreachable")
