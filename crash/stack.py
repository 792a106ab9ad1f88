"""The crasher's own stack (OpenSearch and Redis it may SIGKILL), apart from the one `make test` and the
demo use: its own state dir and ports, reached only through `lockstep services`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psutil

OPENSEARCH_PORT: Final = 9281
TRANSPORT_PORT: Final = 9381
REDIS_PORT: Final = 6395
KEY_PREFIX: Final = "crash"  # keys and indices of a run (the previous run's are deleted first)


@dataclass(frozen=True)
class CrashStack:
    """Where the crasher's stack lives and listens."""

    state_dir: Path
    opensearch_port: int = OPENSEARCH_PORT
    transport_port: int = TRANSPORT_PORT
    redis_port: int = REDIS_PORT

    @property
    def opensearch_url(self) -> str:
        """Its OpenSearch."""
        return f"http://127.0.0.1:{self.opensearch_port}"

    @property
    def redis_url(self) -> str:
        """Its Redis."""
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def port_of(self, server: str) -> int:
        """The port `opensearch` or `redis` listens on."""
        return {"opensearch": self.opensearch_port, "redis": self.redis_port}[server]

    def env(self) -> dict[str, str]:
        """LOCKSTEP_* variables that make `lockstep services` run this stack (the single topology, our
        own servers: a LOCKSTEP_*_URL of the environment must not point it at someone else's)."""
        return {
            "LOCKSTEP_STATE_DIR": str(self.state_dir),
            "LOCKSTEP_OPENSEARCH_PORT": str(self.opensearch_port),
            "LOCKSTEP_OPENSEARCH_TRANSPORT_PORT": str(self.transport_port),
            "LOCKSTEP_REDIS_PORT": str(self.redis_port),
            "LOCKSTEP_TOPOLOGY": "single",
            "LOCKSTEP_REDIS_TOPOLOGY": "standalone",
            "LOCKSTEP_KEY_PREFIX": KEY_PREFIX,
            "LOCKSTEP_INDEX_PREFIX": KEY_PREFIX,
        }


# Variables of the environment that would point the crasher's commands and processes elsewhere.
FOREIGN: Final = (
    "LOCKSTEP_OPENSEARCH_URL",
    "LOCKSTEP_REDIS_URL",
    "LOCKSTEP_REDIS_CLUSTER_NODES",
    "LOCKSTEP_REDIS_SENTINEL_HOSTS",
    "LOCKSTEP_REDIS_REPLICA_READS",
    "LOCKSTEP_REDIS_WAIT_REPLICAS",
)


def listening_pid(port: int) -> int | None:
    """The process listening on a loopback TCP port (what is killed: whichever server answers there)."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
            return connection.pid
    return None
