"""The demo's steps: stack, first versions, processes, first index builds, a table, a rollout under load."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import IO, Any, cast

import httpx
from pydantic import SecretStr
from redis.asyncio import Redis
from rich.console import Console
from rich.live import Live

from catalog.store import CatalogStore
from contract.items import load_schema
from contract.keys import Keys
from contract.profiles import Profile
from contract.redis_clients import async_client
from contract.replication import Replication
from contract.settings import Settings
from contract.wire import TypeInfo
from demo import observer, processes
from demo.deployment import Deployment
from demo.examples import GOODBOOKS, Example
from demo.faults import ClusterTargets, FaultLog, run_faults, services_login
from demo.layout import Layout, lockstep_command
from demo.load import LoadStats, run_load
from demo.plan import (
    FIRST_HISTORY,
    SERVING,
    IndexerPlan,
    frame_arg,
    indexer_name,
    indexer_spec,
    modes_of,
    process_names,
    service_specs,
    types_of,
)
from demo.processes import Record, Spec
from demo.quality import QualityError, TypeQuality, measure
from demo.recovery import recoveries
from demo.report import live_panel, quality_table, recommendations_table, states_table, summary_table
from demo.staleness import Change, staleness
from demo.summary import ClusterFindings, Summary, TypeRollout, summarize
from demo.verify import PartitionReport, VectorReader, check_partitions, partition_scoped, recompute, sample
from orchestrator_client import OrchestratorClient

PROFILE_SAMPLE = 2000  # users the load generator picks from
SETTLE_SECONDS = 3.0  # keep serving this long after the last type advanced


class DemoError(Exception):
    """A step could not complete; the message says which and where to look."""


@dataclass(frozen=True)
class Options:
    """Knobs of one demo run."""

    duration: float = 60.0
    concurrency: int = 8
    users: int = 3
    every: str = "5s"
    limit: int | None = None
    ready_timeout: float = 900.0
    rollout_timeout: float = 600.0
    verify_sample: int = 200
    quality_users: int = 300
    seed: int = 7


@dataclass
class Context:
    """What every step shares."""

    settings: Settings
    options: Options
    console: Console
    layout: Layout
    lockstep: list[str]
    env: dict[str, str]
    redis: Redis
    keys: Keys
    orchestrator: OrchestratorClient  # reader role
    deployment: Deployment
    example: Example = GOODBOOKS
    began: float = 0.0  # monotonic start of the run, for the step headers
    serving_env: tuple[tuple[str, str], ...] = ()  # serving's own Redis login (read-only user)


def _types(ctx: Context) -> list[str]:
    """The example's demo types, in order."""
    return list(ctx.example.types)


def _step(ctx: Context, number: int, title: str) -> None:
    elapsed = time.monotonic() - ctx.began
    ctx.console.rule(f"[bold]{number}/8 {title}[/] [dim]at {elapsed:.0f}s", align="left")


async def stack_login(ctx: Context, role: str) -> dict[str, str]:
    """The Redis login of `role` for the stack that runs (empty for a Redis without our users)."""
    try:
        return await services_login(ctx.lockstep, ctx.env, ctx.deployment.topology, role)
    except RuntimeError as exc:
        raise DemoError(str(exc)) from exc


async def log_in(ctx: Context) -> None:
    """Every later step and process logs in to the stack's Redis: the app user, serving its read-only one."""
    login = await stack_login(ctx, "app")
    if not login:
        return
    ctx.env.update(login)
    ctx.serving_env = tuple((await stack_login(ctx, "serving")).items())
    ctx.settings = ctx.settings.model_copy(
        update={
            "redis_username": login["LOCKSTEP_REDIS_USERNAME"],
            "redis_password": SecretStr(login["LOCKSTEP_REDIS_PASSWORD"]),
        }
    )
    await ctx.redis.aclose()
    ctx.redis = cast(Redis, async_client(ctx.settings))


async def _command(ctx: Context, argv: Sequence[str], what: str) -> None:
    """Run a `lockstep` command in the foreground (its progress output goes to the terminal)."""
    ctx.console.print(f"[dim]$ {' '.join(['lockstep', *argv[len(ctx.lockstep) :]])}")
    process = await asyncio.create_subprocess_exec(*argv, env=ctx.env)
    code = await process.wait()
    if code != 0:
        raise DemoError(f"{what}: `{' '.join(argv)}` exited with {code}")


