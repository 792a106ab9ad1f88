"""The cluster topology: 3 OpenSearch nodes and a Redis Cluster of 3 primaries + 3 replicas on loopback.

All nine processes run from this machine's one install (state dir `cluster/`, ports from the `cluster_*`
settings), always started by us: the `*_URL` settings tell processes where to connect, not what to start.
Up idempotently (only nodes that do not run are started), stopped by pid files, reported node by node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from contract.settings import StackSettings
from stack import opensearch_cluster, opensearch_node, redis_acl, redis_cluster, redis_server
from stack.errors import StackError
from stack.layout import Layout
from stack.lock import state_lock


@dataclass(frozen=True)
class NodeStatus:
    """One process of the cluster topology as seen right now."""

    service: str
    name: str
    # OpenSearch: cluster_manager (the elected one) or data; Redis: primary or replica; None when unknown.
    role: str | None
    url: str
    port: int
    pid: int | None
    healthy: bool
    data_dir: Path
    log_file: Path
    detail: str

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "service": self.service,
            "name": self.name,
            "role": self.role,
            "url": self.url,
            "port": self.port,
            "pid": self.pid,
            "healthy": self.healthy,
            "data_dir": str(self.data_dir),
            "log_file": str(self.log_file),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ClusterStatus:
    """The OpenSearch cluster and the Redis Cluster, and each of their nodes."""

    opensearch: opensearch_cluster.ClusterView
    redis: redis_cluster.ClusterView
    nodes: tuple[NodeStatus, ...]
    started: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        """OpenSearch green with 3 nodes and k-NN on each; Redis ok with 3 primaries, each replicated."""
        return self.opensearch.healthy and self.redis.healthy

    @property
    def knn_plugin(self) -> str | None:
        """The k-NN plugin when every OpenSearch node has the same one."""
        found = {view.knn_plugin for view in self.opensearch.nodes}
        return found.pop() if len(found) == 1 else None

    def as_json(self) -> dict[str, Any]:
        """The `services status --json` document."""
        opensearch = [view.node for view in self.opensearch.nodes]
        redis = [view.node for view in self.redis.nodes]
        versions = {view.version for view in self.redis.nodes if view.version}
        return {
            "topology": "cluster",
            "healthy": self.healthy,
            "opensearch_url": opensearch[0].url,
            "opensearch_urls": [node.url for node in opensearch],
            "redis_url": redis[0].url,
            "redis_urls": [node.url for node in redis],
            "opensearch_version": next((v.version for v in self.opensearch.nodes if v.version), None),
            "knn_plugin": self.knn_plugin,
            "redis_version": versions.pop() if len(versions) == 1 else None,
            "opensearch": {
                "healthy": self.opensearch.healthy,
                "status": self.opensearch.status,
                "number_of_nodes": self.opensearch.number_of_nodes,
                "detail": self.opensearch.detail,
            },
            "redis": {
                "healthy": self.redis.healthy,
                "cluster_state": self.redis.state,
                "primaries": len(self.redis.primaries),
                "linked_replicas": sum(self.redis.replicas_per_primary.values()),
                "detail": self.redis.detail,
            },
            "nodes": [node.as_json() for node in self.nodes],
        }


def status(settings: StackSettings) -> ClusterStatus:
    """Probe every node (starting nothing)."""
    layout = Layout.of(settings)
    opensearch = opensearch_cluster.probe(layout.cluster_opensearch)
    redis = redis_cluster.probe(layout.cluster_redis, redis_acl.admin_login(settings))
    nodes = [
        NodeStatus(
            service="opensearch",
            name=view.node.name,
            role=view.role if view.member else None,
            url=view.node.url,
            port=view.node.http_port,
            pid=opensearch_node.running_pid(view.node),
            healthy=view.healthy,
            data_dir=view.node.data,
            log_file=view.node.log,
            detail=_opensearch_detail(view),
        )
        for view in opensearch.nodes
    ]
    nodes += [
        NodeStatus(
            service="redis",
            name=view.node.name,
            role=view.role,
            url=view.node.url,
            port=view.node.port,
            pid=redis_server.running_pid(view.node),
            healthy=view.healthy,
            data_dir=view.node.dir,
            log_file=view.node.log,
            detail=_redis_detail(view),
        )
        for view in redis.nodes
    ]
    return ClusterStatus(opensearch=opensearch, redis=redis, nodes=tuple(nodes))


def _opensearch_detail(view: opensearch_cluster.NodeView) -> str:
    if not view.answers:
        return "not answering"
    if not view.member:
        return "answers, not in the cluster"
    return view.knn_plugin or "no k-NN plugin"


def _redis_detail(view: redis_cluster.NodeView) -> str:
    if not view.answers:
        return "not answering"
    of = f" of {view.primary}, link {'up' if view.link_up else 'down'}" if view.role == "replica" else ""
    return f"cluster_state {view.cluster_state}, {view.known_nodes} nodes known{of}"


def ensure_running(settings: StackSettings, console: Console | None = None) -> ClusterStatus:
    """Start whatever node of the cluster topology does not run and wait until both clusters are healthy."""
    console = console or Console(stderr=True)
    current = status(settings)
    if current.healthy:
        return current
    layout = Layout.of(settings)
    with state_lock(layout):
        current = status(settings)  # someone may have started it while we waited for the lock
        started: tuple[str, ...] = ()
        if not current.opensearch.healthy:
            started += opensearch_cluster.launch_missing(settings, layout, console)
        # Redis comes up within seconds, while the OpenSearch nodes boot.
        if not current.redis.healthy:
            users = redis_acl.ensure(settings.state_dir)
            started += redis_cluster.start(layout, console, users, settings.redis_system_user)
        if not current.opensearch.healthy:
            ports = ", ".join(str(node.http_port) for node in layout.cluster_opensearch)
            with console.status(f"waiting for the OpenSearch cluster on ports {ports} to turn green"):
                opensearch_cluster.wait_healthy(layout)
    final = status(settings)
    if not final.healthy:
        raise StackError(
            f"the cluster topology is not healthy after start: OpenSearch {final.opensearch.detail}; "
            f"Redis {final.redis.detail}"
        )
    return replace(final, started=started)


def client_environment(
    settings: StackSettings, user: redis_acl.RedisUser = redis_acl.RedisUser.APP
) -> dict[str, str]:
    """The LOCKSTEP_* variables that point processes at every node of the local cluster topology, logged
    in to Redis as `user`."""
    return {
        **{
            f"LOCKSTEP_{name.upper()}": value if isinstance(value, str) else json.dumps(value)
            for name, value in settings.cluster_stores().items()
        },
        **redis_acl.client_environment(settings, user),
    }


def runs_any(settings: StackSettings) -> bool:
    """Whether a pid file of ours names a live node of this topology."""
    layout = Layout.of(settings)
    return any(opensearch_node.running_pid(node) for node in layout.cluster_opensearch) or any(
        redis_server.running_pid(node) for node in layout.cluster_redis
    )


def stop(settings: StackSettings) -> dict[str, int | None]:
    """Stop every node our pid files name; returns the pid stopped per node (None: was not running)."""
    layout = Layout.of(settings)
    if not layout.cluster_dir.exists():
        return {}
    with state_lock(layout):
        return {**opensearch_cluster.stop(layout), **redis_cluster.stop(layout)}
