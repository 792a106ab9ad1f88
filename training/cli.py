"""`lockstep types | publish | versions | profiles` (and the model commands, when present)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from contract.keys import Kind
from contract.replication import Replication
from contract.types import EmbeddingType, Encoder, Family, IndexParams, Similarity
from contract.versions import Frame
from training import commands_models, profiles, registry, retention
from training.console import clean_errors, out, progress_bar, redis_session
from training.publish import VectorSet, publish
from training.vector_files import FORMATS, read_vectors


def register(app: typer.Typer) -> None:
    """Add the training process's commands to the `lockstep` app."""
    types_app = typer.Typer(help="Register and list embedding types.", no_args_is_help=True)
    types_app.command("register")(types_register)
    types_app.command("list")(types_list)
    app.add_typer(types_app, name="types")

    app.command("publish", help=f"Publish a version from vector files.\n\nFormats:\n\n{FORMATS}")(
        publish_files
    )

    versions_app = typer.Typer(
        help="List, check, garbage-collect and delete published versions.", no_args_is_help=True
    )
    versions_app.command("list")(versions_list)
    versions_app.command("check")(versions_check)
    versions_app.command("gc")(versions_gc)
    versions_app.command("delete")(versions_delete)
    app.add_typer(versions_app, name="versions")

    profiles_app = typer.Typer(help="User profiles (recent interactions) in Redis.", no_args_is_help=True)
    profiles_app.command("load")(profiles_load)
    app.add_typer(profiles_app, name="profiles")

    commands_models.register(app)


def types_register(
    name: str = typer.Option(..., help="Type name, e.g. als-d64-reg0.05."),
    family: Family = typer.Option(..., help="How users and items get their vectors."),
    dim: int = typer.Option(..., help="Vector dimension."),
    similarity: Similarity = typer.Option(..., help="The model's similarity."),
    namespace: list[str] = typer.Option([], help="Attribute namespace (indirect families); repeatable."),
    description: str = typer.Option("", help="Free text."),
    m: int | None = typer.Option(None, help="HNSW graph degree of this type's index (default: hnsw_m)."),
    ef_construction: int | None = typer.Option(
        None, help="HNSW build beam width of this type's index (default: hnsw_ef_construction)."
    ),
    ef_search: int | None = typer.Option(
        None, help="HNSW beam width of serving and the recall gate for this type (default serving_ef_search)."
    ),
    encoder: Encoder = typer.Option(Encoder.FLOAT, help="float, or lucene scalar quantization (sq7, sq1)."),
    candidates: int | None = typer.Option(
        None, help="HNSW candidates per query, re-scored exactly when quantized (default: 100)."
    ),
    confidence_interval: float | None = typer.Option(
        None,
        help="Quantized encoders: 0 (dynamic, per segment) or 0.9-1.0 (default: lucene's, 1 - 1/(dim + 1)).",
    ),
) -> None:
    """Register an embedding type (the same definition again is a no-op)."""
    with clean_errors():
        etype = EmbeddingType(
            name=name,
            family=family,
            dim=dim,
            similarity=similarity,
            attribute_namespaces=tuple(namespace),
            description=description,
            index=IndexParams(
                m=m,
                ef_construction=ef_construction,
                ef_search=ef_search,
                encoder=encoder,
                candidates=candidates,
                confidence_interval=confidence_interval,
            ),
        )
        with redis_session() as (_, client, keys):
            registry.register_type(client, keys, etype)
        out.print(
            f"registered {etype.name} ({etype.family.value}, dim {etype.dim}, {etype.similarity.value})"
        )


def types_list() -> None:
    """List registered types with their latest and in-use versions."""
    with clean_errors(), redis_session() as (_, client, keys):
        table = Table("type", "family", "dim", "similarity", "namespaces", "versions", "latest", "in use")
        for etype in registry.list_types(client, keys):
            versions = retention.list_versions(client, keys, etype.name)
            in_use = client.get(keys.in_use(etype.name))
            table.add_row(
                etype.name,
                etype.family.value,
                str(etype.dim),
                etype.similarity.value,
                ", ".join(etype.attribute_namespaces),
                str(len(versions)),
                versions[-1].version if versions else "-",
                in_use.decode() if isinstance(in_use, bytes) else "-",
            )
        out.print(table)


