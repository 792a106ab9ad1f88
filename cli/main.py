"""The `lockstep` command: each process contributes its own subcommands."""

from __future__ import annotations

import typer

from cli import registry

app = typer.Typer(
    name="lockstep",
    help="Embeddings-based recommendations on OpenSearch k-NN, user and item vectors kept in lockstep.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
registry.register_all(app)