# --- 1, 2: stack, versions, profiles ----------------------------------------------------------------------


async def load_catalog(ctx: Context) -> None:
    """The example's items into the catalog store (all, or the first --limit)."""
    for argv in ctx.example.catalog(ctx.layout.root, ctx.options.limit):
        await _command(ctx, [*ctx.lockstep, *argv], "loading the catalog")


async def published_counts(ctx: Context) -> dict[str, int]:
    """Published versions per demo type, read from Redis."""
    return {name: int(await ctx.redis.zcard(ctx.keys.published(name))) for name in _types(ctx)}


async def profile_sample(ctx: Context, size: int) -> list[Profile]:
    """Up to `size` stored profiles with at least 3 interactions, the first users of the profile index.

    One GET per profile, pipelined: profiles spread over a Redis Cluster's slots, where an MGET of several
    would be refused as cross-slot; the cluster client's pipeline sends each node its own keys.
    """
    users = await ctx.redis.zrange(ctx.keys.profile_users(), 0, size - 1)
    found: list[Profile] = []
    for start in range(0, len(users), 500):
        pipe = ctx.redis.pipeline(transaction=False)
        for user in users[start : start + 500]:
            pipe.get(ctx.keys.profile(user.decode() if isinstance(user, bytes) else str(user)))
        for raw in await pipe.execute():
            if raw is not None:
                profile = Profile.model_validate_json(raw)
                if len(profile.interactions) >= 3:
                    found.append(profile)
    return sorted(found, key=lambda p: p.user_id)


async def first_versions(ctx: Context) -> list[Profile]:
    """Publish a first version of each type that has none (goodbooks: trained); the load's users.

    The news example's users are its synthetic ones. goodbooks' are its stored profiles, loaded when absent
    as they stood when the first versions were trained (the first FIRST_HISTORY of each
    user's ratings): the quality step then measures on ratings neither the vectors nor the profiles hold.
    They stay so: reloading them under load would change aggregated user vectors that serving caches for
    its user-cache TTL, and the verification recomputes similarities from the profiles as they are.
    """
    counts = await published_counts(ctx)
    missing = [name for name, count in counts.items() if count == 0]
    reused = [name for name, count in counts.items() if count > 0]
    if reused:
        ctx.console.print(f"reusing published versions of {', '.join(reused)}")
    if missing:
        for argv in ctx.example.first_versions(ctx.layout.root, ctx.options.limit, missing):
            await _command(ctx, [*ctx.lockstep, *argv], "publishing the first versions")
    if ctx.example.users is not None:
        users = ctx.example.users(ctx.layout.root, ctx.options.limit)[:PROFILE_SAMPLE]
        ctx.console.print(f"{len(users)} synthetic users (a vector in every version) for the load generator")
        return users
    profiles = await profile_sample(ctx, PROFILE_SAMPLE)
    if profiles:
        ctx.console.print("reusing the user profiles in Redis")
    else:
        argv = [*ctx.lockstep, "profiles", "load", "--history", str(FIRST_HISTORY)]
        await _command(ctx, argv, "loading profiles")
        profiles = await profile_sample(ctx, PROFILE_SAMPLE)
    if not profiles:
        raise DemoError(f"no user profiles under {ctx.keys.profile('*')} after `lockstep profiles load`")
    ctx.console.print(f"{len(profiles)} users with profiles sampled for the load generator")
    return profiles


