"""`lockstep catalog`: load items into the catalog store, inspect it, and make the example catalogs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from catalog.files import CatalogFileError, read_items, validated
from catalog.store import WRITE_BATCH, CatalogStore, SchemaChanged
from contract.items import ItemError, ItemSchema, SchemaError, schema
from contract.keys import Keys
from contract.redis_clients import REDIS_FAILURES, async_client
from contract.replication import Replication
from contract.settings import Settings
from examples.goodbooks.loader import goodbooks_items
from examples.news import synth
from training.console import out

FORMAT_HELP = "csv, jsonl or parquet (default: from the file's suffix; .gz allowed for csv and jsonl)."


def _schema() -> ItemSchema:
    try:
        return schema()
    except SchemaError as exc:
        raise _fail(str(exc)) from exc


def register(app: typer.Typer) -> None:
    """Add the `catalog` command group."""
    group = typer.Typer(help="The item catalog: its store of record in Redis.", no_args_is_help=True)
    group.command("load")(load)
    group.command("goodbooks")(goodbooks)
    group.command("synth")(synth_command)
    group.command("show")(show)
    group.command("delete")(delete)
    group.command("status")(status)
    app.add_typer(group, name="catalog")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@contextmanager
def _store() -> Iterator[tuple[CatalogStore, ItemSchema, asyncio.Runner]]:
    """The catalog store of the configured key prefix, on an event loop of its own."""
    settings = Settings()
    item_schema = _schema()
    with asyncio.Runner() as loop:
        client = async_client(settings)
        try:
            yield (
                CatalogStore(client, Keys(settings.key_prefix), item_schema, Replication.of(settings)),
                item_schema,
                loop,
            )
        except SchemaChanged as exc:
            raise _fail(str(exc)) from exc
        except REDIS_FAILURES as exc:
            raise _fail(f"redis: {exc}") from exc
        finally:
            loop.run(client.aclose())


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
    )


def _write(docs: Iterable[dict[str, Any]], total: int | None, what: str) -> int:
    """Put validated items into the store in batches, with a progress bar; returns how many."""
    written = 0
    with _store() as (store, _schema, loop), _progress() as bar:
        loop.run(store.check_schema())
        task = bar.add_task(f"writing {what}", total=total)
        batch: list[dict[str, Any]] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= WRITE_BATCH:
                written += loop.run(store.put(batch))
                bar.update(task, advance=len(batch))
                batch = []
        if batch:
            written += loop.run(store.put(batch))
            bar.update(task, advance=len(batch))
    return written


def load(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="The items file."),
    file_format: str | None = typer.Option(None, "--format", help=FORMAT_HELP),
) -> None:
    """Validate every item of FILE against the item schema, then write them all (create or replace).

    Nothing is written when any item is refused: the error names the line, the item and the field.
    """
    item_schema = _schema()
    try:
        with _progress() as bar:
            task = bar.add_task(f"checking {path.name}", total=None)
            count = 0
            for _doc in validated(read_items(path, item_schema, format=file_format), item_schema):
                count += 1
                if count % 10_000 == 0:
                    bar.update(task, completed=count)
            bar.update(task, completed=count, total=count)
        docs = validated(read_items(path, item_schema, format=file_format), item_schema)
        written = _write(docs, count, path.name)
    except CatalogFileError as exc:
        raise _fail(f"{exc} (nothing was written)") from exc
    typer.echo(f"{written} items written from {path} (schema {item_schema.name!r})")


def goodbooks(
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N books by book_id."),
) -> None:
    """Load the goodbooks example's books (LOCKSTEP_DATA_DIR) into the catalog store."""
    settings, item_schema = Settings(), _schema()
    if item_schema.name != "goodbooks":
        raise _fail(
            f"the item schema in effect is {item_schema.name!r}; set LOCKSTEP_CATALOG_SCHEMA to "
            "examples/goodbooks/schema.yaml to load the goodbooks example"
        )
    try:
        docs = [item_schema.validate_item(doc) for doc in goodbooks_items(settings.data_dir, limit)]
    except (OSError, ItemError) as exc:
        raise _fail(f"goodbooks ({settings.data_dir}): {exc}") from exc
    written = _write(docs, len(docs), "goodbooks")
    typer.echo(f"{written} goodbooks items written")


def synth_command(
    items: int = typer.Option(..., "--items", min=1, help="How many articles."),
    out: Path = typer.Option(..., "--out", file_okay=False, help="Directory for items.jsonl and vN/*.npz."),
    dim: int = typer.Option(64, "--dim", min=2, help="Vector dimension."),
    users: int = typer.Option(10_000, "--users", min=1, help="Users with a vector per version."),
    versions: int = typer.Option(2, "--versions", min=1, help="Model versions (vN/items.npz, vN/users.npz)."),
    seed: int = typer.Option(0, "--seed", min=0, help="The same seed makes the same catalog."),
) -> None:
    """Write a synthetic news catalog (examples/news): items.jsonl and clustered vectors per version."""
    with _progress() as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        try:
            summary = synth.write(
                out, items, dim=dim, users=users, versions=versions, seed=seed, progress=report
            )
        except (OSError, ValueError) as exc:
            raise _fail(str(exc)) from exc
    typer.echo(
        f"{summary.items} items, {summary.users} users, {summary.versions} versions of dim {summary.dim} "
        f"in {out} ({summary.bytes / 1e6:.1f} MB, {summary.seconds:.1f} s); load the items with "
        f"LOCKSTEP_CATALOG_SCHEMA=examples/news/schema.yaml lockstep catalog load {out / 'items.jsonl'}"
    )


def show(item_ids: list[str] = typer.Argument(..., help="Item ids.")) -> None:
    """Print stored items as JSON lines (a missing id is reported on stderr)."""
    with _store() as (store, _schema, loop):
        found = loop.run(store.get(item_ids))
    for item_id in item_ids:
        if item_id in found:
            typer.echo(json.dumps(found[item_id], ensure_ascii=False))
        else:
            typer.echo(f"no item {item_id!r}", err=True)


def delete(item_ids: list[str] = typer.Argument(..., help="Item ids.")) -> None:
    """Delete items (each existing one becomes a delete event for the indexers)."""
    with _store() as (store, _schema, loop):
        deleted = loop.run(store.delete(_unique(item_ids)))
    typer.echo(f"{deleted} of {len(set(item_ids))} items deleted")


def status() -> None:
    """Items stored, change events not yet applied by an incremental indexer, and the recorded schema."""
    with _store() as (store, item_schema, loop):
        stats = loop.run(store.stats())
    table = Table("what", "value")
    table.add_row("items", str(stats.items))
    table.add_row("change events kept", str(stats.stream_length))
    recorded = stats.schema or {}
    table.add_row("recorded schema", f"{recorded.get('name')} ({recorded.get('fingerprint')})")
    table.add_row("schema in effect", f"{item_schema.name} ({item_schema.fingerprint()})")
    out.print(table)


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))
