"""Which process contributes which subcommands; the only module that imports every process."""

from __future__ import annotations

import importlib

import typer

# Each module exposes `register(app: typer.Typer) -> None`.
_COMMAND_MODULES = (
    "stack.cli",
    "training.cli",
    "orchestrator.cli",
    "indexer.cli",
    "serving.cli",
    "demo.cli",
)


def register_all(app: typer.Typer) -> None:
    """Add every process's commands to `app`."""
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that process has no commands yet
                continue
            raise
        module.register(app)
