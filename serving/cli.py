"""`lockstep serving serve` and `lockstep serving eval --via-serving URL [--holdout PATH]`."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import typer


def register(app: typer.Typer) -> None:
    """Add the `serving` command group."""
    group = typer.Typer(help="The serving API: /v1/recommend, similar items.", no_args_is_help=True)

    @group.command()
    def serve(
        host: str | None = typer.Option(None, help="Bind address (default: serving_url's host)."),
        port: int | None = typer.Option(None, help="Port (default: serving_url's port)."),
    ) -> None:
        """Serve the recommendation API under uvicorn."""
        import uvicorn

        from contract.settings import Settings
        from serving.main import create_app

        settings = Settings()  # fields come from the environment
        url = urlsplit(settings.serving_url)
        uvicorn.run(
            create_app(settings),
            host=host or url.hostname or "127.0.0.1",
            port=port or url.port or 8702,
            log_level=settings.log_level,
            access_log=False,
        )

    @group.command("eval")
    def eval_(
        via_serving: str = typer.Option(..., "--via-serving", help="Base URL of a running serving API."),
        holdout: Path | None = typer.Option(None, help="CSV user_id,book_id of held-out interactions."),
        users: int = typer.Option(500, min=1, help="Users sampled per type."),
    ) -> None:
        """recall@10 / nDCG@10 via /v1/recommend per type, exact-top-10 share, fallback share (JSON)."""
        import asyncio

        from contract.settings import Settings
        from serving.evaluation import evaluate

        settings = Settings()  # fields come from the environment
        report = asyncio.run(evaluate(settings, via_serving, holdout, users))
        typer.echo(json.dumps(report, indent=2))

    app.add_typer(group, name="serving")