def publish_files(
    type_name: str = typer.Option(..., "--type", help="Registered type name."),
    frame: str = typer.Option(..., help="Training frame START..END (ISO dates or datetimes, UTC)."),
    users: Path | None = typer.Option(None, help="User vectors file."),
    items: Path | None = typer.Option(None, help="Item vectors file."),
    attributes: Path | None = typer.Option(None, help="Attribute vectors file (ids 'namespace:id')."),
    trainer: list[str] = typer.Option([], help="Trainer info KEY=VALUE; repeatable."),
    chunk_size: int = typer.Option(2000, min=1, help="Vectors per pipelined write."),
) -> None:
    """Publish one version: everything is validated before anything is written, the manifest last."""
    with clean_errors():
        parsed_frame = Frame.parse(frame)
        info = dict(_key_value(pair) for pair in trainer)
        files = {Kind.USER: users, Kind.ITEM: items, Kind.ATTRIBUTE: attributes}
        sets: dict[Kind, VectorSet] = {
            kind: read_vectors(path) for kind, path in files.items() if path is not None
        }
        with redis_session() as (settings, client, keys):
            etype = registry.get_type(client, keys, type_name)
            with progress_bar() as bar:
                task = bar.add_task(f"publishing {etype.name} {parsed_frame.version_id}", total=None)
                result = publish(
                    client,
                    keys,
                    etype,
                    parsed_frame,
                    users=sets.get(Kind.USER),
                    items=sets.get(Kind.ITEM),
                    attributes=sets.get(Kind.ATTRIBUTE),
                    trainer=info,
                    chunk_size=chunk_size,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                    replication=Replication.of(settings),
                )
        m = result.manifest
        verb = "published" if result.created else "already published with identical content (no-op):"
        out.print(
            f"{verb} {m.type_name} {m.version} seq {m.seq}: {m.counts.user} users, {m.counts.item} items, "
            f"{m.counts.attr} attributes, checksum {m.checksum[:16]}"
        )


def versions_list(type_name: str | None = typer.Option(None, "--type", help="Only this type.")) -> None:
    """List published versions, oldest first, marking latest, in use and indexed."""
    with clean_errors(), redis_session() as (_, client, keys):
        names = [type_name] if type_name else [t.name for t in registry.list_types(client, keys)]
        table = _table("type", "version", "seq", "users", "items", "attributes", "created", "state")
        for name in names:
            registry.get_type(client, keys, name)
            versions = retention.list_versions(client, keys, name)
            in_use = client.get(keys.in_use(name))
            indexed = set(client.hkeys(keys.indexed(name)))
            for position, m in enumerate(versions):
                state = [
                    label
                    for label, on in (
                        ("latest", position == len(versions) - 1),
                        ("in use", in_use == m.version.encode()),
                        ("indexed", m.version.encode() in indexed),
                    )
                    if on
                ]
                table.add_row(
                    name,
                    m.version,
                    str(m.seq),
                    str(m.counts.user),
                    str(m.counts.item),
                    str(m.counts.attr),
                    m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    ", ".join(state),
                )
        out.print(table)


