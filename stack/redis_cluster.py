"""The cluster topology's Redis: a Redis Cluster of 3 primaries with a replica each, a redis-server per port.

Each node has the single Redis's settings (loopback, AOF every second, noeviction, listpack sizes) plus
`cluster-enabled`; `redis-cli --cluster create` joins six fresh nodes once, and later starts re-form the
cluster from each node's nodes.conf. Up means `cluster_state:ok` on all six and every replica linked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from rich.console import Console

from contract.settings import REDIS_CLUSTER_BUS_OFFSET, REDIS_CLUSTER_NODES
from stack import ports, redis_server
from stack.errors import StackError
from stack.layout import Layout, RedisNode
from stack.redis_acl import RedisUser, RedisUsers

PRIMARIES = REDIS_CLUSTER_NODES // 2
START_TIMEOUT_SECONDS = 60.0
# How long a silent primary has before its replica takes over; Redis's 15 s default would stall every
# write to its slots that long after a primary dies.
NODE_TIMEOUT_MS = 5000
CLUSTER_CONFIG = (
    "cluster-enabled yes",
    "cluster-config-file nodes.conf",
    f"cluster-node-timeout {NODE_TIMEOUT_MS}",
)


@dataclass(frozen=True)
class NodeView:
    """One Redis node as it sees itself and the cluster right now."""

    node: RedisNode
    version: str | None
    # Its own CLUSTER INFO: ok/fail, None when it does not answer as a cluster node.
    cluster_state: str | None
    known_nodes: int
    slots_assigned: int
    # primary/replica.
    role: str | None
    # A replica's primary (a node name of ours), and whether its replication link is up.
    primary: str | None
    link_up: bool

    @property
    def answers(self) -> bool:
        """It answers as a cluster node."""
        return self.cluster_state is not None

    @property
    def fresh(self) -> bool:
        """It has never joined a cluster: it knows only itself and serves no slot."""
        return self.known_nodes == 1 and self.slots_assigned == 0

    @property
    def healthy(self) -> bool:
        """Its cluster is ok with all six nodes, and a replica's link to its primary is up."""
        return (
            self.cluster_state == "ok"
            and self.known_nodes == REDIS_CLUSTER_NODES
            and (self.role == "primary" or (self.role == "replica" and self.link_up))
        )


@dataclass(frozen=True)
class ClusterView:
    """The six nodes."""

    nodes: tuple[NodeView, ...]

    @property
    def primaries(self) -> list[str]:
        """Names of the nodes that are primaries now."""
        return [view.node.name for view in self.nodes if view.role == "primary"]

    @property
    def replicas_per_primary(self) -> Counter[str]:
        """Linked replicas of each primary."""
        return Counter(view.primary for view in self.nodes if view.primary is not None and view.link_up)

    @property
    def healthy(self) -> bool:
        """Every node ok, and 3 primaries each with a linked replica."""
        replicas = self.replicas_per_primary
        return (
            all(view.healthy for view in self.nodes)
            and len(self.primaries) == PRIMARIES
            and all(replicas[name] >= 1 for name in self.primaries)
        )

    @property
    def state(self) -> str | None:
        """The cluster state the answering nodes agree on (`ok`, `fail`), or None when none answers."""
        states = {view.cluster_state for view in self.nodes if view.answers}
        return states.pop() if len(states) == 1 else ("mixed" if states else None)

    @property
    def detail(self) -> str:
        """One line for messages and the status table."""
        silent = [view.node.name for view in self.nodes if not view.answers]
        parts = [
            f"cluster_state {self.state or '-'}",
            f"{len(self.primaries)} primaries, {sum(self.replicas_per_primary.values())} linked replicas",
        ]
        if silent:
            parts.append(f"not answering: {', '.join(silent)}")
        return ", ".join(parts)


