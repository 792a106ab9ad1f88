"""The local stack in the topology the settings name: `single` (the default) or `cluster`."""

from __future__ import annotations

from rich.console import Console

from contract.settings import StackSettings, Topology
from stack import cluster, single
from stack.cluster import ClusterStatus
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


def client_environment(settings: StackSettings) -> dict[str, str]:
    """The LOCKSTEP_* variables that point processes at the settings' topology (single: the defaults do)."""
    if settings.topology == "cluster":
        return cluster.client_environment(settings)
    return {}


def stop(settings: StackSettings) -> dict[str, int | None]:
    """Stop both topologies' processes our pid files name; returns the pid stopped per server.

    The single topology's servers are `opensearch` and `redis` (absent when a `*_URL` setting names
    them: not ours), the cluster's its node names (only when it was ever started from this state dir).
    """
    return {**single.stop(settings), **cluster.stop(settings)}