# --- 3: background processes -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def _ensure(ctx: Context, spec: Spec) -> tuple[Record, bool]:
    """The running process of `spec.name` (reused), or a freshly started one; waits until healthy.

    A process that started before Lockstep's code last changed is restarted: reusing it would demo
    the old code (and did, after a failed run left its processes up across an upgrade).
    """
    record = processes.running(ctx.layout, spec.name)
    if record is not None and processes.runs_old_code(record):
        ctx.console.print(
            f"restarting {spec.name} (pid {record.pid}): Lockstep's code changed since it started"
        )
        processes.stop(ctx.layout, spec.name)
        record = None
    reused = record is not None
    if record is None:
        if spec.health_url is not None and await _answers(spec.health_url):
            raise DemoError(
                f"{spec.name}: {spec.health_url} already answers, but not from a process this demo started "
                f"(no live pid in {ctx.layout.pid_file(spec.name)}); stop it, or point the demo elsewhere "
                "with LOCKSTEP_ORCHESTRATOR_URL / LOCKSTEP_SERVING_URL"
            )
        record = processes.start(ctx.layout, spec, ctx.env)
    if spec.health_url is not None:
        deadline = time.monotonic() + 90
        while not await _answers(spec.health_url):
            if not processes.alive(record.pid):
                raise DemoError(
                    f"{spec.name} exited; log {ctx.layout.log_file(spec.name)}:\n"
                    + processes.log_tail(ctx.layout, spec.name)
                )
            if time.monotonic() > deadline:
                raise DemoError(f"{spec.name}: {spec.health_url} not healthy after 90 s")
            await asyncio.sleep(0.3)
    return record, reused


async def start_processes(ctx: Context) -> dict[str, Record]:
    """Orchestrator, serving API and one indexer per mode, reusing those already running."""
    records: dict[str, Record] = {}
    plan = IndexerPlan(every=ctx.options.every)
    specs = service_specs(ctx.deployment, ctx.lockstep)
    orchestrators = ctx.deployment.orchestrator_urls
    for number, mode in enumerate(modes_of(ctx.example.types)):
        name = indexer_name(mode)
        existing = processes.running(ctx.layout, name)
        port = existing.port if existing is not None and existing.port else _free_port()
        # Indexers spread over the orchestrators too.
        upstream = orchestrators[number % len(orchestrators)]
        names = types_of(mode, ctx.example.types)
        specs.append(indexer_spec(ctx.lockstep, mode, names, plan, port, upstream))
    for spec in specs:
        if spec.name.startswith(SERVING):
            spec = replace(spec, env=(*spec.env, *ctx.serving_env))
        record, reused = await _ensure(ctx, spec)
        records[spec.name] = record
        verb = "reusing" if reused else "started"
        ctx.console.print(f"{verb} {spec.name} (pid {record.pid}), log {ctx.layout.log_file(spec.name)}")
    return records


def check_indexers(ctx: Context) -> None:
    """Fail with the log's tail when an indexer process has died."""
    for mode in modes_of(ctx.example.types):
        name = indexer_name(mode)
        if processes.running(ctx.layout, name) is None:
            raise DemoError(
                f"{name} is not running; log {ctx.layout.log_file(name)}:\n"
                + processes.log_tail(ctx.layout, name)
            )


# --- 4: first index builds --------------------------------------------------------------------------------


def _modes(ctx: Context) -> dict[str, str]:
    return {name: mode.value for name, mode in ctx.example.types.items()}


def _progress(info: TypeInfo | None) -> str:
    if info is None:
        return "not known to the orchestrator yet"
    return "in use" if info.in_use else f"indexing {info.latest}"


async def wait_in_use(ctx: Context) -> dict[str, TypeInfo]:
    """Wait until every type has an in_use version (the indexers' first builds)."""
    began = time.monotonic()
    with ctx.console.status("waiting for the first index builds") as status:
        while True:
            states = await observer.states(ctx.orchestrator, _types(ctx))
            if all(info is not None and info.in_use is not None for info in states.values()):
                ctx.console.print(states_table(states, _modes(ctx)))
                return {name: info for name, info in states.items() if info is not None}
            check_indexers(ctx)
            elapsed = time.monotonic() - began
            if elapsed > ctx.options.ready_timeout:
                raise DemoError(
                    f"no in_use version for every type after {ctx.options.ready_timeout:.0f} s; "
                    f"indexer logs under {ctx.layout.root}"
                )
            waiting = ", ".join(f"{name}: {_progress(info)}" for name, info in states.items())
            status.update(f"waiting for the first index builds ({elapsed:.0f}s): {waiting}")
            await asyncio.sleep(1.0)


# --- 5: a few users' recommendations ---------------------------------------------------------------------


