"""`lockstep services up | down | status | logs`: the local OpenSearch + Redis stack, single or cluster."""

from __future__ import annotations

import json
import shlex
from collections import deque
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from contract.settings import StackSettings, Topology
from stack import services
from stack.cluster import ClusterStatus
from stack.errors import StackError
from stack.layout import Layout
from stack.redis_acl import RedisUser
from stack.single import StackStatus

_err = Console(stderr=True)
_out = Console(highlight=False)


class Service(StrEnum):
    """A server of the stack."""

    opensearch = "opensearch"
    redis = "redis"


TopologyOption = Annotated[
    Topology | None,
    typer.Option(
        "--topology",
        help="single: one OpenSearch node and one Redis; cluster: 3 OpenSearch nodes and a Redis Cluster "
        "of 3 primaries + 3 replicas. Default: LOCKSTEP_TOPOLOGY (single).",
    ),
]
ShownTopologyOption = Annotated[
    Topology | None,
    typer.Option(
        "--topology", help="single or cluster. Default: the one that runs (else LOCKSTEP_TOPOLOGY)."
    ),
]


def _settings(topology: Topology | None = None) -> StackSettings:
    try:
        # Fields come from LOCKSTEP_* variables, which mypy (without the pydantic plugin) cannot see.
        settings = StackSettings()
    except ValidationError as exc:
        _err.print(f"[red]invalid settings:[/] {exc}")
        raise typer.Exit(2) from exc
    return settings.model_copy(update={"topology": topology}) if topology else settings


def _shown(topology: Topology | None) -> StackSettings:
    settings = _settings(topology)
    if topology is None:
        settings = settings.model_copy(update={"topology": services.running_topology(settings)})
    return settings


def up(topology: TopologyOption = None) -> None:
    """Install (first time) and start OpenSearch + k-NN and Redis; does nothing if they already run."""
    settings = _settings(topology)
    try:
        result = services.ensure_running(settings, console=_err)
    except StackError as exc:
        _err.print(f"[red]services up failed:[/] {exc}")
        raise typer.Exit(1) from exc
    if isinstance(result, ClusterStatus):
        _print_cluster_up(result)
    else:
        _print_single_up(result)


def _print_single_up(result: StackStatus) -> None:
    for service in (result.opensearch, result.redis):
        how = "started" if service.name in result.started else "already running"
        if not service.managed and service.name not in result.started:
            how = "in use (not started by us)"
        pid = f" (pid {service.pid})" if service.pid else ""
        _out.print(f"{service.name:<10} {how}{pid}: {service.url}")


def _print_cluster_up(result: ClusterStatus) -> None:
    for node in result.nodes:
        how = "started" if node.name in result.started else "already running"
        _out.print(f"{node.name:<13} {how} (pid {node.pid}, {node.role}): {node.url}", soft_wrap=True)
    _out.print(f"opensearch: {result.opensearch.detail}, {result.knn_plugin} on each node")
    _out.print(f"redis:      {result.redis.detail}")


OnlyTopologyOption = Annotated[
    Topology | None,
    typer.Option(
        "--topology",
        help="Stop only this topology (the other may be someone else's, from the same state dir). "
        "Default: both.",
    ),
]


