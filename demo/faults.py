"""The cluster demo's faults: SIGKILL an OpenSearch node that holds primaries and the Redis primary of a
type's control slot, time each cluster's promotion of the copies, then start the nodes again.

Everything goes through what an operator has: `lockstep services status --json` for the nodes' pids,
OpenSearch's `_cat` APIs and Redis's CLUSTER commands for who holds what, `lockstep services up` to bring
the killed nodes back. Times are wall clock (the load converts them to its own scale).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from demo.load import LoadStats

PROMOTION_TIMEOUT_SECONDS = 120.0  # past it the fault counts as not recovered (the check says so)
RESTART_TIMEOUT_SECONDS = 600.0  # an OpenSearch node's boot and shard recovery on 2 busy cores
RECOVERY_RUN = 20  # consecutive full answers after a kill that count as "the service recovered"
POLL_SECONDS = 0.1


class FaultError(Exception):
    """A fault could not be injected (no node to kill); the message says why."""


@dataclass(frozen=True)
class Fault:
    """One killed node and what the cluster did about it (wall-clock times; None: did not happen)."""

    service: str  # opensearch or redis
    node: str
    pid: int
    reason: str  # why this node: what it held
    killed_at: float
    promoted_at: float | None = None  # the copies took over: primaries assigned / replica is primary, ok
    promotion: str = ""  # what was observed at promotion
    rejoined_at: float | None = None  # started again, and the cluster whole and healthy

    @property
    def promotion_seconds(self) -> float | None:
        """Kill -> promotion."""
        return None if self.promoted_at is None else self.promoted_at - self.killed_at

    @property
    def rejoin_seconds(self) -> float | None:
        """Kill -> the node back and the cluster healthy."""
        return None if self.rejoined_at is None else self.rejoined_at - self.killed_at

    def as_json(self) -> dict[str, Any]:
        """Plain data with the derived durations."""
        return {
            "service": self.service,
            "node": self.node,
            "pid": self.pid,
            "reason": self.reason,
            "killed_at": self.killed_at,
            "promoted_at": self.promoted_at,
            "promotion": self.promotion,
            "promotion_seconds": self.promotion_seconds,
            "rejoined_at": self.rejoined_at,
            "rejoin_seconds": self.rejoin_seconds,
        }


@dataclass
class FaultLog:
    """What the fault task did so far (read by the live panel and the summary)."""

    faults: list[Fault] = field(default_factory=list)
    step: str = "waiting for the new versions to be published"
    error: str | None = None
    done: bool = False


@dataclass(frozen=True)
class ClusterTargets:
    """Where the cluster topology's nodes answer, and how to run `lockstep` against it."""

    opensearch_urls: tuple[str, ...]
    redis_ports: tuple[int, ...]
    index_pattern: str  # our indices (shadow and live)
    control_keys: tuple[str, ...]  # a key of each type's control slot, preferred victims first
    lockstep: tuple[str, ...]
    env: Mapping[str, str]
    restart_log: Path


