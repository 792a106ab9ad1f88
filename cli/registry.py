"""Which process contributes which subcommands; the only module that imports every process."""

from __future__ import annotations

import typer

from cli import catalog as catalog_cli
from cli import evaluate as evaluate_cli
from cli import redis_keys as redis_keys_cli
from crash import cli as crash_cli
from demo import cli as demo_cli
from indexer import cli as indexer_cli
from orchestrator import cli as orchestrator_cli
from serving import cli as serving_cli
from stack import cli as stack_cli
from training import cli as training_cli

# Each module's `register(app)` adds its own subcommands.
_COMMAND_MODULES = (
    stack_cli,
    training_cli,
    redis_keys_cli,
    evaluate_cli,
    catalog_cli,
    orchestrator_cli,
    indexer_cli,
    serving_cli,
    demo_cli,
    crash_cli,
)


def register_all(app: typer.Typer) -> None:
    """Add every process's commands to `app`."""
    for module in _COMMAND_MODULES:
        module.register(app)
