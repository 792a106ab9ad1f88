"""`lockstep demo` (the whole story end to end), `lockstep demo down` and `lockstep demo status`."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from contract.settings import Settings
    from demo.deployment import Deployment
    from demo.examples import Example

TOPOLOGY_HELP = (
    "single: one orchestrator and one serving process on the single-node stack; cluster: replicas of each "
    "on the cluster topology, with a node of each cluster killed mid-rollout. "
    "Default: LOCKSTEP_TOPOLOGY (single)."
)


EXAMPLE_HELP = (
    "goodbooks: books and ratings, three types trained here. news: a synthetic catalog of articles "
    "(examples/news) partitioned by region, two types published from its vector files; its own key and "
    "index prefix (news-<prefix>) and ports (8703, 8704 unless LOCKSTEP_ORCHESTRATOR_URL / "
    "LOCKSTEP_SERVING_URL say otherwise)."
)


def _example(name: str) -> Example:
    from demo.examples import EXAMPLES

    if name not in EXAMPLES:
        raise typer.BadParameter(" or ".join(EXAMPLES), param_hint="--example")
    return EXAMPLES[name]


def _deployment(
    settings: Settings, topology: str | None, replicas: int, orchestrator_port: int, serving_port: int
) -> Deployment:
    from demo import deployment

    if (topology or settings.topology) == "cluster":
        return deployment.cluster(settings, os.environ, replicas, orchestrator_port, serving_port)
    return deployment.single(settings)


def register(app: typer.Typer) -> None:
    """Add the `demo` command group."""
    group = typer.Typer(
        help="Stack, first versions, processes, recommendations, then a verified version rollout under load.",
        invoke_without_command=True,
    )

    @group.callback(invoke_without_command=True)
    def demo(
        ctx: typer.Context,
        example: str = typer.Option("goodbooks", help=EXAMPLE_HELP),
        duration: float = typer.Option(60.0, min=1, help="Seconds of load during the rollout (at least)."),
        concurrency: int = typer.Option(8, min=1, max=256, help="Concurrent clients of the load generator."),
        users: int = typer.Option(3, min=0, max=20, help="Users whose recommendations are printed."),
        every: str = typer.Option("5s", help="Indexer cycle period."),
        limit: int | None = typer.Option(
            None,
            min=1,
            help="Load only the first N goodbooks books into the catalog; news: N articles instead of "
            "20,000 (quick runs, tests).",
        ),
        ready_timeout: float = typer.Option(900.0, min=1, help="Seconds to wait for the first index builds."),
        rollout_timeout: float = typer.Option(
            600.0, min=1, help="Seconds past --duration to wait for every type to advance."
        ),
        verify_sample: int = typer.Option(200, min=1, help="Responses whose similarities are recomputed."),
        quality_users: int = typer.Option(
            300, min=1, max=20_000, help="Users per type whose recommendations are scored for quality."
        ),
        topology: str | None = typer.Option(None, help=TOPOLOGY_HELP),
        replicas: int = typer.Option(
            2, min=2, max=8, help="Cluster topology: orchestrator and serving processes (each)."
        ),
        orchestrator_port: int = typer.Option(
            8711,
            min=1024,
            max=65000,
            help="Cluster topology: the first orchestrator's port (the others follow).",
        ),
        serving_port: int = typer.Option(
            8721,
            min=1024,
            max=65000,
            help="Cluster topology: the first serving process's port (the others follow).",
        ),
    ) -> None:
        """Run the demo; exits 1 when a verification check fails. Run it again to roll out another version."""
        if ctx.invoked_subcommand is not None:
            return
        import asyncio

        from rich.console import Console

        from contract.settings import Settings
        from demo.flow import DemoError, Options, run

        if topology not in (None, "single", "cluster"):
            raise typer.BadParameter("single or cluster", param_hint="--topology")
        chosen_example = _example(example)

        # Piped output (make demo | tee, CI logs) would otherwise be squeezed to 80 columns,
        # hiding titles and version ids in the tables.
        console = Console() if sys.stdout.isatty() else Console(width=180)
        options = Options(
            duration=duration,
            concurrency=concurrency,
            users=users,
            every=every,
            limit=limit,
            ready_timeout=ready_timeout,
            rollout_timeout=rollout_timeout,
            verify_sample=verify_sample,
            quality_users=quality_users,
        )
        try:
            settings = chosen_example.settings(Settings(), os.environ)
            chosen = _deployment(settings, topology, replicas, orchestrator_port, serving_port)
            summary = asyncio.run(run(settings, options, console, chosen, chosen_example))
        except DemoError as exc:
            console.print(f"[bold red]demo failed:[/] {exc}", highlight=False)
            raise typer.Exit(1) from exc
        if not summary.ok:
            failed = ", ".join(c.name for c in summary.checks if not c.ok)
            console.print(f"[bold red]demo verification failed:[/] {failed}")
            raise typer.Exit(1)
        console.print("[bold green]demo verified: every check passed")

    @group.command()
    def down(
        topology: str | None = typer.Option(
            None, help="Stop only this demo's processes (single or cluster). Default: both."
        ),
        replicas: int = typer.Option(2, min=2, max=8, help="Cluster topology: replicas it was started with."),
        example: str | None = typer.Option(
            None, help="Stop only this example's demo (goodbooks or news). Default: every example's."
        ),
    ) -> None:
        """Stop the demo's orchestrators, serving processes and indexers (the stack stays: services down)."""
        from contract.settings import Settings
        from demo.examples import EXAMPLES
        from demo.flow import stop_processes

        examples = list(EXAMPLES.values()) if example is None else [_example(example)]
        stopped: list[str] = []
        for each in examples:
            settings = each.settings(Settings(), os.environ)
            for chosen in ("single", "cluster"):
                if topology in (None, chosen):
                    deployment = _deployment(settings, chosen, replicas, 8711, 8721)
                    stopped += [
                        f"{name} ({each.name})" if each.prefix else name
                        for name in stop_processes(settings, deployment, each)
                    ]
        typer.echo(f"stopped {', '.join(stopped)}" if stopped else "no demo process was running")

    @group.command()
    def status(
        topology: str | None = typer.Option(None, help="single or cluster. Default: LOCKSTEP_TOPOLOGY."),
        replicas: int = typer.Option(2, min=2, max=8, help="Cluster topology: replicas it was started with."),
        example: str = typer.Option("goodbooks", help="goodbooks or news."),
    ) -> None:
        """The demo's background processes: pid, running or not, log file."""
        from contract.settings import Settings
        from demo import processes
        from demo.layout import Layout
        from demo.plan import process_names

        chosen_example = _example(example)
        settings = chosen_example.settings(Settings(), os.environ)
        chosen = _deployment(settings, topology, replicas, 8711, 8721)
        layout = Layout.of(settings, chosen.topology)
        for name in process_names(chosen, chosen_example.types):
            record = processes.running(layout, name)
            state = f"running, pid {record.pid}" if record else "not running"
            typer.echo(f"{name:22} {state:22} {layout.log_file(name)}")

    app.add_typer(group, name="demo")