async def _lockstep_json(lockstep: Sequence[str], env: Mapping[str, str], *args: str) -> Any:
    process = await asyncio.create_subprocess_exec(
        *lockstep, *args, env=dict(env), stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await process.communicate()
    return json.loads(stdout)  # `services status` exits 1 while unhealthy, and still prints its JSON


async def stack_pids(lockstep: Sequence[str], env: Mapping[str, str], topology: str) -> dict[str, int]:
    """Pid of each running node of a topology of the stack `env` names, by node name (`lockstep services
    status --json`; the single topology's are `opensearch` and `redis`)."""
    status = await _lockstep_json(lockstep, env, "services", "status", "--json", "--topology", topology)
    return {node["name"]: int(node["pid"]) for node in status["nodes"] if node.get("pid")}


async def node_pids(targets: ClusterTargets) -> dict[str, int]:
    """Pid of each running node of the cluster topology, by node name."""
    return await stack_pids(targets.lockstep, targets.env, "cluster")


# --- OpenSearch --------------------------------------------------------------------------------------------


async def _opensearch_get(targets: ClusterTargets, path: str, skip: str | None = None) -> Any:
    """GET from the first node that answers (not `skip`, a killed node's URL)."""
    last: Exception | None = None
    for url in targets.opensearch_urls:
        if url == skip:
            continue
        try:
            async with httpx.AsyncClient(base_url=url, timeout=2.0) as client:
                response = await client.get(path)
                response.raise_for_status()
                return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            last = exc
    raise FaultError(f"no OpenSearch node answered {path}: {last}")


async def _shards(targets: ClusterTargets, skip: str | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await _opensearch_get(
        targets, f"/_cat/shards/{targets.index_pattern}?format=json&h=index,shard,prirep,state,node", skip
    )
    return rows


async def _primaries(targets: ClusterTargets, skip: str | None = None) -> list[dict[str, Any]]:
    return [row for row in await _shards(targets, skip) if row.get("prirep") == "p"]


async def copied_indices(targets: ClusterTargets) -> set[str]:
    """Our indices each of whose shards has a started primary and a started replica: the ones a node's loss
    must not take down. A replica still recovering (an index just built, or one a restarted node copies
    back) cannot take over from its primary, so the promotion is awaited only for these."""
    rows = await _shards(targets)
    started = {(row["index"], row["shard"], row["prirep"]) for row in rows if row.get("state") == "STARTED"}
    shards = {(str(row["index"]), row["shard"]) for row in rows}
    uncopied = {index for index, shard in shards if not {(index, shard, "p"), (index, shard, "r")} <= started}
    return {index for index, _ in shards} - uncopied


async def opensearch_victim(targets: ClusterTargets) -> tuple[str, str]:
    """The node holding most primaries of our indices (a non-manager on a tie), and what it holds."""
    primaries = await _primaries(targets)
    held = Counter(str(row["node"]) for row in primaries if row.get("state") == "STARTED" and row.get("node"))
    if not held:
        raise FaultError(f"no started primary of {targets.index_pattern} on any node")
    nodes = await _opensearch_get(targets, "/_cat/nodes?format=json&h=name,cluster_manager")
    manager = {str(row["name"]) for row in nodes if row.get("cluster_manager") == "*"}
    name = max(sorted(held), key=lambda n: (held[n], n not in manager))
    indices = sorted({str(row["index"]) for row in primaries if row.get("node") == name})
    role = ", the elected cluster manager" if name in manager else ""
    return name, f"{held[name]} of {len(primaries)} primaries ({', '.join(indices)}){role}"


async def opensearch_promoted(
    targets: ClusterTargets, victim: str, victim_url: str, copied: set[str]
) -> str | None:
    """What shows the promotion, once the node has left and every primary of the `copied` indices (a
    started replica of each shard at the kill) is started elsewhere. The others cannot be promoted: a
    shadow build still loading (no replica, by design) or just replicated fails its cycle and a later one
    builds it again, so they are left out here."""
    with contextlib.suppress(FaultError):
        nodes = await _opensearch_get(targets, "/_cat/nodes?format=json&h=name", skip=victim_url)
        if any(row.get("name") == victim for row in nodes):
            return None  # not noticed gone yet: health would still say green
        shards = await _primaries(targets, skip=victim_url)
        primaries = [row for row in shards if row["index"] in copied]
        if primaries and all(
            row.get("state") == "STARTED" and row.get("node") != victim for row in primaries
        ):
            health = await _opensearch_get(targets, "/_cluster/health", skip=victim_url)
            others = len({str(row["index"]) for row in shards} - copied)
            return (
                f"{len(primaries)} primaries of {len(copied)} indices copied at the kill started on "
                f"{health['number_of_nodes']} nodes, {health['status']} ({others} indices without a "
                "started replica at the kill left out)"
            )
    return None


async def opensearch_back(targets: ClusterTargets, victim: str) -> str | None:
    """What shows the node back: a member again, and the cluster green (every copy started)."""
    with contextlib.suppress(FaultError):
        nodes = await _opensearch_get(targets, "/_cat/nodes?format=json&h=name")
        health = await _opensearch_get(targets, "/_cluster/health")
        if any(row.get("name") == victim for row in nodes) and health.get("status") == "green":
            return f"{victim} a member again, cluster green"
    return None


# --- Redis -------------------------------------------------------------------------------------------------


def _node(targets: ClusterTargets, port: int) -> aioredis.Redis:
    # Probes report what is: no retries, short timeouts (a killed node must not stall the loop). They log in
    # as the demo's processes do (`lockstep services env`).
    return aioredis.Redis(
        host="127.0.0.1",
        port=port,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        username=targets.env.get("LOCKSTEP_REDIS_USERNAME"),
        password=targets.env.get("LOCKSTEP_REDIS_PASSWORD"),
    )


async def _slot_primary(targets: ClusterTargets, port: int, key: str) -> tuple[int, int]:
    """(slot of `key`, port of its primary) as the node on `port` sees it."""
    client = _node(targets, port)
    try:
        slot = int(await client.cluster("keyslot", key))
        for start, end, primary, *_ in await client.cluster("slots"):
            if int(start) <= slot <= int(end):
                return slot, int(primary[1])
    finally:
        await client.aclose()
    raise FaultError(f"no node serves slot {slot} of {key}")


async def _replica_of(targets: ClusterTargets, ports: Sequence[int], primary: int) -> int | None:
    for port in ports:
        client = _node(targets, port)
        try:
            info = await client.info("replication")
            if info.get("role") == "slave" and int(info.get("master_port", 0)) == primary:
                return port
        except RedisError:
            continue
        finally:
            await client.aclose()
    return None


async def redis_victim(targets: ClusterTargets) -> tuple[int, int, str]:
    """(port of the primary of the first control key's slot, port of its replica, what it holds)."""
    key = targets.control_keys[0]
    slot, primary = await _slot_primary(targets, targets.redis_ports[0], key)
    replica = await _replica_of(targets, targets.redis_ports, primary)
    if replica is None:
        raise FaultError(f"the primary on port {primary} (slot {slot}) has no replica to take over")
    return primary, replica, f"primary of slot {slot} ({key}: the type's control keys), replica on :{replica}"


async def redis_promoted(targets: ClusterTargets, victim: int, replica: int) -> str | None:
    """What shows the failover, once the replica is a primary and every other node says cluster_state ok."""
    states: list[str] = []
    for port in targets.redis_ports:
        if port == victim:
            continue
        client = _node(targets, port)
        try:
            info = await client.cluster("info")
            states.append(str(info.get("cluster_state")))
            if port == replica and (await client.info("replication")).get("role") != "master":
                return None
        except RedisError:
            return None
        finally:
            await client.aclose()
    if all(state == "ok" for state in states):
        return f":{replica} is primary, cluster_state ok on {len(states)} nodes"
    return None


async def redis_back(targets: ClusterTargets, port: int) -> str | None:
    """What shows the killed primary back: it answers, as a replica (of its promoted one) with its link up."""
    client = _node(targets, port)
    try:
        info = await client.info("replication")
    except RedisError:
        return None
    finally:
        await client.aclose()
    if info.get("role") == "slave" and info.get("master_link_status") == "up":
        return f":{port} back as a replica of :{info.get('master_port')}"
    return None


# --- the sequence ------------------------------------------------------------------------------------------


async def _wait_for(check: Callable[[], Awaitable[str | None]], deadline: float) -> tuple[float | None, str]:
    while time.time() < deadline:
        seen = await check()
        if seen is not None:
            return time.time(), seen
        await asyncio.sleep(POLL_SECONDS)
    return None, "not within the timeout"


async def _wait_recovered(stats: LoadStats, since: float, deadline: float) -> None:
    """Until RECOVERY_RUN requests in a row sent after `since` (wall) were answered in full (or deadline)."""
    start = stats.since_start(since)
    while time.time() < deadline:
        after = sorted((o for o in stats.outcomes if o.at >= start), key=lambda o: o.at)
        if len(after) >= RECOVERY_RUN and all(o.ok for o in after[-RECOVERY_RUN:]):
            return
        await asyncio.sleep(POLL_SECONDS * 5)


def kill(pid: int) -> float:
    """SIGKILL a node; when it was sent (wall clock)."""
    os.kill(pid, signal.SIGKILL)
    return time.time()


async def services_up(lockstep: Sequence[str], env: Mapping[str, str], topology: str, log_path: Path) -> bool:
    """`lockstep services up --topology T`: starts the nodes that do not run, returns once healthy."""
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *lockstep,
            "services",
            "up",
            "--topology",
            topology,
            env=dict(env),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        return await process.wait() == 0


async def services_login(
    lockstep: Sequence[str], env: Mapping[str, str], topology: str, role: str
) -> dict[str, str]:
    """The Redis login `lockstep services env --role <role>` prints for the stack that runs (empty for a
    Redis without our users), as an operator would get it: LOCKSTEP_REDIS_USERNAME/PASSWORD."""
    argv = [*lockstep, "services", "env", "--role", role, "--topology", topology]
    process = await asyncio.create_subprocess_exec(*argv, env=dict(env), stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited with {process.returncode}")
    found: dict[str, str] = {}
    for line in out.decode().splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export":
            name, _, value = words[1].partition("=")
            if name in ("LOCKSTEP_REDIS_USERNAME", "LOCKSTEP_REDIS_PASSWORD"):
                found[name] = value
    return found


async def _restart(targets: ClusterTargets) -> bool:
    return await services_up(targets.lockstep, targets.env, "cluster", targets.restart_log)


async def run_faults(targets: ClusterTargets, stats: LoadStats, log: FaultLog) -> None:
    """Kill the OpenSearch node, await promotion and recovery, then the Redis primary's; restart both."""
    try:
        pids = await node_pids(targets)
        name, reason = await opensearch_victim(targets)
        url = targets.opensearch_urls[int(name.rsplit("-", 1)[1]) - 1]
        copied = await copied_indices(targets)
        log.step = f"killing OpenSearch {name}"
        killed = kill(pids[name])
        log.faults.append(Fault("opensearch", name, pids[name], reason, killed))
        log.step = f"OpenSearch {name} killed: waiting for its primaries to be promoted elsewhere"
        at, seen = await _wait_for(
            lambda: opensearch_promoted(targets, name, url, copied), killed + PROMOTION_TIMEOUT_SECONDS
        )
        log.faults[-1] = replace(log.faults[-1], promoted_at=at, promotion=seen)
        log.step = f"OpenSearch {name}: waiting for {RECOVERY_RUN} full answers in a row"
        await _wait_recovered(stats, killed, killed + PROMOTION_TIMEOUT_SECONDS)

        primary, replica, reason = await redis_victim(targets)
        redis_name = f"redis-{targets.redis_ports.index(primary) + 1}"
        log.step = f"killing Redis {redis_name}"
        killed = kill(pids[redis_name])
        log.faults.append(Fault("redis", redis_name, pids[redis_name], reason, killed))
        log.step = f"Redis {redis_name} killed: waiting for its replica to take over"
        at, seen = await _wait_for(
            lambda: redis_promoted(targets, primary, replica), killed + PROMOTION_TIMEOUT_SECONDS
        )
        log.faults[-1] = replace(log.faults[-1], promoted_at=at, promotion=seen)
        log.step = f"Redis {redis_name}: waiting for {RECOVERY_RUN} full answers in a row"
        await _wait_recovered(stats, killed, killed + PROMOTION_TIMEOUT_SECONDS)

        log.step = f"starting {name} and {redis_name} again (lockstep services up --topology cluster)"
        restart = asyncio.create_task(_restart(targets))
        # Each node's return is timed on its own: Redis is back in seconds, an OpenSearch JVM takes longer.
        deadline = time.time() + RESTART_TIMEOUT_SECONDS
        watches = {
            "opensearch": asyncio.create_task(_wait_for(lambda: opensearch_back(targets, name), deadline)),
            "redis": asyncio.create_task(_wait_for(lambda: redis_back(targets, primary), deadline)),
        }
        for index, fault in enumerate(log.faults):
            at, _ = await watches[fault.service]
            log.faults[index] = replace(fault, rejoined_at=at)
        if await restart:
            log.step = "killed nodes back, both clusters healthy"
        else:
            log.error = f"`lockstep services up --topology cluster` failed; see {targets.restart_log}"
    except (FaultError, KeyError, RedisError, httpx.HTTPError, ValueError, OSError) as exc:
        log.error = f"{type(exc).__name__}: {exc}"
    finally:
        log.done = True
