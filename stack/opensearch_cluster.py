"""The cluster topology's OpenSearch: three nodes of our one install, each with its own config, ports, dirs.

Every node is cluster-manager eligible and holds data; they find each other through `discovery.seed_hosts`
(the three transport ports) and bootstrap once from `cluster.initial_cluster_manager_nodes` (later starts
re-form from their data). Up means green with all three nodes and the k-NN plugin on each.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console

from contract.settings import StackSettings
from stack import opensearch_node, ports
from stack.errors import StackError
from stack.jdk import find_jdk
from stack.layout import Layout, OpenSearchNode

# Three JVMs forming a cluster on two busy cores took 58 s to green (docs/platform.md); a margin for CI.
START_TIMEOUT_SECONDS = 300.0
# jvm.options names `logs/…` and `data` relative to the install, every node's working directory: three
# nodes would share one gc.log and heap-dump directory.
_RELATIVE_DIR = re.compile(r"(?<=[=:])(logs|data)(?=/|$)", re.MULTILINE)


@dataclass(frozen=True)
class NodeView:
    """One node as seen right now."""

    node: OpenSearchNode
    answers: bool
    version: str | None
    # Listed by the cluster's own node list (it joined).
    member: bool
    # The elected cluster manager.
    manager: bool
    knn_plugin: str | None

    @property
    def healthy(self) -> bool:
        """It answers, belongs to the cluster and has the k-NN plugin."""
        return self.answers and self.member and self.knn_plugin is not None

    @property
    def role(self) -> str:
        """`cluster_manager` for the elected one, else `data` (every node holds data and may be elected)."""
        return "cluster_manager" if self.manager else "data"


@dataclass(frozen=True)
class ClusterView:
    """The three nodes and the cluster's health as one of them reports it."""

    nodes: tuple[NodeView, ...]
    # green/yellow/red; None when no node could say.
    status: str | None
    number_of_nodes: int

    @property
    def healthy(self) -> bool:
        """Green, with every node in it and the k-NN plugin on each."""
        return self.status == "green" and all(view.healthy for view in self.nodes)

    @property
    def detail(self) -> str:
        """One line for messages and the status table."""
        if self.status is None:
            return "no cluster view (no node answers, or no cluster manager elected yet)"
        without_knn = [v.node.name for v in self.nodes if v.member and v.knn_plugin is None]
        missing = [v.node.name for v in self.nodes if not v.member]
        parts = [f"cluster {self.status}", f"{self.number_of_nodes} nodes"]
        if missing:
            parts.append(f"not in the cluster: {', '.join(missing)}")
        if without_knn:
            parts.append(f"no k-NN plugin: {', '.join(without_knn)}")
        return ", ".join(parts)


def configure(layout: Layout, node: OpenSearchNode) -> None:
    """The node's own OPENSEARCH_PATH_CONF: the install's JVM and logging config, its own opensearch.yml."""
    source = layout.opensearch_home / "config"
    node.conf.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "log4j2.properties", node.conf / "log4j2.properties")
    shutil.copytree(source / "jvm.options.d", node.conf / "jvm.options.d", dirs_exist_ok=True)
    own_dirs = {"logs": str(node.logs), "data": str(node.data)}
    jvm_options = _RELATIVE_DIR.sub(lambda m: own_dirs[m[1]], (source / "jvm.options").read_text())
    (node.conf / "jvm.options").write_text(jvm_options)
    nodes = layout.cluster_opensearch
    config = {
        **opensearch_node.node_config(node),
        "discovery.seed_hosts": [f"127.0.0.1:{other.transport_port}" for other in nodes],
        "cluster.initial_cluster_manager_nodes": [other.name for other in nodes],
    }
    opensearch_node.write_yaml(node, config)


def launch_missing(settings: StackSettings, layout: Layout, console: Console) -> tuple[str, ...]:
    """Launch the nodes that do not run (installing first if need be); returns their names."""
    nodes = layout.cluster_opensearch
    # A node launched moments ago has no pid file yet: launched again, the second JVM fails on the node lock
    # and its pid file names the dead one, so the live node would outlive `stop`.
    missing = [
        node
        for node in nodes
        if opensearch_node.running_pid(node) is None and opensearch_node.launched_pid(node) is None
    ]
    if not missing:
        return ()
    for node in missing:
        who = f"OpenSearch node {node.name}"
        ports.ensure_free(node.http_port, who, "LOCKSTEP_CLUSTER_OPENSEARCH_PORT")
        ports.ensure_free(node.transport_port, who, "LOCKSTEP_CLUSTER_OPENSEARCH_TRANSPORT_PORT")
    jdk = find_jdk()
    opensearch_node.install(settings, layout, jdk, console)
    for node in missing:
        configure(layout, node)

    def launch(node: OpenSearchNode) -> None:
        opensearch_node.launch(settings, layout, node, settings.opensearch_node_heap, jdk)

    # Each launcher runs two short JVMs of its own before the node's; side by side saves seconds.
    with ThreadPoolExecutor(len(missing)) as pool:
        list(pool.map(launch, missing))
    return tuple(node.name for node in missing)


