"""`lockstep crash`: SIGKILL the stack's processes under load for a while, then check the history."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the `crash` command."""

    @app.command()
    def crash(
        seconds: float = typer.Option(600.0, min=1, help="Seconds of chaos (kills, publishes, rollbacks)."),
        history: Path = typer.Option(Path("crash-history.jsonl"), help="Where the history is written."),
        kill_every: float = typer.Option(8.0, min=1, help="Seconds between two SIGKILLs."),
        rollback_every: float = typer.Option(20.0, min=1, help="Seconds between two rollbacks."),
        concurrency: int = typer.Option(4, min=1, max=64, help="Concurrent clients of /v1/recommend."),
        recover_timeout: float = typer.Option(
            180.0, min=1, help="Seconds after the chaos for every killed process to recover."
        ),
        seed: int = typer.Option(1, help="Seed of the kill order, the vectors and the load."),
        state_dir: Path | None = typer.Option(
            None, help="The crasher's stack's state dir. Default: <LOCKSTEP_STATE_DIR>/crash."
        ),
        opensearch_port: int = typer.Option(9281, min=1024, max=65535, help="Its OpenSearch's HTTP port."),
        transport_port: int = typer.Option(
            9381, min=1024, max=65535, help="Its OpenSearch's transport port."
        ),
        redis_port: int = typer.Option(6395, min=1024, max=65535, help="Its Redis's port."),
        keep_stack: bool = typer.Option(False, help="Leave the crasher's stack running afterwards."),
        check_only: bool = typer.Option(
            False, help="Run nothing: check the history file given with --history and print the table."
        ),
    ) -> None:
        """Kill processes (orchestrator, serving, both indexers, Redis, OpenSearch) at random under load
        while publishing and indexing, on a stack of its own; exits 1 on any violation."""
        import asyncio

        from rich.console import Console

        from contract.settings import StackSettings
        from crash import history as history_file
        from crash.checker import check
        from crash.context import CrashError, Options
        from crash.report import tables
        from crash.run import run
        from crash.stack import CrashStack

        console = Console() if sys.stdout.isatty() else Console(width=160)
        if check_only:
            report = check(history_file.read(history))
        else:
            stack = CrashStack(
                state_dir=state_dir or StackSettings().state_dir / "crash",
                opensearch_port=opensearch_port,
                transport_port=transport_port,
                redis_port=redis_port,
            )
            options = Options(
                seconds=seconds,
                history=history.resolve(),
                stack=stack,
                kill_every=kill_every,
                rollback_every=rollback_every,
                concurrency=concurrency,
                recover_timeout=recover_timeout,
                seed=seed,
                keep_stack=keep_stack,
            )
            try:
                report = asyncio.run(run(options, console))
            except CrashError as exc:
                console.print(f"[bold red]crash run failed to start:[/] {exc}", highlight=False)
                raise typer.Exit(2) from exc
        console.print(tables(report))
        if not report.ok:
            console.print(f"[bold red]{len(report.violations)} violations[/] (history: {history})")
            raise typer.Exit(1)
        console.print(f"[bold green]no violation[/] (history: {history})")
