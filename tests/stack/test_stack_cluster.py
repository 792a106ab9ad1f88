"""The cluster topology on real processes: 3 OpenSearch nodes with k-NN, a 3+3 Redis Cluster, status, down.

The cluster runs from a state dir and ports of its own, so it never touches the session's single-node
stack; the state dir keeps its OpenSearch install between runs, and each run creates the cluster anew.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import redis
from redis.cluster import RedisCluster
from rich.console import Console

from contract.settings import REDIS_CLUSTER_BUS_OFFSET, Settings
from stack import (
    cluster,
    opensearch_cluster,
    opensearch_node,
    redis_acl,
    redis_cluster,
    redis_server,
    services,
)
from stack.errors import StackError
from stack.layout import Layout
from stack.redis_acl import RedisUser

pytestmark = pytest.mark.cluster

LOCKSTEP = str(Path(sys.executable).parent / "lockstep")
# Ports of this test alone: the session's single stack uses 9250/9350/6390, the cluster defaults 9261…/7301….
ENV = {
    "LOCKSTEP_OPENSEARCH_PORT": "9280",
    "LOCKSTEP_OPENSEARCH_TRANSPORT_PORT": "9380",
    "LOCKSTEP_REDIS_PORT": "7320",
    "LOCKSTEP_CLUSTER_OPENSEARCH_PORT": "9281",
    "LOCKSTEP_CLUSTER_OPENSEARCH_TRANSPORT_PORT": "9381",
    "LOCKSTEP_CLUSTER_REDIS_PORT": "7321",
    "LOCKSTEP_OPENSEARCH_NODE_HEAP": "512m",
}


@pytest.fixture(scope="module")
def own() -> Iterator[Settings]:
    """Settings of this test's cluster, brought up fresh through the same code as `services up`."""
    state_dir = Settings().state_dir.parent / "lockstep-test-cluster"
    settings = Settings(
        topology="cluster",
        state_dir=state_dir,
        opensearch_url=None,
        redis_url=None,
        **{name.removeprefix("LOCKSTEP_").lower(): value for name, value in ENV.items()},
    )
    services.stop(settings)  # a run that was killed may have left its cluster running
    shutil.rmtree(Layout.of(settings).cluster_dir, ignore_errors=True)
    began = time.monotonic()
    try:
        result = services.ensure_running(settings)
        print(f"\ncluster topology up in {time.monotonic() - began:.0f}s")
        assert isinstance(result, cluster.ClusterStatus)
        assert result.healthy
        assert len(result.started) == 9
        yield settings
    finally:
        services.stop(settings)


