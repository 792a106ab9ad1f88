"""`lockstep eval`: offline per type (training), or through a running serving API (`--via-serving URL`).

One command over two processes' code, so it lives here, where processes are composed.
"""

from __future__ import annotations

from pathlib import Path

import typer

from serving import cli as serving_cli
from training import commands_models


def register(app: typer.Typer) -> None:
    """Add `eval` to the `lockstep` app."""
    app.command("eval")(evaluate)


def evaluate(
    type_names: list[str] = typer.Option([], "--type", help="Type to evaluate; repeatable (default: all)."),
    holdout: Path | None = typer.Option(
        None,
        help="CSV (gzip ok) with columns user_id,book_id: those pairs are the test items, every shared "
        "rating is history. Default: the last 2 ratings of users with >= 6 are the test items "
        "(offline); no recall/nDCG, only the exact-top-10 and fallback shares (--via-serving).",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON instead of a table (--via-serving: always)."
    ),
    chart: Path | None = typer.Option(None, help="Also write a PNG bar chart here (offline only)."),
    all_books: bool = typer.Option(
        False,
        help="Rank among every book a type embeds, not only the books that have ratings in our data "
        "(no test pair can name another book, so those would count as misses). Offline only.",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data", help="goodbooks directory (default: settings.data_dir). Offline only."
    ),
    published: bool = typer.Option(
        False,
        "--published",
        help="Score the vectors published in Redis (each type's newest version, or --version) instead of "
        "retraining ours: how another team's embeddings are evaluated. Give a --holdout of interactions "
        "the version was not trained on; the default split's test items may be in its training data.",
    ),
    version: str | None = typer.Option(None, help="With --published and one --type: this version."),
    via_serving: str | None = typer.Option(
        None,
        "--via-serving",
        metavar="URL",
        help="Evaluate through this running serving API instead: recall@10 / nDCG@10 of /v1/recommend "
        "(exclude-seen) per servable type, the share of users whose served top-10 is the exact top-10 of "
        "their vector's version, and the fallback share.",
    ),
    users: int = typer.Option(500, min=1, help="Users sampled per type (--via-serving only)."),
) -> None:
    """Offline: train each type on the split's history and score its top-10 against a popularity baseline.

    With --via-serving URL: the same metrics through the full stack (orchestrator, OpenSearch, serving).
    """
    if via_serving is None:
        commands_models.evaluate_offline(
            type_names, holdout, as_json, chart, all_books, data_dir, published, version
        )
        return
    offline_only = [
        flag
        for flag, given in (
            ("--chart", chart is not None),
            ("--all-books", all_books),
            ("--data", data_dir is not None),
            ("--published", published),
            ("--version", version is not None),
        )
        if given
    ]
    if offline_only:
        typer.echo(
            f"error: {', '.join(offline_only)}: offline evaluation only, not with --via-serving", err=True
        )
        raise typer.Exit(2)
    serving_cli.evaluate_via_serving(via_serving, holdout, users, type_names)
