"""`lockstep orchestrator serve`: run the orchestrator under uvicorn."""

from __future__ import annotations

from urllib.parse import urlsplit

import typer


def register(app: typer.Typer) -> None:
    """Add the `orchestrator` command group."""
    group = typer.Typer(
        help="The Embeddings Orchestrator: latest/in_use versions, vectors.", no_args_is_help=True
    )

    @group.command()
    def serve(
        host: str | None = typer.Option(None, help="Bind address (default: orchestrator_url's host)."),
        port: int | None = typer.Option(None, help="Port (default: orchestrator_url's port)."),
        workers: int = typer.Option(1, min=1, help="uvicorn worker processes."),
    ) -> None:
        """Serve the orchestrator HTTP API."""
        import uvicorn

        from contract.settings import OrchestratorSettings
        from orchestrator.main import create_app

        settings = OrchestratorSettings()  # fields come from the environment
        url = urlsplit(settings.orchestrator_url)
        bind_host = host or url.hostname or "127.0.0.1"
        bind_port = port or url.port or 8701
        if workers == 1:
            uvicorn.run(create_app(settings), host=bind_host, port=bind_port, log_level=settings.log_level)
        else:
            uvicorn.run(
                "orchestrator.main:app_from_env",
                factory=True,
                host=bind_host,
                port=bind_port,
                workers=workers,
                log_level=settings.log_level,
            )

    app.add_typer(group, name="orchestrator")