def _cli(own: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSTEP_")}
    env |= ENV | {"LOCKSTEP_STATE_DIR": str(own.state_dir)}
    return subprocess.run(
        [LOCKSTEP, "services", *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def _login(own: Settings, user: RedisUser = RedisUser.APP) -> dict[str, str]:
    """A Redis user of the cluster (made at its first start)."""
    users = redis_acl.load(own.state_dir)
    assert users is not None
    return users.login(user)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _opensearch(own: Settings, path: str, **params: str) -> Any:
    response = httpx.get(f"{Layout.of(own).cluster_opensearch[0].url}{path}", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def test_opensearch_runs_three_nodes_green_with_knn_on_each(own: Settings) -> None:
    layout = Layout.of(own)
    health = _opensearch(own, "/_cluster/health")
    assert (health["status"], health["number_of_nodes"], health["cluster_name"]) == (
        "green",
        3,
        "lockstep-cluster",
    )
    names = {node.name for node in layout.cluster_opensearch}
    plugins = _opensearch(own, "/_cat/plugins", format="json")
    assert {(p["name"], p["version"]) for p in plugins if p["component"] == "opensearch-knn"} == {
        (name, "3.6.0.0") for name in names
    }
    nodes = _opensearch(own, "/_nodes/settings,jvm")["nodes"].values()
    by_name = {node["name"]: node["settings"] for node in nodes}
    assert by_name.keys() == names
    jvm_args = {node["name"]: node["jvm"]["input_arguments"] for node in nodes}
    for node in layout.cluster_opensearch:
        settings = by_name[node.name]
        assert settings["http"]["port"] == str(node.http_port)
        assert settings["transport"]["port"] == str(node.transport_port)
        assert settings["path"]["data"] == [str(node.data)]
        assert settings["discovery"]["seed_hosts"] == ["127.0.0.1:9381", "127.0.0.1:9382", "127.0.0.1:9383"]
        assert f"-Dopensearch.path.conf={node.conf}" in jvm_args[node.name]
        assert "-Xmx512m" in jvm_args[node.name]
        assert (node.logs / "gc.log").exists()  # its own, not the install's logs/gc.log
    # A k-NN index whose shards and replicas spread over the three nodes takes writes and answers.
    base = layout.cluster_opensearch[0].url
    index = f"{base}/lockstep-cluster-test"
    body = {
        "settings": {"index": {"knn": True, "number_of_shards": 3, "number_of_replicas": 1}},
        "mappings": {
            "properties": {
                "v": {"type": "knn_vector", "dimension": 2, "method": {"name": "hnsw", "engine": "lucene"}}
            }
        },
    }
    try:
        assert httpx.put(index, json=body, timeout=60).status_code == 200
        green = httpx.get(
            f"{base}/_cluster/health/lockstep-cluster-test",
            params={"wait_for_status": "green", "timeout": "60s"},
            timeout=90,
        )
        assert green.json()["status"] == "green"
        shards = httpx.get(
            f"{base}/_cat/shards/lockstep-cluster-test", params={"format": "json"}, timeout=30
        ).json()
        assert {shard["node"] for shard in shards} == names
        for i in range(6):
            httpx.put(
                f"{index}/_doc/{i}", params={"refresh": "true"}, json={"v": [i, 1]}, timeout=30
            ).raise_for_status()
        query = {"size": 3, "query": {"knn": {"v": {"vector": [5, 1], "k": 3}}}}
        found = httpx.post(f"{index}/_search", json=query, timeout=30).json()
        assert found["_shards"] == {"total": 3, "successful": 3, "skipped": 0, "failed": 0}
        assert found["hits"]["hits"][0]["_id"] == "5"
    finally:
        httpx.delete(index, timeout=60)


def test_redis_runs_three_primaries_each_with_a_linked_replica(own: Settings) -> None:
    layout = Layout.of(own)
    ports = {node.port for node in layout.cluster_redis}
    primaries: dict[str, int] = {}
    replicas: dict[str, int] = {}
    for node in layout.cluster_redis:
        client = redis.Redis(port=node.port, **_login(own, RedisUser.ADMIN))
        try:
            info = client.cluster("info")
            assert (info["cluster_state"], info["cluster_known_nodes"], info["cluster_slots_ok"]) == (
                "ok",
                "6",
                "16384",
            )
            config = client.config_get("*")
            replication = client.info("replication")
        finally:
            client.close()
        assert config["cluster-enabled"] == "yes"
        assert config["appendonly"] == "yes"
        assert config["appendfsync"] == "everysec"
        assert config["maxmemory-policy"] == "noeviction"
        assert config["hash-max-listpack-value"] == "4096"
        assert config["bind"] == "127.0.0.1"
        assert Path(config["dir"]) == node.dir
        if replication["role"] == "master":
            primaries[node.name] = node.port
        else:
            assert replication["master_link_status"] == "up"
            assert replication["master_port"] in ports
            replicas[node.name] = replication["master_port"]
    assert len(primaries) == 3
    assert sorted(replicas.values()) == sorted(primaries.values())  # one replica per primary
    # The cluster spreads keys over the three primaries' slots and serves them through any node.
    client = RedisCluster(host="127.0.0.1", port=layout.cluster_redis[0].port, **_login(own))
    keys = [f"lockstep-cluster-test:{i}" for i in range(30)]
    try:
        for key in keys:
            client.set(key, key)
        assert {client.get_node_from_key(key).port for key in keys} == set(primaries.values())
        assert [client.get(key) for key in keys] == [key.encode() for key in keys]
    finally:
        for key in keys:
            client.delete(key)
        client.close()


def test_status_json_reports_topology_nodes_and_health(own: Settings) -> None:
    result = _cli(own, "status", "--json")  # no --topology: the one that runs
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["topology"] == "cluster"
    assert document["healthy"] is True
    assert document["opensearch_version"] == "3.6.0"
    assert document["knn_plugin"] == "opensearch-knn 3.6.0.0"
    opensearch = document["opensearch"]
    assert (opensearch["healthy"], opensearch["status"], opensearch["number_of_nodes"]) == (True, "green", 3)
    assert document["redis"]["cluster_state"] == "ok"
    assert (document["redis"]["primaries"], document["redis"]["linked_replicas"]) == (3, 3)
    nodes = document["nodes"]
    assert [(n["service"], n["port"]) for n in nodes] == [("opensearch", p) for p in (9281, 9282, 9283)] + [
        ("redis", p) for p in range(7321, 7327)
    ]
    assert all(n["healthy"] and psutil.pid_exists(n["pid"]) for n in nodes)
    assert sorted(n["role"] for n in nodes[:3]) == ["cluster_manager", "data", "data"]
    assert sorted(n["role"] for n in nodes[3:]) == ["primary"] * 3 + ["replica"] * 3
    assert nodes[0]["log_file"] == str(Layout.of(own).cluster_opensearch[0].log)


def test_up_when_it_runs_starts_nothing(own: Settings) -> None:
    before = cluster.status(own)
    result = _cli(own, "up", "--topology", "cluster")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already running") == 9 and "started" not in result.stdout
    assert [n.pid for n in cluster.status(own).nodes] == [n.pid for n in before.nodes]
    assert services.ensure_running(own).started == ()


def test_redis_nodes_restart_into_the_same_cluster_with_their_data(own: Settings) -> None:
    layout = Layout.of(own)
    client = RedisCluster(host="127.0.0.1", port=layout.cluster_redis[0].port, **_login(own))
    client.set("lockstep-cluster-test:survives", b"\x00\x01")
    client.close()
    redis_cluster.stop(layout)
    assert not cluster.status(own).healthy
    result = cluster.ensure_running(own)
    assert sorted(result.started) == [node.name for node in layout.cluster_redis]
    client = RedisCluster(host="127.0.0.1", port=layout.cluster_redis[0].port, **_login(own))
    try:
        assert client.get("lockstep-cluster-test:survives") == b"\x00\x01"  # from nodes.conf and the AOF
    finally:
        client.delete("lockstep-cluster-test:survives")
        client.close()


def test_a_taken_port_is_an_error_naming_the_node(own: Settings) -> None:
    layout = Layout.of(own)
    probed = redis_cluster.probe(layout.cluster_redis, redis_acl.admin_login(own)).nodes
    replica = next(view.node for view in probed if view.role == "replica")
    bus = replica.port + REDIS_CLUSTER_BUS_OFFSET
    redis_server.stop(replica)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", bus))
        squatter.listen()
        taken = rf"redis-server {replica.name} cannot start: 127\.0\.0\.1:{bus} is taken.*CLUSTER_REDIS_PORT"
        with pytest.raises(StackError, match=taken):
            cluster.ensure_running(own)
    assert cluster.ensure_running(own).started == (replica.name,)


def test_a_node_launched_moments_ago_is_not_launched_again_and_down_finds_it(own: Settings) -> None:
    """Before it writes its pid file a node is found by its process: a second launch would fail on the node
    lock and leave a pid file naming the dead JVM, and the live node would outlive `down`."""
    layout = Layout.of(own)
    node = layout.cluster_opensearch[2]
    assert opensearch_node.stop(node) is not None
    console = Console(stderr=True)
    assert opensearch_cluster.launch_missing(own, layout, console) == (node.name,)
    assert opensearch_cluster.launch_missing(own, layout, console) == ()
    conf = f"-Dopensearch.path.conf={node.conf}"
    running = [
        p.pid
        for p in psutil.process_iter(["cmdline", "status"])
        if p.info["status"] != psutil.STATUS_ZOMBIE and conf in (p.info["cmdline"] or [])
    ]
    assert running == [opensearch_node.launched_pid(node)]
    opensearch_cluster.wait_healthy(layout)


def test_down_stops_every_node_and_leaves_no_process(own: Settings) -> None:
    layout = Layout.of(own)
    before = cluster.status(own)
    result = _cli(own, "down")
    assert result.returncode == 0, result.stderr
    for node in before.nodes:
        assert f"{node.name} stopped (pid {node.pid})" in " ".join(result.stdout.split())
        assert not psutil.pid_exists(node.pid) or psutil.Process(node.pid).status() == psutil.STATUS_ZOMBIE
    ports = [p for n in layout.cluster_opensearch for p in (n.http_port, n.transport_port)]
    ports += [p for n in layout.cluster_redis for p in (n.port, n.port + REDIS_CLUSTER_BUS_OFFSET)]
    assert [port for port in ports if _port_open(port)] == []
    leftovers = [
        p.pid
        for p in psutil.process_iter(["cmdline", "status"])
        if p.info["status"] != psutil.STATUS_ZOMBIE
        and str(own.state_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []
    status = _cli(own, "status", "--json", "--topology", "cluster")
    assert status.returncode == 1
    document = json.loads(status.stdout)
    assert document["healthy"] is False
    assert [n["pid"] for n in document["nodes"]] == [None] * 9
    assert _cli(own, "down").stdout.count("was not running") == 2 + 9
