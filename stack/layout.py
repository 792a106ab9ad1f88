"""Where the local stack keeps its install, data, logs and pid files, and which ports its nodes take."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from contract.settings import OPENSEARCH_CLUSTER_NODES, REDIS_CLUSTER_NODES, StackSettings

OPENSEARCH_VERSION = "3.6.0"
KNN_VERSION = "3.6.0.0"
CLUSTER_NAME = "lockstep"
# A name of its own, so a cluster node can never join the single node (or the other way round).
CLUSTER_TOPOLOGY_NAME = "lockstep-cluster"


@dataclass(frozen=True)
class OpenSearchNode:
    """One OpenSearch node: its name, ports, config dir and the directories it writes."""

    name: str
    cluster_name: str
    http_port: int
    transport_port: int
    # data, logs and run; owned by the OpenSearch user.
    root: Path
    # OPENSEARCH_PATH_CONF: jvm.options, log4j2.properties, opensearch.yml, the keystore.
    conf: Path

    @property
    def url(self) -> str:
        """Its HTTP endpoint."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def data(self) -> Path:
        """path.data."""
        return self.root / "data"

    @property
    def logs(self) -> Path:
        """path.logs."""
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Directory of the pid file; must be writable by the OpenSearch user."""
        return self.root / "run"

    @property
    def tmp(self) -> Path:
        """java.io.tmpdir of the node."""
        return self.root / "tmp"

    @property
    def pid_file(self) -> Path:
        """Written by OpenSearch itself (`-p`)."""
        return self.run / "opensearch.pid"

    @property
    def log(self) -> Path:
        """The node's main log."""
        return self.logs / f"{self.cluster_name}.log"

    @property
    def console_log(self) -> Path:
        """stdout/stderr of the launcher and the daemon (startup errors land here)."""
        return self.logs / "console.log"


@dataclass(frozen=True)
class RedisNode:
    """One redis-server of ours: its name, port and directory."""

    name: str
    port: int
    # Redis `dir`: its AOF and RDB files (and nodes.conf in a cluster).
    dir: Path

    @property
    def url(self) -> str:
        """Its endpoint."""
        return f"redis://127.0.0.1:{self.port}"

    @property
    def conf(self) -> Path:
        """The redis.conf we write on every start."""
        return self.dir / "redis.conf"

    @property
    def pid_file(self) -> Path:
        """Written by redis-server itself (`pidfile`)."""
        return self.dir / "redis.pid"

    @property
    def log(self) -> Path:
        """Redis `logfile`."""
        return self.dir / "redis.log"


@dataclass(frozen=True)
class Layout:
    """Every path and port of the local stack; one place so install, start, stop and status agree."""

    state_dir: Path
    downloads: Path
    opensearch_node: OpenSearchNode
    redis_node: RedisNode
    cluster_opensearch: tuple[OpenSearchNode, ...]
    cluster_redis: tuple[RedisNode, ...]

    @classmethod
    def of(cls, settings: StackSettings) -> Layout:
        """The layout for these settings."""
        state = settings.state_dir
        cluster = state / "cluster"
        opensearch = []
        for i in range(OPENSEARCH_CLUSTER_NODES):
            root = cluster / f"opensearch-{i + 1}"
            opensearch.append(
                OpenSearchNode(
                    name=f"opensearch-{i + 1}",
                    cluster_name=CLUSTER_TOPOLOGY_NAME,
                    http_port=settings.cluster_opensearch_port + i,
                    transport_port=settings.cluster_opensearch_transport_port + i,
                    root=root,
                    conf=root / "config",
                )
            )
        redis = [
            RedisNode(f"redis-{i + 1}", settings.cluster_redis_port + i, cluster / f"redis-{i + 1}")
            for i in range(REDIS_CLUSTER_NODES)
        ]
        return cls(
            state_dir=state,
            downloads=settings.cache_dir / "downloads",
            opensearch_node=OpenSearchNode(
                name=f"{CLUSTER_NAME}-1",
                cluster_name=CLUSTER_NAME,
                http_port=settings.opensearch_port,
                transport_port=settings.opensearch_transport_port,
                root=state / "opensearch",
                conf=_opensearch_home(state) / "config",
            ),
            redis_node=RedisNode("redis", settings.redis_port, state / "redis"),
            cluster_opensearch=tuple(opensearch),
            cluster_redis=tuple(redis),
        )

    @property
    def lock_file(self) -> Path:
        """Serialises concurrent `up`/`down` calls on one state dir (parallel test sessions)."""
        return self.state_dir / "stack.lock"

    @property
    def opensearch_home(self) -> Path:
        """The unzipped distribution, with the k-NN plugin installed into it; every node runs from it."""
        return _opensearch_home(self.state_dir)

    @property
    def opensearch_installed_marker(self) -> Path:
        """Written last by the installer, so a half-finished install is never mistaken for a whole one."""
        return self.opensearch_home / ".lockstep-installed"

    @property
    def cluster_dir(self) -> Path:
        """The cluster topology's node directories."""
        return self.state_dir / "cluster"

    @property
    def redis_dir(self) -> Path:
        """The single Redis's `dir`."""
        return self.redis_node.dir

    @property
    def redis_log(self) -> Path:
        """The single Redis's log."""
        return self.redis_node.log


def _opensearch_home(state_dir: Path) -> Path:
    return state_dir / f"opensearch-{OPENSEARCH_VERSION}"
