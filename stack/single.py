"""The single topology: one OpenSearch node and one Redis, up idempotently, stopped, reported."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from contract.settings import StackSettings
from stack import opensearch_node, redis_acl, redis_server
from stack.errors import StackError
from stack.jdk import find_jdk
from stack.layout import Layout
from stack.lock import state_lock


@dataclass(frozen=True)
class ServiceStatus:
    """One server of the stack as seen right now."""

    name: str
    url: str
    # False when it is the user's own server (LOCKSTEP_*_URL) or one we found running but did not start.
    managed: bool
    healthy: bool
    pid: int | None
    port: int | None
    version: str | None
    data_dir: Path | None
    log_file: Path | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "url": self.url,
            "managed": self.managed,
            "healthy": self.healthy,
            "pid": self.pid,
            "port": self.port,
            "version": self.version,
            "data_dir": str(self.data_dir) if self.data_dir else None,
            "log_file": str(self.log_file) if self.log_file else None,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class StackStatus:
    """OpenSearch (with its k-NN plugin) and Redis."""

    opensearch: ServiceStatus
    knn_plugin: str | None
    redis: ServiceStatus
    started: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        """Both servers answer and OpenSearch has the k-NN plugin."""
        return self.opensearch.healthy and self.redis.healthy and self.knn_plugin is not None

    def as_json(self) -> dict[str, Any]:
        """The `services status --json` document."""
        return {
            "topology": "single",
            "opensearch_url": self.opensearch.url,
            "redis_url": self.redis.url,
            "opensearch_version": self.opensearch.version,
            "knn_plugin": self.knn_plugin,
            "healthy": self.healthy,
            "redis_version": self.redis.version,
            "opensearch": self.opensearch.as_json(),
            "redis": self.redis.as_json(),
            "nodes": [
                {"service": s.name, "name": s.name, "role": "single", **s.as_json()}
                for s in (self.opensearch, self.redis)
            ],
        }


def _local_opensearch_url(settings: StackSettings) -> str:
    return f"http://127.0.0.1:{settings.opensearch_port}"


def _local_redis_url(settings: StackSettings) -> str:
    return f"redis://127.0.0.1:{settings.redis_port}/0"


def status(settings: StackSettings) -> StackStatus:
    """Probe both servers (starting nothing)."""
    layout = Layout.of(settings)
    os_status, knn = _opensearch_status(settings, layout)
    return StackStatus(opensearch=os_status, knn_plugin=knn, redis=_redis_status(settings, layout))


def _opensearch_status(settings: StackSettings, layout: Layout) -> tuple[ServiceStatus, str | None]:
    local = settings.opensearch_url is None
    url = settings.opensearch_endpoint
    info = opensearch_node.probe(url, login=opensearch_node.http_login(settings))
    pid = opensearch_node.running_pid(layout.opensearch_node) if local else None
    healthy = info is not None and info.cluster_status in ("yellow", "green")
    detail = "not answering" if info is None else f"cluster {info.cluster_status}"
    service = ServiceStatus(
        name="opensearch",
        url=url,
        managed=local and pid is not None,
        healthy=healthy,
        pid=pid,
        port=settings.opensearch_port if local else None,
        version=info.version if info else None,
        data_dir=layout.opensearch_node.data if local else None,
        log_file=layout.opensearch_node.log if local else None,
        detail=detail,
    )
    return service, info.knn_plugin if info else None


def _redis_status(settings: StackSettings, layout: Layout) -> ServiceStatus:
    local = settings.redis_url is None
    url = settings.redis_endpoint
    info = redis_server.probe(url, redis_acl.admin_login(settings))
    pid = redis_server.running_pid(layout.redis_node) if local else None
    detail = (
        "not answering"
        if info is None
        else f"appendonly={'yes' if info.appendonly else 'no'} maxmemory-policy={info.maxmemory_policy}"
    )
    return ServiceStatus(
        name="redis",
        url=url,
        managed=local and pid is not None,
        healthy=info is not None,
        pid=pid,
        port=settings.redis_port if local else None,
        version=info.version if info else None,
        data_dir=layout.redis_node.dir if local else None,
        log_file=layout.redis_node.log if local else None,
        detail=detail,
    )


def ensure_running(settings: StackSettings, console: Console | None = None) -> StackStatus:
    """Bring OpenSearch (+k-NN) and Redis up unless they already answer; returns their status.

    With LOCKSTEP_OPENSEARCH_URL / LOCKSTEP_REDIS_URL set, those servers are used and nothing is started.
    """
    console = console or Console(stderr=True)
    current = status(settings)
    if current.healthy:
        _tune_local_redis(settings)
        return current
    _check_external(settings, current)
    started: list[str] = []
    with state_lock(Layout.of(settings)):
        current = status(settings)  # someone may have started it while we waited for the lock
        need_opensearch = settings.opensearch_url is None and not current.opensearch.healthy
        if need_opensearch and _bring_up_opensearch(settings, current.opensearch, console):
            started.append("opensearch")
        need_redis = settings.redis_url is None and not current.redis.healthy
        if need_redis and _bring_up_redis(settings, current.redis, console):
            started.append("redis")
    final = status(settings)
    if not final.healthy:
        raise StackError(f"the stack is not healthy after start: {final.as_json()}")
    _tune_local_redis(settings)
    return StackStatus(final.opensearch, final.knn_plugin, final.redis, started=tuple(started))


def _tune_local_redis(settings: StackSettings) -> None:
    # Our own server may predate a tuning line in its config; a LOCKSTEP_REDIS_URL server is the user's,
    # and one with ACL users was started from a config that has it (and no user of ours may CONFIG SET).
    if settings.redis_url is None and redis_acl.load(settings.state_dir) is None:
        redis_server.apply_tuning(settings.redis_endpoint)


def _check_external(settings: StackSettings, current: StackStatus) -> None:
    if settings.opensearch_url is not None:
        if not current.opensearch.healthy:
            raise StackError(
                f"LOCKSTEP_OPENSEARCH_URL={settings.opensearch_url} is set but does not answer with a yellow "
                "or green cluster; unset it to run the local node"
            )
        if current.knn_plugin is None:
            raise StackError(
                f"LOCKSTEP_OPENSEARCH_URL={settings.opensearch_url} has no opensearch-knn plugin"
            )
    if settings.redis_url is not None and not current.redis.healthy:
        raise StackError(
            f"LOCKSTEP_REDIS_URL={settings.redis_url} is set but does not answer PING; "
            "unset it to run the local one"
        )
    if current.opensearch.healthy and current.knn_plugin is None:
        raise StackError(f"{current.opensearch.url} answers but has no opensearch-knn plugin")


def _bring_up_opensearch(settings: StackSettings, seen: ServiceStatus, console: Console) -> bool:
    """Start the local node unless one is there; True when this call started it."""
    layout = Layout.of(settings)
    if seen.pid is not None or opensearch_node.probe(seen.url, timeout=2) is not None:
        # A node is there but not yellow (still starting, or an index being created right now): wait for
        # it; restarting a node that other test sessions may be using would break them.
        with console.status(f"waiting for OpenSearch on {seen.url} to reach yellow health"):
            opensearch_node.wait_healthy(layout.opensearch_node, timeout=120, require_ours=False)
        return False
    jdk = find_jdk()
    opensearch_node.install(settings, layout, jdk, console)
    opensearch_node.start(settings, layout, jdk, console)
    return True


def _bring_up_redis(settings: StackSettings, seen: ServiceStatus, console: Console) -> bool:
    """Start our redis-server unless one is there; True when this call started it."""
    layout = Layout.of(settings)
    if seen.pid is not None:
        with console.status(f"waiting for redis-server pid {seen.pid} to answer PING"):
            redis_server.wait_answering(layout.redis_node, 30, redis_acl.admin_login(settings))
        return False
    users = redis_acl.ensure(settings.state_dir)
    redis_server.start(layout.redis_node, console, users, settings.redis_system_user)
    return True


def runs_any(settings: StackSettings) -> bool:
    """Whether a pid file of ours names a live OpenSearch or Redis of this topology."""
    layout = Layout.of(settings)
    return (
        opensearch_node.running_pid(layout.opensearch_node) is not None
        or redis_server.running_pid(layout.redis_node) is not None
    )


def stop(settings: StackSettings) -> dict[str, int | None]:
    """Stop the processes our pid files name (never a LOCKSTEP_*_URL server); returns the pids stopped."""
    layout = Layout.of(settings)
    stopped: dict[str, int | None] = {}
    if not layout.state_dir.exists():
        return stopped
    with state_lock(layout):
        if settings.opensearch_url is None:
            stopped["opensearch"] = opensearch_node.stop(layout.opensearch_node)
        if settings.redis_url is None:
            stopped["redis"] = redis_server.stop(layout.redis_node)
    return stopped
