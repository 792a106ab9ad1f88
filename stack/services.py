"""The local stack in the topology the settings name: `single` (the default) or `cluster`."""

from __future__ import annotations

from rich.console import Console

from contract.settings import StackSettings, Topology
from stack import cluster, redis_acl, single
from stack.cluster import ClusterStatus
from stack.redis_acl import RedisUser
from stack.single import StackStatus

TopologyStatus = StackStatus | ClusterStatus


def ensure_running(settings: StackSettings, console: Console | None = None) -> TopologyStatus:
    """Bring up the settings' topology unless it already runs; returns its status."""
    if settings.topology == "cluster":
        return cluster.ensure_running(settings, console)
    return single.ensure_running(settings, console)


def status(settings: StackSettings) -> TopologyStatus:
    """Probe the settings' topology (starting nothing)."""
    if settings.topology == "cluster":
        return cluster.status(settings)
    return single.status(settings)


def running_topology(settings: StackSettings) -> Topology:
    """The settings' topology, unless nothing of it runs from the state dir and the other's processes do."""
    running = {"single": single.runs_any(settings), "cluster": cluster.runs_any(settings)}
    other: Topology = "single" if settings.topology == "cluster" else "cluster"
    return other if running[other] and not running[settings.topology] else settings.topology


def client_environment(settings: StackSettings, user: RedisUser = RedisUser.APP) -> dict[str, str]:
    """The LOCKSTEP_* variables that point processes at the settings' topology (single: the defaults do),
    logged in to our Redis as `user`."""
    if settings.topology == "cluster":
        return cluster.client_environment(settings, user)
    return redis_acl.client_environment(settings, user)


def stop(settings: StackSettings, only: Topology | None = None) -> dict[str, int | None]:
    """Stop the processes our pid files name, of both topologies or `only` one; the pid stopped per server.

    The single topology's servers are `opensearch` and `redis` (absent when a `*_URL` setting names
    them: not ours), the cluster's its node names (only when it was ever started from this state dir).
    `only` exists because both topologies share the state dir: whoever runs the cluster beside someone
    else's single node must be able to stop just the cluster.
    """
    stopped: dict[str, int | None] = {}
    if only in (None, "single"):
        stopped |= single.stop(settings)
    if only in (None, "cluster"):
        stopped |= cluster.stop(settings)
    return stopped
