"""`lockstep serving serve`, and the evaluation behind `lockstep eval --via-serving URL` (cli.evaluate)."""

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
        from contract.items import SchemaError, schema

        try:
            schema()  # a bad schema file stops the start here, named, not in the first request
        except SchemaError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        from contract.settings import ServingSettings
        from service.server import ServerConfig, serve
        from serving.main import create_app

        settings = ServingSettings()  # fields come from the environment
        url = urlsplit(settings.serving_url)
        config = ServerConfig(
            create_app(settings),
            read_timeout=settings.request_read_timeout_seconds,
            host=host or url.hostname or "127.0.0.1",
            port=port or url.port or 8702,
            log_level=settings.log_level,
            access_log=False,
        )
        serve(config)

    app.add_typer(group, name="serving")


def evaluate_via_serving(url: str, holdout: Path | None, users: int, types: list[str]) -> None:
    """Print serving.evaluation's JSON report for a running serving API (exit 2: bad input, 1: down)."""
    import asyncio

    import httpx

    from contract.settings import ServingSettings
    from serving.evaluation import evaluate
    from serving.upstream import OrchestratorDown

    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        typer.echo(f"error: --via-serving: expected http(s)://host[:port], got {url!r}", err=True)
        raise typer.Exit(2)
    if holdout is not None and not holdout.is_file():
        typer.echo(f"error: --holdout: no such file {holdout}", err=True)
        raise typer.Exit(2)
    settings = ServingSettings()  # fields come from the environment
    try:
        report = asyncio.run(evaluate(settings, url, holdout, users, types))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except (httpx.HTTPError, OrchestratorDown) as exc:
        typer.echo(f"error: cannot evaluate through {url}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(report, indent=2))
    leaky = {name: t["holdout_in_profile"] for name, t in report["types"].items() if t["holdout_in_profile"]}
    if leaky:
        shares = ", ".join(f"{name} {share:.1%}" for name, share in leaky.items())
        typer.echo(
            f"warning: users whose stored profile holds held-out items ({shares}): user vectors aggregated "
            "from the profile saw them, so recall is inflated; load profiles without them "
            "(`lockstep profiles load --history SHARE --replace`)",
            err=True,
        )