async def show_recommendations(ctx: Context, profiles: Sequence[Profile]) -> None:
    """A table per user: the top 5 of each type."""
    chosen = sorted(profiles, key=lambda p: (-len(p.interactions), p.user_id))[: ctx.options.users]
    reader = {"Authorization": f"Bearer {ctx.settings.reader_key.get_secret_value()}"}
    async with httpx.AsyncClient(base_url=ctx.settings.serving_url, timeout=30.0, headers=reader) as client:
        for profile in chosen:
            answers: dict[str, dict[str, Any]] = {}
            for name in _types(ctx):
                response = await client.post(
                    "/v1/recommend", json={"user_id": profile.user_id, "embedding_type": name, "k": 5}
                )
                answers[name] = response.json()
            ctx.console.print(
                recommendations_table(
                    profile.user_id,
                    len(profile.interactions),
                    answers,
                    ctx.example.detail,
                    ctx.example.history,
                )
            )


# --- 6: quality through serving --------------------------------------------------------------------------


async def quality(ctx: Context, before: Mapping[str, TypeInfo]) -> list[TypeQuality]:
    """Recall on ratings the in-use versions never saw, and served top-10 against the exact top-10."""
    if not ctx.example.held_out_ratings:
        ctx.console.print(
            f"skipped for the {ctx.example.name} example: it has no ratings to hold out, and `lockstep eval "
            "--via-serving` samples its users from stored profiles, which it has none of (its users are "
            "vectors); the rollout below still recomputes every sampled similarity from Redis",
            highlight=False,
        )
        return []
    holdout = ctx.layout.root / "holdout.csv.gz"
    users = ctx.options.quality_users
    try:
        with ctx.console.status(f"{users} users per type through POST /v1/recommend"):
            found = await measure(ctx.lockstep, ctx.env, ctx.settings.serving_url, before, holdout, users)
    except QualityError as exc:
        raise DemoError(str(exc)) from exc
    ctx.console.print(quality_table(found))
    ctx.console.print(
        f"[dim]by hand: lockstep holdout {holdout} --history {FIRST_HISTORY}; "
        f"lockstep eval --via-serving {ctx.settings.serving_url} --holdout {holdout} --users {users}",
        highlight=False,
    )
    return found


# --- 7: the rollout under load ---------------------------------------------------------------------------