def wait_healthy(layout: Layout, timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Wait for green with every node and k-NN on each; a node that exits meanwhile fails at once, by name."""
    nodes = layout.cluster_opensearch
    deadline = time.monotonic() + timeout
    gone: set[str] = set()
    view = probe(nodes)
    while not view.healthy:
        gone = _check_alive(nodes, gone)
        if time.monotonic() > deadline:
            logs = "; ".join(f"{node.name}: {opensearch_node.logs_of(node)}" for node in nodes)
            raise StackError(
                f"the OpenSearch cluster was not green with {len(nodes)} nodes and the k-NN plugin on each "
                f"within {timeout:.0f}s ({view.detail}); see {logs}"
            )
        began = time.monotonic()
        answering = [v.node for v in view.nodes if v.answers]
        if answering:
            _await_green(answering[0], len(nodes))
        # Paces the loop when that wait returned at once (nobody answers yet, or green but a node not listed).
        time.sleep(max(0.0, 0.5 - (time.monotonic() - began)))
        view = probe(nodes)


def _check_alive(nodes: tuple[OpenSearchNode, ...], gone_before: set[str]) -> set[str]:
    """Names of the nodes without a process now; raises for one gone on two checks in a row.

    Two checks, because the launcher returns once it has forked, maybe just before the fork becomes java.
    """
    gone = {node.name for node in nodes if opensearch_node.launched_pid(node) is None}
    for node in nodes:
        if node.name in gone and node.name in gone_before:
            raise StackError(
                f"OpenSearch node {node.name} ({node.url}) exited during startup; "
                f"see {opensearch_node.logs_of(node)}"
            )
    return gone


def _await_green(node: OpenSearchNode, size: int) -> None:
    # The server holds this request until the condition holds or 2 s pass: a wait on the real condition.
    params = {
        "wait_for_status": "green",
        "wait_for_nodes": str(size),
        "timeout": "2s",
        "cluster_manager_timeout": "2s",
    }
    with contextlib.suppress(httpx.TransportError):
        httpx.get(f"{node.url}/_cluster/health", params=params, timeout=10)


def probe(nodes: tuple[OpenSearchNode, ...], timeout: float = 5) -> ClusterView:
    """Each node's answer, and the cluster's members, manager, plugins and health (starting nothing)."""
    versions = {node.name: _version(node, timeout) for node in nodes}
    for node in nodes:
        if versions[node.name] is None:
            continue
        cluster = _cluster_view(node, timeout)
        if cluster is None:
            continue
        health, members, knn = cluster
        views = tuple(
            NodeView(
                node=each,
                answers=versions[each.name] is not None,
                version=versions[each.name],
                member=each.name in members,
                manager=members.get(each.name) == "*",
                knn_plugin=knn.get(each.name),
            )
            for each in nodes
        )
        return ClusterView(views, str(health.get("status")), int(health.get("number_of_nodes", 0)))
    views = tuple(
        NodeView(each, versions[each.name] is not None, versions[each.name], False, False, None)
        for each in nodes
    )
    return ClusterView(views, None, 0)


def _version(node: OpenSearchNode, timeout: float) -> str | None:
    try:
        root = httpx.get(node.url, timeout=timeout)
        root.raise_for_status()
        body = root.json()
    except (httpx.HTTPError, ValueError):
        return None
    # Something else on the port (another cluster's node) is not this node.
    if body.get("name") != node.name or body.get("cluster_name") != node.cluster_name:
        return None
    return str(body["version"]["number"])


def _cluster_view(
    node: OpenSearchNode, timeout: float
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]] | None:
    """Health, members (name -> `*` for the elected manager) and k-NN plugin per node, asked of `node`."""
    wait = {"cluster_manager_timeout": "2s"}
    try:
        with httpx.Client(base_url=node.url, timeout=timeout) as client:
            health = client.get("/_cluster/health", params=wait)
            health.raise_for_status()
            members = client.get(
                "/_cat/nodes", params={**wait, "format": "json", "h": "name,cluster_manager"}
            )
            members.raise_for_status()
            plugins = client.get(
                "/_cat/plugins", params={**wait, "format": "json", "h": "name,component,version"}
            )
            plugins.raise_for_status()
    except (httpx.HTTPError, ValueError):
        return None
    return (
        health.json(),
        {row["name"]: row.get("cluster_manager", "") for row in members.json()},
        {
            row["name"]: f"{row['component']} {row['version']}"
            for row in plugins.json()
            if row.get("component") == opensearch_node.KNN_PLUGIN
        },
    )


def stop(layout: Layout) -> dict[str, int | None]:
    """Stop every node our pid files name, side by side; returns the pid stopped per node."""
    nodes = layout.cluster_opensearch
    with ThreadPoolExecutor(len(nodes)) as pool:
        return dict(zip((node.name for node in nodes), pool.map(opensearch_node.stop, nodes), strict=True))
