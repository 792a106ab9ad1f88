"""`lockstep train` and the offline `lockstep eval`: our three model families on the goodbooks ratings."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from contract.keys import Keys
from contract.redis_clients import SyncRedis
from contract.replication import UNCONFIRMED, Replication
from contract.settings import Settings
from contract.versions import Frame
from training import registry
from training.console import clean_errors, err, out, progress_bar, redis_session
from training.data import Goodbooks, Ratings, load_goodbooks
from training.evaluation import BASELINE_NAME, Report, evaluate
from training.models.embeddings import Embeddings, Vectors
from training.models.specs import SPECS, ModelSpec
from training.publish import PublishResult, VectorSet, publish, read_manifest
from training.published import load_embeddings, published_manifest
from training.split import (
    EPOCH,
    SPAN,
    cadence,
    describe,
    fraction_of,
    frame_for,
    holdout_split,
    leave_last_out,
    read_holdout,
    unseen_after,
    window,
    write_holdout,
)

_FRAMES_HELP = (
    f"goodbooks has no timestamps, only per-user row order, so frames are synthetic: each user's "
    f"ratings are spread evenly over {EPOCH.date()} .. {(EPOCH + SPAN).date()} ({SPAN.days} days). "
    f"A frame START..END trains on each user's ratings from share (START - {EPOCH.date()}) / {SPAN.days}d "
    f"to share (END - {EPOCH.date()}) / {SPAN.days}d, e.g. {frame_for(0, 0.8).start.date()}.."
    f"{frame_for(0, 0.8).end.date()} = the first 80%; --history 0.8 derives exactly that frame. "
    "Without either, --versions N publishes N versions with histories 100-10(N-1)%, ..., 90%, 100%."
)


def register(app: typer.Typer) -> None:
    """Add `train` and `holdout` (`eval`, which can also run through serving, is cli.evaluate's)."""
    app.command("train", help=f"Train and publish versions of our embedding types.\n\n{_FRAMES_HELP}")(train)
    app.command("holdout")(holdout)


def _data(path: Path | None) -> Goodbooks:
    return load_goodbooks(path or Settings().data_dir)  # env-driven


def _specs(names: list[str], everything: bool) -> list[ModelSpec]:
    if everything or not names:
        return list(SPECS.values())
    unknown = [name for name in names if name not in SPECS]
    if unknown:
        raise ValueError(f"--type: unknown type {', '.join(unknown)}; ours are {', '.join(SPECS)}")
    return [SPECS[name] for name in names]


def _frames(frame: str | None, history: float | None, versions: int) -> list[Frame]:
    if frame is not None and history is not None:
        raise ValueError("give --frame or --history, not both")
    if (frame is not None or history is not None) and versions != 1:
        raise ValueError("--versions applies only without --frame/--history")
    if frame is not None:
        parsed = Frame.parse(frame)
        if fraction_of(parsed.end) <= fraction_of(parsed.start):
            raise ValueError(
                f"--frame {frame} holds no history: it must overlap {EPOCH.date()}..{(EPOCH + SPAN).date()}"
            )
        return [parsed]
    if history is not None:
        return [frame_for(0.0, history)]
    return [frame_for(0.0, share) for share in cadence(versions)]


def _vector_set(vectors: Vectors | None) -> VectorSet | None:
    return None if vectors is None else VectorSet(vectors.ids, vectors.matrix)


def train_version(
    client: SyncRedis,
    keys: Keys,
    spec: ModelSpec,
    data: Goodbooks,
    frame: Frame,
    replication: Replication = UNCONFIRMED,
) -> tuple[Embeddings, PublishResult]:
    """Train `spec` on the frame's window of the ratings and publish it (registering the type first)."""
    registry.register_type(client, keys, spec.etype)
    history = window(data.ratings, frame)
    if len(history) == 0:
        raise ValueError(f"frame {describe(frame)} holds no ratings")
    with err.status(f"training {spec.etype.name} on {describe(frame)}: {len(history):,} ratings"):
        embeddings = spec.train(data, history)
    trainer = {
        **embeddings.params,
        "trainer": "lockstep train",
        "data": "goodbooks-10k subset",
        "ratings": str(len(history)),
        "history": describe(frame),
    }
    with progress_bar() as bar:
        task = bar.add_task(f"publishing {spec.etype.name} {frame.version_id}", total=None)
        result = publish(
            client,
            keys,
            spec.etype,
            frame,
            users=_vector_set(embeddings.users),
            items=_vector_set(embeddings.items),
            attributes=_vector_set(embeddings.attributes),
            trainer=trainer,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            replication=replication,
        )
    return embeddings, result


def train(
    type_names: list[str] = typer.Option(
        [], "--type", help=f"Type to train; repeatable. Ours: {', '.join(SPECS)}."
    ),
    everything: bool = typer.Option(False, "--all", help="Train every type."),
    frame: str | None = typer.Option(None, help="Training frame START..END (see the mapping above)."),
    history: float | None = typer.Option(
        None, min=0.01, max=1.0, help="Share of each user's history to train on; derives the frame."
    ),
    versions: int = typer.Option(1, min=1, max=6, help="Successive versions to publish (cadence)."),
    data_dir: Path | None = typer.Option(
        None, "--data", help="goodbooks directory (default: settings.data_dir)."
    ),
) -> None:
    """Train and publish; a version already published is skipped (versions are immutable)."""
    with clean_errors():
        if not type_names and not everything:
            raise ValueError("give --type NAME (repeatable) or --all")
        specs = _specs(type_names, everything)
        frames = _frames(frame, history, versions)
        data = _data(data_dir)
        with redis_session() as (settings, client, keys):
            for chosen in frames:
                for spec in specs:
                    existing = read_manifest(client, keys, spec.etype.name, chosen.version_id)
                    if existing is not None:
                        out.print(
                            f"{spec.etype.name} {chosen.version_id}: already published (seq {existing.seq})"
                        )
                        continue
                    started = time.perf_counter()
                    _, result = train_version(client, keys, spec, data, chosen, Replication.of(settings))
                    m = result.manifest
                    out.print(
                        f"published {m.type_name} {m.version} seq {m.seq} [{describe(chosen)}]: "
                        f"{m.counts.user} users, {m.counts.item} items, {m.counts.attr} attributes "
                        f"in {time.perf_counter() - started:.1f}s"
                    )


def evaluate_offline(
    type_names: list[str],
    holdout: Path | None,
    as_json: bool,
    chart: Path | None,
    all_books: bool,
    data_dir: Path | None,
    published: bool = False,
    version: str | None = None,
) -> None:
    """Train each type on the split's history in memory (same code as `train`) and score top-10 lists.

    With `published`, score the vectors of a published version as stored in Redis instead (the newest, or
    `version`), so embeddings another team trained are evaluated the same way.
    Metrics, mean over test users, exclude-seen: recall@10 = hits / min(test items, 10), binary nDCG@10,
    MAP@10, and coverage = share of the type's candidate books shown to anyone.
    """
    with clean_errors():
        if version is not None and (not published or len(type_names) != 1):
            raise ValueError("--version: give it with --published and exactly one --type")
        data = _data(data_dir)
        split = (
            holdout_split(data.ratings, read_holdout(holdout)) if holdout else leave_last_out(data.ratings)
        )
        catalog = None if all_books else np.unique(data.ratings.book_ids)
        if published:
            trainers = _published_trainers(type_names, version)
            if holdout is None:
                err.print(
                    "note: the test items are each user's last 2 ratings, which a published version may have "
                    "been trained on (inflating its figures); --holdout takes pairs it was not trained on"
                )
        else:
            trainers = {
                spec.etype.name: _trainer(spec, data) for spec in _specs(type_names, everything=False)
            }
        started = time.perf_counter()
        with err.status("evaluating") as status:
            report = evaluate(
                split, trainers, catalog=catalog, progress=lambda name: status.update(f"scoring {name}")
            )
        elapsed = time.perf_counter() - started
        if chart is not None:
            # matplotlib takes seconds to import: only `eval --chart` pays for it.
            from training.chart import write_chart

            write_chart(
                report, chart, title=f"goodbooks, {'holdout ' + holdout.name if holdout else 'last-2 split'}"
            )
        if as_json:
            out.print_json(json.dumps(report.as_json()))
        else:
            out.print(
                _table(report, f"{len(split.history):,} history ratings, {len(split.test):,} test pairs")
            )
            best = max(report.types.values(), key=lambda m: m.recall, default=None)
            if best is not None and report.baseline.recall > 0:
                out.print(f"best recall@{report.k} = {best.recall / report.baseline.recall:.2f}x popularity")
        err.print(f"evaluated in {elapsed:.1f}s" + (f"; chart written to {chart}" if chart else ""))


def _trainer(spec: ModelSpec, data: Goodbooks) -> Callable[[Ratings], Embeddings]:
    return lambda history: spec.train(data, history)


def _stored(embeddings: Embeddings) -> Callable[[Ratings], Embeddings]:
    return lambda _history: embeddings


def _published_trainers(
    type_names: list[str], version: str | None
) -> dict[str, Callable[[Ratings], Embeddings]]:
    """'type version' -> the stored vectors (whatever the split's history: they were trained elsewhere)."""
    trainers: dict[str, Callable[[Ratings], Embeddings]] = {}
    with redis_session() as (_, client, keys):
        names = type_names or [etype.name for etype in registry.list_types(client, keys)]
        for name in names:
            registry.get_type(client, keys, name)  # an unregistered type: its own clear error
            manifest = published_manifest(client, keys, name, version)
            with err.status(f"reading {name} {manifest.version} from Redis"):
                embeddings = load_embeddings(client, keys, manifest)
            if embeddings.items is None:
                raise ValueError(f"--type: {name} {manifest.version} has no item vectors to rank")
            trainers[f"{name} {manifest.version}"] = _stored(embeddings)
    if not trainers:
        raise ValueError("--published: no embedding type is registered")
    return trainers


def _table(report: Report, caption: str) -> Table:
    k = report.k
    table = Table("type", f"recall@{k}", f"nDCG@{k}", f"MAP@{k}", "coverage", "users", caption=caption)
    rows = [*report.types.items(), (BASELINE_NAME, report.baseline)]
    for name, m in rows:
        table.add_row(
            name, f"{m.recall:.4f}", f"{m.ndcg:.4f}", f"{m.map:.4f}", f"{m.coverage:.3f}", str(m.users)
        )
    return table


def holdout(
    path: Path = typer.Argument(..., help="CSV to write: user_id,book_id (gzipped when it ends in .gz)."),
    history: float = typer.Option(
        ..., min=0.01, max=0.99, help="The --history share the versions to evaluate were trained with."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data", help="goodbooks directory (default: settings.data_dir)."
    ),
) -> None:
    """Write the ratings after the first --history share of each user's: a holdout for `lockstep eval`.

    A version trained with `lockstep train --history SHARE` (or on any frame ending by then) never saw these
    pairs, so `lockstep eval --holdout PATH` (offline, --published or --via-serving) measures it on them.
    """
    with clean_errors():
        if not path.parent.is_dir():
            raise ValueError(f"path: no directory {path.parent} to write {path.name} in")
        pairs = unseen_after(_data(data_dir).ratings, history)
        if len(pairs) == 0:
            raise ValueError(f"--history {history}: no user has a rating after that share of their history")
        write_holdout(path, pairs)
        users = len(np.unique(pairs.user_ids))
        trained = describe(frame_for(0.0, history))
        out.print(
            f"wrote {len(pairs):,} ratings of {users:,} users to {path}: each user's ratings after the first "
            f"{history:.0%} of their history, unseen by versions trained on frame {trained}"
        )
