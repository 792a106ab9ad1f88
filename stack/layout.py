"""Where the local stack keeps its install, data, logs and pid files, derived from Settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from contract.settings import Settings

OPENSEARCH_VERSION = "3.6.0"
KNN_VERSION = "3.6.0.0"
CLUSTER_NAME = "lockstep"


@dataclass(frozen=True)
class Layout:
    """Every path of the local stack; one place so install, start, stop and status agree."""

    state_dir: Path
    downloads: Path

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        """The layout for these settings."""
        return cls(state_dir=settings.state_dir, downloads=settings.cache_dir / "downloads")

    @property
    def lock_file(self) -> Path:
        """Serialises concurrent `up`/`down` calls on one state dir (parallel test sessions)."""
        return self.state_dir / "stack.lock"

    # --- OpenSearch ---------------------------------------------------------------------------------
    @property
    def opensearch_home(self) -> Path:
        """The unzipped distribution, with the k-NN plugin installed into it."""
        return self.state_dir / f"opensearch-{OPENSEARCH_VERSION}"

    @property
    def opensearch_installed_marker(self) -> Path:
        """Written last by the installer, so a half-finished install is never mistaken for a whole one."""
        return self.opensearch_home / ".lockstep-installed"

    @property
    def opensearch_root(self) -> Path:
        """Data, logs and pid of the node, owned by the OpenSearch user."""
        return self.state_dir / "opensearch"

    @property
    def opensearch_data(self) -> Path:
        """path.data of the node."""
        return self.opensearch_root / "data"

    @property
    def opensearch_logs(self) -> Path:
        """path.logs of the node."""
        return self.opensearch_root / "logs"

    @property
    def opensearch_run(self) -> Path:
        """Directory of the pid file; must be writable by the OpenSearch user."""
        return self.opensearch_root / "run"

    @property
    def opensearch_pid_file(self) -> Path:
        """Written by OpenSearch itself (`-p`)."""
        return self.opensearch_run / "opensearch.pid"

    @property
    def opensearch_log(self) -> Path:
        """The node's main log."""
        return self.opensearch_logs / f"{CLUSTER_NAME}.log"

    @property
    def opensearch_console_log(self) -> Path:
        """stdout/stderr of the launcher and the daemon (startup errors land here)."""
        return self.opensearch_logs / "console.log"

    # --- Redis --------------------------------------------------------------------------------------
    @property
    def redis_dir(self) -> Path:
        """Redis `dir`: its AOF and RDB files."""
        return self.state_dir / "redis"

    @property
    def redis_conf(self) -> Path:
        """The redis.conf we write on every start."""
        return self.redis_dir / "redis.conf"

    @property
    def redis_pid_file(self) -> Path:
        """Written by redis-server itself (`pidfile`)."""
        return self.redis_dir / "redis.pid"

    @property
    def redis_log(self) -> Path:
        """Redis `logfile`."""
        return self.redis_dir / "redis.log"