async def rollout(
    ctx: Context, profiles: Sequence[Profile], before: Mapping[str, TypeInfo]
) -> tuple[str, LoadStats, float, FaultLog | None]:
    """Serve a steady load while the next version of each type is trained (or its files published), then
    indexed."""
    types = _types(ctx)
    ends = {name: max((v.frame_end for v in info.published), default=None) for name, info in before.items()}
    frame = ctx.example.next_frame(ends)
    target = frame.version_id
    published = {name: len(info.published) for name, info in before.items()}
    publishing = ctx.example.next_version(ctx.layout.root, ctx.options.limit, frame, published)
    ctx.console.print(
        f"next version of every type: {target} (frame {frame_arg(frame)}); "
        f"{ctx.options.concurrency} clients call POST /v1/recommend meanwhile"
    )
    stats = LoadStats()
    stop = asyncio.Event()
    began = time.monotonic()
    load = asyncio.create_task(
        run_load(
            ctx.deployment.serving_urls,
            ctx.settings.reader_key.get_secret_value(),
            profiles,
            types,
            ctx.options.concurrency,
            stop,
            stats,
            ctx.options.seed,
            ctx.example.filters,
            ctx.example.partitions,
        )
    )
    train_log = ctx.layout.log_file("train")
    advanced_at: dict[str, float] = {}
    training = "starts shortly"
    failure: str | None = None
    trainer: asyncio.Task[str | None] | None = None
    fault_log = FaultLog() if ctx.deployment.clustered else None
    faults: asyncio.Task[None] | None = None
    lead = min(5.0, ctx.options.duration / 4)  # serve the old versions a moment before anything changes
    states: dict[str, TypeInfo | None] = dict(before)
    try:
        with (
            train_log.open("ab") as log,
            Live(console=ctx.console, refresh_per_second=4, transient=False) as live,
        ):
            while True:
                elapsed = time.monotonic() - began
                if trainer is None and elapsed >= lead:
                    commands = [[*ctx.lockstep, *argv] for argv in publishing]
                    trainer = asyncio.create_task(_in_turn(commands, ctx.env, log))
                    training_began = elapsed
                    training = f"running (log {train_log})"
                if trainer is not None and trainer.done() and training.startswith("running"):
                    refused = trainer.result()
                    if refused is not None:
                        failure = f"{refused}; see {train_log}"
                        training = "FAILED"
                    else:
                        training = f"published {target} for every type in {elapsed - training_began:.0f}s"
                states = await observer.states(ctx.orchestrator, types)
                for name, info in states.items():
                    if info is not None and info.in_use == target and name not in advanced_at:
                        advanced_at[name] = elapsed
                # Mid-rollout: the new versions are published, the indexers are indexing them.
                if fault_log is not None and faults is None and training.startswith("published"):
                    faults = asyncio.create_task(
                        run_faults(
                            fault_targets(ctx, [n for n in types if n not in advanced_at]), stats, fault_log
                        )
                    )
                live.update(
                    live_panel(
                        elapsed,
                        ctx.options.duration,
                        stats,
                        states,
                        target,
                        advanced_at,
                        training,
                        None if fault_log is None else (fault_log.error or fault_log.step),
                        ctx.example.verb,
                    )
                )
                if failure is not None:
                    break
                try:
                    check_indexers(ctx)
                except DemoError as exc:
                    failure = str(exc)
                    break
                if load.done():
                    break  # re-raised below
                everything = len(advanced_at) == len(types)
                if (
                    elapsed >= ctx.options.duration
                    and everything
                    and (fault_log is None or fault_log.done)
                    and elapsed - max(advanced_at.values()) >= SETTLE_SECONDS
                ):
                    break
                if elapsed >= ctx.options.duration + ctx.options.rollout_timeout:
                    failure = (
                        f"not every type advanced to {target} {ctx.options.rollout_timeout:.0f} s after "
                        f"the load's {ctx.options.duration:.0f} s; indexer logs under {ctx.layout.root}"
                    )
                    break
                await asyncio.sleep(1.0)
    finally:
        stop.set()
        await load
        if faults is not None and not faults.done():
            faults.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await faults
        if trainer is not None and not trainer.done():
            if failure is None:
                await trainer
            else:
                trainer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await trainer
    seconds = time.monotonic() - began
    if failure is not None:
        ctx.console.print(f"[red]{failure}")
    return target, stats, seconds, fault_log


async def _in_turn(commands: Sequence[Sequence[str]], env: Mapping[str, str], log: IO[bytes]) -> str | None:
    """Run commands one after the other, output to `log`; None when all succeed, else which one failed.

    Cancelled, it terminates the command that runs.
    """
    for argv in commands:
        process = await asyncio.create_subprocess_exec(
            *argv, env=dict(env), stdout=log, stderr=asyncio.subprocess.STDOUT
        )
        try:
            code = await process.wait()
        except asyncio.CancelledError:
            process.terminate()
            await process.wait()
            raise
        if code != 0:
            return f"`{' '.join(argv)}` exited with {code}"
    return None


def fault_targets(ctx: Context, pending: Sequence[str]) -> ClusterTargets:
    """The cluster's nodes, our indices, and the control keys of the types still rolling out first."""
    settings = ctx.settings
    ordered = [*pending, *(n for n in _types(ctx) if n not in pending)]
    return ClusterTargets(
        opensearch_urls=tuple(settings.opensearch_hosts),
        redis_ports=tuple(int(node.rsplit(":", 1)[1]) for node in settings.redis_cluster_nodes),
        index_pattern=f"{settings.index_prefix}*",
        control_keys=tuple(ctx.keys.in_use(name) for name in ordered),
        lockstep=tuple(ctx.lockstep),
        env=ctx.env,
        restart_log=ctx.layout.log_file("services-up"),
    )


# --- 8: verification -------------------------------------------------------------------------------------


