"""`lockstep redis migrate-keys`: move data of the key schema before hash tags to the current one."""

from __future__ import annotations

import typer
from rich.table import Table

from contract.keys import Keys
from contract.redis_clients import sync_client
from contract.redis_setup import check
from contract.settings import Settings
from training.console import clean_errors, out
from training.key_migration import migrate


def register(app: typer.Typer) -> None:
    """Add the `redis` command group."""
    group = typer.Typer(help="Lockstep's data in Redis.", no_args_is_help=True)
    group.command("migrate-keys")(migrate_keys)
    app.add_typer(group, name="redis")


def migrate_keys() -> None:
    """Move types written by a Lockstep before hash tags to the current key schema (stop writers first).

    Every process refuses to start while such data is there. Safe to run again (a killed run is finished
    by the next); a no-op when there is nothing to move.
    """
    with clean_errors():
        settings = Settings()  # fields come from the environment
        client = sync_client(settings)
        try:
            keys = Keys(settings.key_prefix)
            check(client, settings, keys, refuse_legacy=False)  # everything but the data it moves
            migrated, profiles = migrate(client, keys)
        finally:
            client.close()
    table = Table("type", "versions", "keys moved", "leftovers dropped")
    for m in migrated:
        table.add_row(m.type_name, str(m.versions), str(m.moved), str(m.dropped))
    out.print(table if migrated else "nothing to migrate: every type is in the current key schema")
    out.print(f"profiles indexed: {profiles}")
