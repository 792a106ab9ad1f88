"""Helpers of the failover tests: a cluster put back to full strength, kills, timelines of HTTP calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from redis_servers import RedisServer, ThrowawayCluster, eventually

from contract.keys import Keys, Kind
from contract.manifest import Manifest
from contract.redis_clients import SyncRedis
from training.publish import VectorSet


async def until(check: Callable[[], bool], what: str, deadline: float = 60.0) -> None:
    """Yield to the event loop until `check` holds; fail naming `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: still not so after {deadline:.0f} s")
        await asyncio.sleep(0.01)


async def until_async(check: Callable[[], Awaitable[bool]], what: str, deadline: float = 60.0) -> None:
    """`until` for a check that awaits (an HTTP call): asked again every 50 ms until it holds."""
    end = time.monotonic() + deadline
    while not await check():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: still not so after {deadline:.0f} s")
        await asyncio.sleep(0.05)


def restore(cluster: ThrowawayCluster) -> None:
    """Start every node that is down and wait until each primary has a linked replica again."""
    for node in cluster.nodes:
        if not node.running:
            node.start()
    eventually(cluster.replicated, "every node runs, the cluster is ok and every primary has a replica")


@dataclass
class Kill:
    """A primary SIGKILLed: when, and the replica expected to take over."""

    victim: RedisServer
    replica: RedisServer
    at: float
    took_over_at: float = 0.0

    @classmethod
    def primary(cls, cluster: ThrowawayCluster, address: str) -> Kill:
        """SIGKILL the primary at `address` (by its own pid), noting its replica first."""
        replica = cluster.replica_of(address)
        victim = cluster.node(address)
        victim.kill()
        return cls(victim, replica, time.monotonic())

    def wait_takeover(self, cluster: ThrowawayCluster) -> float:
        """Wait until the replica is a primary and the cluster ok; seconds from the kill."""
        eventually(lambda: cluster.took_over(self.replica), f"{self.replica.address} takes over")
        self.took_over_at = time.monotonic()
        return self.took_over_at - self.at


@dataclass
class Call:
    """One HTTP call of a load task: what it asked, when, and what it got."""

    what: str
    started: float
    ended: float
    status: int
    retry_after: str | None
    body: dict[str, Any]


@dataclass
class Timeline:
    """Every call of a run, in completion order."""

    calls: list[Call] = field(default_factory=list)

    async def call(self, what: str, request: Any) -> Call:
        """Await `request` (an httpx call) and record it."""
        started = time.monotonic()
        answer: httpx.Response = await request
        body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
        call = Call(
            what, started, time.monotonic(), answer.status_code, answer.headers.get("Retry-After"), body
        )
        self.calls.append(call)
        return call

    def after(self, moment: float, status: int = 200) -> list[Call]:
        """Calls started after `moment` that got `status`."""
        return [c for c in self.calls if c.started > moment and c.status == status]

    def recovery(self, moment: float) -> float:
        """Seconds from `moment` to the end of the first successful call started after it."""
        return min(c.ended for c in self.after(moment)) - moment

    def statuses(self) -> dict[int, int]:
        """How many calls got each status."""
        counted: dict[int, int] = {}
        for c in self.calls:
            counted[c.status] = counted.get(c.status, 0) + 1
        return counted

    def assert_only_refusals_and_503s(self, allowed: set[int]) -> None:
        """Every answer is one of `allowed` or a 503 RedisUnavailable with Retry-After; never a 500."""
        for c in self.calls:
            if c.status == 503:
                assert c.retry_after is not None and c.body.get("error") == "RedisUnavailable", c
            else:
                assert c.status in allowed, c


def expected_vectors(sets: dict[Kind, VectorSet]) -> dict[tuple[Kind, str], bytes]:
    """(kind, id) -> little-endian float32 bytes, as a publish stores them."""
    return {
        (kind, entity): np.ascontiguousarray(vs.matrix[row], dtype="<f4").tobytes()
        for kind, vs in sets.items()
        for row, entity in enumerate(vs.ids)
    }


def stored_vectors(client: SyncRedis, keys: Keys, manifest: Manifest) -> dict[tuple[Kind, str], bytes]:
    """Every vector stored in the version's buckets, read bucket by bucket."""
    found: dict[tuple[Kind, str], bytes] = {}
    for kind in Kind:
        for bucket in range(manifest.buckets.of(kind)):
            name = keys.vectors(manifest.type_name, manifest.version, kind, bucket)
            for entity, vector in dict(client.hgetall(name)).items():  # type: ignore[arg-type]
                found[(kind, entity.decode())] = bytes(vector)
    return found