async def verify(
    ctx: Context,
    before: Mapping[str, TypeInfo],
    target: str,
    stats: LoadStats,
    seconds: float,
    measured: Sequence[TypeQuality],
    fault_log: FaultLog | None,
) -> Summary:
    """Recompute a sample of similarities from Redis, check partition-scoped answers against the catalog,
    and build the summary."""
    after = await observer.states(ctx.orchestrator, _types(ctx))
    types = {name: info.type for name, info in before.items()}
    with ctx.console.status("recomputing explained similarities from the stored vectors"):
        sim = await recompute(
            VectorReader(ctx.redis, ctx.keys), types, sample(stats.outcomes, ctx.options.verify_sample)
        )
    served = Counter((o.embedding_type, o.version) for o in stats.outcomes if o.status == 200)
    rollouts: list[TypeRollout] = []
    changes: list[Change] = []
    first_publish: float | None = None  # wall clock
    for name in _types(ctx):
        info = after.get(name)
        freshness: float | None = None
        if info is not None:
            published = next((v for v in info.published if v.version == target), None)
            history = await ctx.orchestrator.in_use_history(name)
            moved = next((c for c in history if c.to_version == target), None)
            if moved is not None:
                changes.append(Change(name, before[name].in_use, target, moved.at.timestamp()))
            if published is not None:
                at = published.created_at.timestamp()
                first_publish = at if first_publish is None else min(first_publish, at)
            if published is not None and moved is not None:
                freshness = round((moved.at - published.created_at).total_seconds(), 1)
        rollouts.append(
            TypeRollout(
                type_name=name,
                mode=ctx.example.types[name].value,
                before=before[name].in_use,
                target=target,
                after=info.in_use if info is not None else None,
                freshness_seconds=freshness,
                served={str(v): n for (t, v), n in served.items() if t == name and v is not None},
            )
        )
    servers = list(ctx.deployment.serving_urls)
    cluster: ClusterFindings | None = None
    if fault_log is not None:
        cluster = ClusterFindings(
            servers=servers,
            orchestrators=list(ctx.deployment.orchestrator_urls),
            faults=list(fault_log.faults),
            fault_error=fault_log.error if fault_log.done else "the rollout ended before the faults did",
            recoveries=recoveries(stats, fault_log.faults),
            staleness=staleness(stats, changes, servers),
            staleness_bound=ctx.settings.serving_staleness_seconds
            + ctx.settings.serving_orchestrator_timeout_seconds,
        )
    partitions = await partition_report(ctx, stats) if ctx.example.partitions else None
    window = None
    if first_publish is not None and changes:
        window = (stats.since_start(first_publish), stats.since_start(max(c.at for c in changes)))
    return summarize(
        stats, seconds, ctx.options.concurrency, sim, rollouts, measured, servers, cluster, partitions, window
    )


async def partition_report(ctx: Context, stats: LoadStats) -> PartitionReport:
    """Each partition-scoped answer's items against their partition field as the catalog store holds it."""
    item_schema = load_schema(ctx.example.schema)
    field = item_schema.partition
    if field is None:
        raise DemoError(f"the {ctx.example.name} example names partitions, but its schema has no partition")
    store = CatalogStore(ctx.redis, ctx.keys, item_schema, Replication.of(ctx.settings))
    ids = sorted({i.item_id for o in partition_scoped(stats.outcomes) for i in o.items})
    docs = await store.get(ids)
    return check_partitions(stats.outcomes, {i: str(doc.get(field)) for i, doc in docs.items()})


def print_where(ctx: Context, records: Mapping[str, Record]) -> None:
    """URLs to look at, and how to stop everything."""
    serving = ctx.settings.serving_url.rstrip("/")
    orchestrator = ctx.settings.orchestrator_url.rstrip("/")
    ctx.console.rule("[bold]running", align="left")
    lines = [
        # The key rides in the fragment, which the browser never sends; the page sends it as a header.
        f"explorer page          {serving}/#key={ctx.settings.admin_keys[0].get_secret_value()}",
        f"serving API docs       {serving}/docs",
        f"orchestrator API docs  {orchestrator}/docs",
        f"metrics                {serving}/metrics  {orchestrator}/metrics",
    ]
    if ctx.deployment.clustered:
        lines.append(f"serving replicas       {'  '.join(ctx.deployment.serving_urls)}")
        lines.append(f"orchestrator replicas  {'  '.join(ctx.deployment.orchestrator_urls)}")
    for mode in modes_of(ctx.example.types):
        record = records.get(indexer_name(mode))
        if record is not None and record.port:
            lines.append(
                f"                       http://127.0.0.1:{record.port}/metrics ({indexer_name(mode)})"
            )
    lines += [
        f"logs and pid files     {ctx.layout.root}",
        f"summary (JSON)         {ctx.layout.summary_file()}",
        "stop                   make down-cluster (demo processes and the cluster); "
        "`lockstep demo down --topology cluster` (demo only)"
        if ctx.deployment.clustered
        else "stop                   make down (demo processes and the stack); "
        f"`lockstep demo down{'' if ctx.example is GOODBOOKS else f' --example {ctx.example.name}'}` "
        "(demo only)",
    ]
    for line in lines:
        ctx.console.print(line, highlight=False)


