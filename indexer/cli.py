"""`lockstep index shadow|incremental|run`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from indexer.scheduler import Runner


class RunMode(StrEnum):
    """Which indexing mode a long-lived run uses."""

    SHADOW = "shadow"
    INCREMENTAL = "incremental"


def _step_hook() -> Callable[[str], Awaitable[None]] | None:
    # Crash tests slow a build down so a SIGKILL can land inside any phase; never set in production.
    delay = float(os.environ.get("LOCKSTEP_INDEXER_STEP_DELAY", "0") or 0)
    if delay <= 0:
        return None

    async def step(where: str) -> None:
        print(f"step {where}", flush=True)
        await asyncio.sleep(delay)

    return step


def register(app: typer.Typer) -> None:
    """Add the `index` command group."""
    index = typer.Typer(
        help="Index item vectors into OpenSearch (shadow or incremental).", no_args_is_help=True
    )

    def _runner(batch_size: int, lock_wait: float) -> Runner:
        """The process's runner (call it inside the event loop that runs its cycles)."""
        import sys

        from contract.items import SchemaError, schema
        from contract.settings import IndexerSettings
        from indexer.logs import configure
        from indexer.metrics import IndexerMetrics
        from indexer.scheduler import Runner

        try:
            schema()
        except SchemaError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        settings = IndexerSettings.model_validate({})
        configure(settings.log_level)
        return Runner(
            settings,
            IndexerMetrics.create(),
            batch_size=batch_size,
            progress=sys.stderr.isatty(),
            step=_step_hook(),
            lock_wait_seconds=lock_wait,
        )

    def _print(report: object) -> None:
        from dataclasses import asdict, is_dataclass

        rows = [asdict(r) if is_dataclass(r) else r for r in getattr(report, "results", [])]  # type: ignore[arg-type]
        typer.echo(
            json.dumps({"seconds": round(getattr(report, "seconds", 0.0), 3), "results": rows}, default=str)
        )

    def _one_cycle(
        mode: str,
        types: list[str] | None,
        batch_size: int,
        lock_wait: float,
        switch_mode: bool,
    ) -> None:
        from indexer.errors import CYCLE_FAILURES

        async def cycle() -> object:
            runner = _runner(batch_size, lock_wait)
            try:
                await runner.check_redis()
                return await (runner.shadow if mode == "shadow" else runner.incremental)(types, switch_mode)
            finally:
                await runner.aclose()

        try:
            _print(asyncio.run(cycle()))
        except CYCLE_FAILURES as exc:
            typer.echo(f"{mode} cycle failed: {exc}", err=True)
            raise typer.Exit(1) from exc

    types_opt = typer.Option(
        None, "--type", help="Only these embedding types (repeatable; default: all types of this mode)."
    )
    batch_opt = typer.Option(500, "--batch-size", min=1, max=1000, help="Items per fetch and bulk request.")
    wait_opt = typer.Option(0.0, "--lock-wait", min=0, help="Seconds to wait for a busy lock.")
    switch_opt = typer.Option(
        False,
        "--switch-mode",
        help="Also take types whose in_use is served by the other mode, moving them to this one "
        "(without it a named type of the other mode is an error, an unnamed one is skipped).",
    )

    @index.command()
    def shadow(
        types: list[str] | None = types_opt,
        batch_size: int = batch_opt,
        lock_wait: float = wait_opt,
        switch_mode: bool = switch_opt,
    ) -> None:
        """One shadow cycle: build, verify and promote the latest version of each type."""
        _one_cycle("shadow", types, batch_size, lock_wait, switch_mode)

    @index.command()
    def incremental(
        types: list[str] | None = types_opt,
        batch_size: int = batch_opt,
        lock_wait: float = wait_opt,
        switch_mode: bool = switch_opt,
    ) -> None:
        """One incremental mini-batch cycle on the live index."""
        _one_cycle("incremental", types, batch_size, lock_wait, switch_mode)

    @index.command()
    def run(
        mode: RunMode = typer.Option(..., "--mode", help="shadow or incremental."),
        every: str = typer.Option("60s", "--every", help="Cycle period, e.g. 30s, 5m, 1h."),
        metrics_port: int | None = typer.Option(
            None, "--metrics-port", help="Serve Prometheus /metrics here."
        ),
        types: list[str] | None = types_opt,
        batch_size: int = batch_opt,
        switch_mode: bool = switch_opt,
    ) -> None:
        """Run cycles every DURATION until interrupted (the docker-compose indexer service)."""
        import gc
        import signal

        from prometheus_client import start_http_server

        from indexer.scheduler import parse_duration

        try:
            period = parse_duration(every)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--every") from exc

        async def forever() -> None:
            runner = _runner(batch_size, 0.0)
            # What is loaded by now lives as long as the process (~95k objects, 10-20 ms a full collection):
            # kept out of the collector's full passes, which a cycle's 10^5 allocations trigger (as serving).
            gc.collect()
            gc.freeze()
            if metrics_port is not None:
                start_http_server(metrics_port, addr="127.0.0.1", registry=runner.metrics.registry)
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            try:
                await runner.check_redis()
                await runner.run_forever(mode.value, period, types, stop, switch_mode)
            finally:
                await runner.aclose()

        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the loop cancels the run, clients close
            asyncio.run(forever())

    app.add_typer(index, name="index")