def versions_check(
    type_name: str | None = typer.Option(None, "--type", help="Only this type."),
    delete: bool = typer.Option(False, "--delete", help="Delete the unreadable versions (not one in use)."),
) -> None:
    """Find published versions whose manifest does not match the contract (an older Lockstep wrote them).

    They serve nobody (the orchestrator skips them and counts them in
    lockstep_orchestrator_unreadable_manifests); exits 1 while any is left.
    """
    with clean_errors(), redis_session() as (settings, client, keys):
        names = [type_name] if type_name else [t.name for t in registry.list_types(client, keys)]
        table = _table("type", "version", "problem", "action")
        left = 0
        for name in names:
            registry.get_type(client, keys, name)
            for version, why in retention.unreadable_versions(client, keys, name).items():
                action = "none (--delete removes it)"
                if delete:
                    try:
                        retention.delete_version(client, keys, name, version, Replication.of(settings))
                        action = "deleted"
                    except retention.VersionInUse as exc:
                        action = f"kept: {exc}"
                left += action != "deleted"
                table.add_row(name, version, why, action)
        out.print(table if table.row_count else "every published manifest matches the contract")
        if left:
            raise typer.Exit(1)


def versions_gc(
    keep: int = typer.Option(
        ..., min=1, help="Keep this many newest versions per type (plus in use/indexed)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be deleted."),
    type_name: str | None = typer.Option(None, "--type", help="Only this type."),
) -> None:
    """Delete old versions; never the in-use one nor an indexed one (a rollback target)."""
    with clean_errors(), redis_session() as (settings, client, keys):
        plans = retention.gc(
            client, keys, keep, type_name=type_name, dry_run=dry_run, replication=Replication.of(settings)
        )
        table = _table("type", "version", "action")
        for plan in plans:
            for version, why in plan.keep:
                table.add_row(plan.type_name, version, f"keep: {why}")
            for version in plan.delete:
                table.add_row(plan.type_name, version, "would delete" if dry_run else "deleted")
        out.print(table)


def versions_delete(
    type_name: str = typer.Option(..., "--type", help="Type name."),
    version: str = typer.Option(..., help="Version id."),
) -> None:
    """Delete one version (refused while it is in use)."""
    with clean_errors(), redis_session() as (settings, client, keys):
        retention.delete_version(client, keys, type_name, version, Replication.of(settings))
        out.print(f"deleted {type_name} {version}")


def profiles_load(
    ratings: Path | None = typer.Option(
        None, help="Ratings CSV(.gz); default: ratings.csv.gz in LOCKSTEP_DATA_DIR."
    ),
    max_per_user: int = typer.Option(50, min=1, help="Keep each user's most recent interactions."),
    history: float = typer.Option(
        1.0,
        min=0.01,
        max=1.0,
        help="Only the first share of each user's ratings, as `train --history` cuts them (e.g. 0.9 leaves "
        "out what `lockstep holdout --history 0.9` holds out).",
    ),
    replace: bool = typer.Option(
        False,
        "--replace",
        help="Afterwards delete the stored profiles of users this load has none for (e.g. users whose "
        "every rating is past the --history share), so the stored profiles are exactly this load's.",
    ),
) -> None:
    """Write each user's recent interactions (weight = rating) to Redis."""
    with clean_errors(), redis_session() as (settings, client, keys):
        path = ratings if ratings is not None else settings.data_dir / "ratings.csv.gz"
        with progress_bar() as bar:
            task = bar.add_task("writing profiles", total=None)
            written = profiles.write_profiles(
                client,
                keys,
                profiles.profiles_from_ratings(path, max_per_user, history),
                progress=lambda done: bar.update(task, completed=done),
            )
        share = "" if history == 1.0 else f", the first {history:.0%} of each user's ratings"
        out.print(
            f"wrote {len(written)} profiles from {path} (at most {max_per_user} interactions each{share})"
        )
        if replace:
            removed = profiles.remove_profiles_except(client, keys, written)
            out.print(f"deleted {removed} profiles of users this load has none for")


def _table(*columns: str) -> Table:
    # Type names and version ids are copied into other commands: never cut or wrap them.
    table = Table()
    for name in columns:
        whole = name in ("type", "version")
        table.add_column(name, no_wrap=whole, min_width=33 if name == "version" else None)
    return table


def _key_value(pair: str) -> tuple[str, str]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise ValueError(f"--trainer {pair!r} must look like KEY=VALUE")
    return key, value