def down(topology: OnlyTopologyOption = None) -> None:
    """Stop what we started, in both topologies or one (pid files); servers from LOCKSTEP_*_URL stay."""
    settings = _settings()
    try:
        stopped = services.stop(settings, only=topology)
    except StackError as exc:
        _err.print(f"[red]services down failed:[/] {exc}")
        raise typer.Exit(1) from exc
    urls = {"opensearch": settings.opensearch_url, "redis": settings.redis_url}
    for name, url in urls.items():
        if url is not None and topology != "cluster":
            _out.print(f"{name:<10} not ours (LOCKSTEP_{name.upper()}_URL is set); left running")
    if not stopped:
        _out.print(f"nothing of ours was started from {settings.state_dir}")
    for name, pid in stopped.items():
        width = 10 if name in urls else 13
        _out.print(
            f"{name:<{width}} was not running" if pid is None else f"{name:<{width}} stopped (pid {pid})"
        )


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    topology: ShownTopologyOption = None,
) -> None:
    """Topology, versions, pids, ports, health and data dirs; exits 1 when the stack is not healthy."""
    result = services.status(_shown(topology))
    if as_json:
        typer.echo(json.dumps(result.as_json()))
    elif isinstance(result, ClusterStatus):
        _print_cluster_status(result)
    else:
        table = Table("", "opensearch", "redis")
        pair = (result.opensearch, result.redis)
        version = f"{result.opensearch.version or '-'} + {result.knn_plugin or 'no k-NN plugin'}"
        rows = {
            "url": [s.url for s in pair],
            "version": [version, result.redis.version or "-"],
            "pid": [str(s.pid) if s.managed else "not started by us" for s in pair],
            "port": [str(s.port or "-") for s in pair],
            "healthy": ["yes" if s.healthy else "[red]no[/]" for s in pair],
            "detail": [s.detail for s in pair],
            "data dir": [str(s.data_dir or "-") for s in pair],
            "log": [str(s.log_file or "-") for s in pair],
        }
        for field, values in rows.items():
            table.add_row(field, *values)
        _out.print(table)
        _out.print("healthy" if result.healthy else "[red]not healthy[/]")
    if not result.healthy:
        raise typer.Exit(1)


class EnvRole(StrEnum):
    """Which Redis user `services env` logs in as."""

    APP = "app"
    SERVING = "serving"


def env(
    topology: ShownTopologyOption = None,
    role: Annotated[
        EnvRole,
        typer.Option(
            "--role",
            help="app: the Redis user of the orchestrator, indexer, training, CLI and tests (read/write); "
            "serving: serving's read-only user.",
        ),
    ] = EnvRole.APP,
) -> None:
    """`export` lines pointing processes at the running topology and logging them in to our Redis:
    `eval "$(lockstep services env)"`. They hold a password: do not paste them anywhere public."""
    user = RedisUser.APP if role is EnvRole.APP else RedisUser.SERVING
    for name, value in services.client_environment(_shown(topology), user).items():
        typer.echo(f"export {name}={shlex.quote(value)}")


def _print_cluster_status(result: ClusterStatus) -> None:
    table = Table("node", "role", "url", "pid", "healthy", "detail", "log")
    for node in result.nodes:
        table.add_row(
            node.name,
            node.role or "-",
            node.url,
            str(node.pid or "-"),
            "yes" if node.healthy else "[red]no[/]",
            node.detail,
            str(node.log_file),
        )
    _out.print(table)
    version = next((v.version for v in result.opensearch.nodes if v.version), "-")
    _out.print(f"opensearch {version}: {result.opensearch.detail}")
    _out.print(f"redis: {result.redis.detail}")
    _out.print("cluster topology healthy" if result.healthy else "[red]cluster topology not healthy[/]")


def logs(
    service: Annotated[Service | None, typer.Argument(help="opensearch or redis; both when omitted.")] = None,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="Lines from the end of each log.")] = 50,
    topology: ShownTopologyOption = None,
) -> None:
    """The last lines of the local servers' logs (every node's, in the cluster topology)."""
    settings = _shown(topology)
    layout = Layout.of(settings)
    if settings.topology == "cluster":
        files = {
            Service.opensearch: [p for n in layout.cluster_opensearch for p in (n.console_log, n.log)],
            Service.redis: [node.log for node in layout.cluster_redis],
        }
    else:
        files = {
            Service.opensearch: [layout.opensearch_node.console_log, layout.opensearch_node.log],
            Service.redis: [layout.redis_node.log],
        }
    chosen = [service] if service else list(Service)
    for name in chosen:
        for path in files[name]:
            _out.rule(str(path))
            for line in _tail(path, lines):
                typer.echo(line)


def _tail(path: Path, lines: int) -> list[str]:
    if not path.exists():
        return [f"({path} does not exist yet)"]
    with path.open(errors="replace") as handle:
        return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]


def register(app: typer.Typer) -> None:
    """Add the `services` commands to the `lockstep` command."""
    group = typer.Typer(
        help="The local OpenSearch + k-NN and Redis stack (single node, or the cluster topology).",
        no_args_is_help=True,
    )
    group.command()(up)
    group.command()(down)
    group.command()(status)
    group.command()(env)
    group.command()(logs)
    app.add_typer(group, name="services")
