"""`lockstep services up | down | status | logs`: the local OpenSearch + Redis stack."""

from __future__ import annotations

import json
from collections import deque
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from contract.settings import Settings
from stack import services
from stack.errors import StackError
from stack.layout import Layout

_err = Console(stderr=True)
_out = Console(highlight=False)


class Service(StrEnum):
    """A server of the stack."""

    opensearch = "opensearch"
    redis = "redis"


def _settings() -> Settings:
    try:
        # Fields come from LOCKSTEP_* variables, which mypy (without the pydantic plugin) cannot see.
        return Settings()
    except ValidationError as exc:
        _err.print(f"[red]invalid settings:[/] {exc}")
        raise typer.Exit(2) from exc


def up() -> None:
    """Install (first time) and start OpenSearch + k-NN and Redis; does nothing if they already run."""
    settings = _settings()
    try:
        result = services.ensure_running(settings, console=_err)
    except StackError as exc:
        _err.print(f"[red]services up failed:[/] {exc}")
        raise typer.Exit(1) from exc
    for service in (result.opensearch, result.redis):
        how = "started" if service.name in result.started else "already running"
        if not service.managed and service.name not in result.started:
            how = "in use (not started by us)"
        pid = f" (pid {service.pid})" if service.pid else ""
        _out.print(f"{service.name:<10} {how}{pid}: {service.url}")


def down() -> None:
    """Stop the OpenSearch and Redis processes we started (pid files); servers from LOCKSTEP_*_URL stay."""
    settings = _settings()
    try:
        stopped = services.stop(settings)
    except StackError as exc:
        _err.print(f"[red]services down failed:[/] {exc}")
        raise typer.Exit(1) from exc
    for name in ("opensearch", "redis"):
        if name not in stopped:
            _out.print(f"{name:<10} not ours (LOCKSTEP_{name.upper()}_URL is set); left running")
        elif stopped[name] is None:
            _out.print(f"{name:<10} was not running")
        else:
            _out.print(f"{name:<10} stopped (pid {stopped[name]})")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Versions, pids, ports, health and data dirs; exits 1 when the stack is not healthy."""
    result = services.status(_settings())
    if as_json:
        typer.echo(json.dumps(result.as_json()))
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


def logs(
    service: Annotated[Service | None, typer.Argument(help="opensearch or redis; both when omitted.")] = None,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="Lines from the end of each log.")] = 50,
) -> None:
    """The last lines of the local servers' logs."""
    layout = Layout.of(_settings())
    files = {
        Service.opensearch: [layout.opensearch_console_log, layout.opensearch_log],
        Service.redis: [layout.redis_log],
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
    group = typer.Typer(help="The local OpenSearch + k-NN and Redis stack.", no_args_is_help=True)
    group.command()(up)
    group.command()(down)
    group.command()(status)
    group.command()(logs)
    app.add_typer(group, name="services")
