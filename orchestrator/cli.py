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
        from contract.items import SchemaError, schema

        try:
            schema()  # a bad schema file stops the start here, named, not in the first request
        except SchemaError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        from contract.settings import OrchestratorSettings
        from orchestrator.main import create_app
        from service.server import ServerConfig, serve

        settings = OrchestratorSettings()  # fields come from the environment
        url = urlsplit(settings.orchestrator_url)
        # Several workers each build the app from the environment (orchestrator.main.app_from_env).
        app = create_app(settings) if workers == 1 else "orchestrator.main:app_from_env"
        config = ServerConfig(
            app,
            read_timeout=settings.request_read_timeout_seconds,
            factory=workers > 1,
            host=host or url.hostname or "127.0.0.1",
            port=port or url.port or 8701,
            workers=workers,
            log_level=settings.log_level,
        )
        serve(config)

    app.add_typer(group, name="orchestrator")
