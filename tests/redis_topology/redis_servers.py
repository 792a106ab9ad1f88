"""Throwaway redis-server processes on free ports in a tmp dir: single servers and a Redis Cluster.

Each server is started by this module and stopped by its own pid. Every wait polls a condition with a
deadline; nothing sleeps for a fixed time to synchronise.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from contract.vectors import LISTPACK_ENTRIES, LISTPACK_VALUE

DEADLINE_SECONDS = 60.0
# Settings of a client of these servers: they have no ACL users, unlike the stack's Redis whose login the
# session's settings carry.
NO_LOGIN: dict[str, object] = {"redis_username": None, "redis_password": None}

# What Lockstep's startup check requires (contract.redis_setup); a test overrides one to break it.
GOOD_CONFIG: dict[str, str] = {
    "appendonly": "yes",
    "maxmemory-policy": "noeviction",
    "hash-max-listpack-entries": str(LISTPACK_ENTRIES),
    "hash-max-listpack-value": str(LISTPACK_VALUE),
}


def eventually(check: Callable[[], bool], what: str, deadline: float = DEADLINE_SECONDS) -> None:
    """Poll `check` until it holds; fail naming `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{what}: still not so after {deadline:.0f} s")
        time.sleep(0.02)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` consecutive free ports whose cluster bus ports (+10000) are free too."""
    for _ in range(200):
        first = random.randrange(20_000, 30_000 - count)
        ports = list(range(first, first + count))
        if all(_free(p) and _free(p + 10_000) for p in ports):
            return ports
    raise AssertionError("no free ports for throwaway redis-servers")


@dataclass
class RedisServer:
    """One redis-server process of our own."""

    port: int
    workdir: Path
    config: dict[str, str] = field(default_factory=lambda: dict(GOOD_CONFIG))
    extra: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:port/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        """host:port"""
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        """A plain client of this server alone."""
        return redis.Redis(port=self.port, socket_timeout=10)

    def start(self) -> RedisServer:
        """Start it and wait until it answers PING."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self.workdir)]
        for name, value in self.config.items():
            args += [f"--{name}", value]
        self.process = subprocess.Popen(
            [*args, *self.extra],
            stdout=(self.workdir / "stdout.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        client = self.client()
        eventually(lambda: _answers(client), f"redis-server on {self.port} answers PING", 20)
        client.close()
        return self

    @property
    def running(self) -> bool:
        """Whether its process was started and not stopped or killed since."""
        return self.process is not None

    def kill(self) -> None:
        """SIGKILL it by its own pid (no shutdown, no final fsync) and reap it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=20)
            self.process = None

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) by its own pid."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)
            self.process = None


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _info(node: RedisServer, section: str) -> dict[str, str]:
    client = node.client()
    try:
        raw = client.execute_command("CLUSTER", "INFO") if section == "cluster" else None
        if raw is not None:
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            return dict(line.split(":", 1) for line in text.split() if ":" in line)
        return {k: str(v) for k, v in client.info(section).items()}
    finally:
        client.close()


class ThrowawayCluster:
    """A Redis Cluster of `primaries` primaries with `replicas` replicas each, on free loopback ports."""

    def __init__(self, workdir: Path, primaries: int = 3, replicas: int = 1) -> None:
        ports = free_ports(primaries * (1 + replicas))
        cluster = {
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": "2000",
            # A replica (re)joining after a failover syncs at once, not after Redis' 5 s batching window.
            "repl-diskless-sync-delay": "0",
        }
        self.replicas = replicas
        self.nodes = [RedisServer(port, workdir / str(port), {**GOOD_CONFIG, **cluster}) for port in ports]

    @property
    def seeds(self) -> list[str]:
        """host:port of every node (LOCKSTEP_REDIS_CLUSTER_NODES)."""
        return [node.address for node in self.nodes]

    def start(self) -> ThrowawayCluster:
        """Start the nodes, create the cluster, and wait until every node says ok and replicas are synced."""
        for node in self.nodes:
            node.start()
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *self.seeds,
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        eventually(self.healthy, "the throwaway Redis Cluster is ok with every replica in sync")
        return self

    def healthy(self) -> bool:
        """Every node says cluster_state:ok, every replica's link is up, and every node's slot map names
        each range's replicas (gossip spreads them; a client reading replicas needs them there).

        A node that is down, or still loading its AOF, makes it False."""
        try:
            return self._healthy()
        except redis.RedisError:
            return False

    def _healthy(self) -> bool:
        if not all(node.running for node in self.nodes):
            return False
        for node in self.nodes:
            if _info(node, "cluster").get("cluster_state") != "ok":
                return False
            replication = _info(node, "replication")
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return False
            client = node.client()
            try:
                ranges = client.execute_command("CLUSTER", "SLOTS")
            finally:
                client.close()
            if any(len(entry) - 3 < self.replicas for entry in ranges):
                return False
        return True

    def replicated(self) -> bool:
        """Every node runs and says cluster_state:ok, and every primary has a replica whose link is up:
        what a write waiting for one replica needs (unlike `healthy`, no wait for gossip to list replicas
        in every node's slot map)."""
        try:
            if not all(
                node.running and _info(node, "cluster").get("cluster_state") == "ok" for node in self.nodes
            ):
                return False
            linked = set()
            for node in self.nodes:
                replication = _info(node, "replication")
                if replication.get("role") == "slave" and replication.get("master_link_status") == "up":
                    linked.add(f"{replication['master_host']}:{replication['master_port']}")
            return linked == {node.address for node in self.primaries()}
        except redis.RedisError:
            return False

    def primaries(self) -> list[RedisServer]:
        """The running nodes that are primaries now."""
        return [
            node for node in self.nodes if node.running and _info(node, "replication")["role"] == "master"
        ]

    def replica_of(self, primary: str) -> RedisServer:
        """The running replica of the primary at host:port."""
        for node in self.nodes:
            if not node.running:
                continue
            replication = _info(node, "replication")
            if (
                replication["role"] == "slave"
                and f"{replication['master_host']}:{replication['master_port']}" == primary
            ):
                return node
        raise AssertionError(f"no running replica of {primary}")

    def took_over(self, replica: RedisServer) -> bool:
        """`replica` is a primary now and every running node says cluster_state:ok: the failover is done."""
        try:
            if _info(replica, "replication").get("role") != "master":
                return False
            return all(
                _info(node, "cluster").get("cluster_state") == "ok" for node in self.nodes if node.running
            )
        except redis.RedisError:
            return False

    def node(self, address: str) -> RedisServer:
        """The node listening on host:port."""
        return next(node for node in self.nodes if node.address == address)

    def stop(self) -> None:
        """Stop every node."""
        for node in self.nodes:
            node.stop()


def new_server(started: list[RedisServer], workdir: Path, config: dict[str, str]) -> RedisServer:
    """Start a throwaway redis-server with `config` on a free port, recorded in `started` for stopping."""
    (port,) = free_ports(1)
    server = RedisServer(port, workdir / str(port), config)
    started.append(server)
    return server.start()


class ThrowawaySentinel:
    """A primary, one replica and one Sentinel monitoring them under `name`."""

    def __init__(self, workdir: Path, name: str = "lockstep") -> None:
        primary, replica, sentinel = free_ports(3)
        self.name = name
        self.primary = RedisServer(primary, workdir / "primary")
        self.replica = RedisServer(
            replica, workdir / "replica", extra=["--replicaof", "127.0.0.1", str(primary)]
        )
        self.sentinel_port = sentinel
        self.sentinel_dir = workdir / "sentinel"
        self.sentinel: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> list[str]:
        """host:port of the Sentinels (LOCKSTEP_REDIS_SENTINEL_HOSTS)."""
        return [f"127.0.0.1:{self.sentinel_port}"]

    def start(self) -> ThrowawaySentinel:
        """Start all three and wait until the Sentinel knows the primary and its replica in sync."""
        self.primary.start()
        self.replica.start()
        self.sentinel_dir.mkdir(parents=True, exist_ok=True)
        conf = self.sentinel_dir / "sentinel.conf"  # a Sentinel rewrites its own config file
        conf.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.sentinel_dir}\n"
            f"sentinel monitor {self.name} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.name} 2000\n"
        )
        self.sentinel = subprocess.Popen(
            ["redis-server", str(conf), "--sentinel"],
            stdout=(self.sentinel_dir / "stdout.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        eventually(self._ready, "the Sentinel knows the primary and its replica, in sync")
        return self

    def _ready(self) -> bool:
        try:
            sentinel = redis.Redis(port=self.sentinel_port, socket_timeout=5, decode_responses=True)
            replicas = sentinel.execute_command("SENTINEL", "REPLICAS", self.name)
            sentinel.close()
        except redis.RedisError:
            return False
        link = _info(self.replica, "replication").get("master_link_status")
        return link == "up" and any("s_down" not in str(r) for r in replicas or [])

    def stop(self) -> None:
        """Stop the Sentinel, then both servers."""
        if self.sentinel is not None:
            self.sentinel.terminate()
            self.sentinel.wait(timeout=20)
            self.sentinel = None
        self.replica.stop()
        self.primary.stop()