async def run(
    settings: Settings,
    options: Options,
    console: Console,
    deployment: Deployment,
    example: Example = GOODBOOKS,
) -> Summary:
    """Every step on the example's catalog (settings already have its prefixes: Example.settings); the
    summary says whether the checks passed."""
    settings = deployment.settings(settings)
    redis = cast(Redis, async_client(settings))  # a cluster client has the same commands
    orchestrator = observer.reader(settings)
    ctx = Context(
        settings=settings,
        options=options,
        console=console,
        layout=Layout.of(settings, deployment.topology),
        lockstep=lockstep_command(),
        # The demo's processes authenticate with the shipped dev-* keys, which need development mode.
        # Commands the demo runs (eval, train) talk to the first replica of each service.
        env={
            **os.environ,
            **example.env(settings),
            **deployment.env,
            "LOCKSTEP_ORCHESTRATOR_URL": settings.orchestrator_url,
            "LOCKSTEP_SERVING_URL": settings.serving_url,
            "LOCKSTEP_DEVELOPMENT": "1",
        },
        redis=redis,
        keys=Keys(settings.key_prefix),
        orchestrator=orchestrator,
        deployment=deployment,
        example=example,
        began=time.monotonic(),
    )
    ctx.layout.root.mkdir(parents=True, exist_ok=True)
    try:
        if deployment.clustered:
            _step(ctx, 1, "stack: the cluster topology (3 OpenSearch nodes, a 3+3 Redis Cluster)")
        else:
            _step(ctx, 1, "stack: OpenSearch + k-NN and Redis")
        await _command(
            ctx, [*ctx.lockstep, "services", "up", "--topology", deployment.topology], "starting the stack"
        )
        await log_in(ctx)
        _step(ctx, 2, f"the {example.name} catalog, first versions of each type, users")
        await load_catalog(ctx)
        profiles = await first_versions(ctx)
        _step(ctx, 3, "orchestrator, serving API, indexers (shadow and incremental)")
        records = await start_processes(ctx)
        _step(ctx, 4, "first index builds: every type gets an in-use version")
        before = await wait_in_use(ctx)
        _step(ctx, 5, "recommendations for a few users")
        await show_recommendations(ctx, profiles)
        _step(ctx, 6, "quality through serving: held-out ratings, exact top-10")
        measured = await quality(ctx, before)
        _step(
            ctx,
            7,
            "rolling out the next version of every type while serving"
            + (", killing a node of each cluster" if deployment.clustered else ""),
        )
        target, stats, seconds, fault_log = await rollout(ctx, profiles, before)
        _step(ctx, 8, "verification")
        summary = await verify(ctx, before, target, stats, seconds, measured, fault_log)
        ctx.layout.summary_file().write_text(json.dumps(summary.as_json(), indent=2, default=str))
        console.print(summary_table(summary))
        print_where(ctx, records)
        console.print(f"demo took {time.monotonic() - ctx.began:.0f} s", highlight=False)
        return summary
    finally:
        await orchestrator.aclose()
        await ctx.redis.aclose()


def stop_processes(settings: Settings, deployment: Deployment, example: Example = GOODBOOKS) -> list[str]:
    """Stop the demo's background processes (indexers first, the orchestrators last); `settings` with the
    example's prefixes (Example.settings)."""
    layout = Layout.of(settings, deployment.topology)
    return processes.stop_all(layout, list(reversed(process_names(deployment, example.types))))