def start(
    layout: Layout,
    console: Console,
    users: RedisUsers,
    system_user: str,
    timeout: float = START_TIMEOUT_SECONDS,
) -> tuple[str, ...]:
    """Start the nodes that do not run, create the cluster if all six are fresh, wait until it is healthy.

    Every node has the same ACL users; a replica logs in to its primary as the replication user.
    """
    nodes = layout.cluster_redis
    login = users.login(RedisUser.ADMIN)
    missing = [node for node in nodes if redis_server.running_pid(node) is None]
    for node in missing:
        for port in (node.port, node.port + REDIS_CLUSTER_BUS_OFFSET):
            ports.ensure_free(port, f"redis-server {node.name}", "LOCKSTEP_CLUSTER_REDIS_PORT")
    for node in missing:
        redis_server.start(
            node, console, users, system_user, extra=(*CLUSTER_CONFIG, *users.replication_lines())
        )
    view = probe(nodes, login)
    fresh = [each.node.name for each in view.nodes if each.fresh]
    if len(fresh) == len(nodes):
        _create(nodes, console, users)
    elif fresh:
        raise StackError(
            f"Redis nodes {', '.join(fresh)} have no cluster configuration while the others have one (was "
            f"a node's directory deleted?); run `lockstep services down` and delete "
            f"{layout.cluster_dir}/redis-* to create the cluster anew (its data is lost)"
        )
    with console.status(f"waiting for the Redis Cluster on {nodes[0].url}… to be ok"):
        wait_healthy(layout, timeout, login)
    return tuple(node.name for node in missing)


def _create(nodes: tuple[RedisNode, ...], console: Console, users: RedisUsers) -> None:
    cli = shutil.which("redis-cli")
    if cli is None:
        raise StackError(
            "redis-cli is not installed (Debian package redis-tools); it creates the Redis Cluster"
        )
    command = [
        cli,
        "--cluster",
        "create",
        *(f"127.0.0.1:{node.port}" for node in nodes),
        "--cluster-replicas",
        "1",
        "--cluster-yes",
        "--user",
        RedisUser.ADMIN.value,
    ]
    # The password through the environment, not the command line (which every local user can read).
    env = {**os.environ, "REDISCLI_AUTH": users.passwords[RedisUser.ADMIN]}
    with console.status(f"creating the Redis Cluster: {PRIMARIES} primaries, 1 replica each"):
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)
    if result.returncode != 0:
        logs = ", ".join(str(node.log) for node in nodes)
        raise StackError(
            f"`{' '.join(command)}` failed ({result.returncode}):\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}\nsee {logs}"
        )


def wait_healthy(layout: Layout, timeout: float, login: dict[str, Any]) -> None:
    """Wait for a healthy cluster; a node that exits meanwhile fails at once, by name."""
    nodes = layout.cluster_redis
    deadline = time.monotonic() + timeout
    view = probe(nodes, login)
    while not view.healthy:
        for node in nodes:
            if redis_server.running_pid(node) is None:
                raise StackError(f"redis-server {node.name} ({node.url}) is not running; see {node.log}")
        if time.monotonic() > deadline:
            logs = ", ".join(str(node.log) for node in nodes)
            raise StackError(
                f"the Redis Cluster was not ok with {PRIMARIES} primaries and a linked replica each within "
                f"{timeout:.0f}s ({view.detail}); see {logs}"
            )
        time.sleep(0.2)
        view = probe(nodes, login)


def probe(nodes: tuple[RedisNode, ...], login: dict[str, Any], timeout: float = 2) -> ClusterView:
    """Each node's own view of the cluster (starting nothing), logging in with `login`."""
    by_port = {node.port: node.name for node in nodes}
    return ClusterView(tuple(_node_view(node, by_port, login, timeout) for node in nodes))


def _node_view(node: RedisNode, by_port: dict[int, str], login: dict[str, Any], timeout: float) -> NodeView:
    # A probe reports what is: redis-py's default retries would spend seconds on every node that is down.
    client = redis.Redis(
        host="127.0.0.1",
        port=node.port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **login,
    )
    try:
        # The sync client's commands are typed for the async one too; CLUSTER INFO parses to a dict.
        info = cast(dict[str, str], client.cluster("info"))
        server = client.info("server")
        replication = client.info("replication")
    except redis.RedisError:
        return NodeView(node, None, None, 0, 0, None, None, False)
    finally:
        client.close()
    replica = replication.get("role") == "slave"
    return NodeView(
        node=node,
        version=str(server.get("redis_version")),
        cluster_state=str(info.get("cluster_state")),
        known_nodes=int(info.get("cluster_known_nodes", 0)),
        slots_assigned=int(info.get("cluster_slots_assigned", 0)),
        role="replica" if replica else "primary",
        primary=by_port.get(int(replication.get("master_port", 0))) if replica else None,
        link_up=replica and replication.get("master_link_status") == "up",
    )


def stop(layout: Layout) -> dict[str, int | None]:
    """Stop every node our pid files name, side by side; returns the pid stopped per node."""
    nodes = layout.cluster_redis
    with ThreadPoolExecutor(len(nodes)) as pool:
        return dict(zip((node.name for node in nodes), pool.map(redis_server.stop, nodes), strict=True))
