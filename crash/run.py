"""One crash run: its own stack, the processes, load, publishing and rollbacks, SIGKILLs on a schedule,
then the final state read from Redis and the history checked."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from collections.abc import Mapping

from rich.console import Console

from crash import data, history
from crash.checker import Report, check
from crash.context import READER, Crash, CrashError, Options, Victim, pause
from crash.final import indexer_acks, record_final
from crash.history import History
from crash.killer import kill_loop, settle, supervise
from crash.kinds import INDEXERS, PROCESSES
from crash.stack import FOREIGN, CrashStack
from crash.startup import (
    first_version,
    free_port,
    load_catalog,
    register_types,
    start_process,
    wait_in_use,
    wipe,
)
from crash.watchers import watch_indexers, watch_recovery
from crash.workload import drain_load, observe, publish, roll_back
from demo import processes
from demo.deployment import Deployment
from demo.faults import services_login, services_up
from demo.layout import Layout, lockstep_command
from demo.load import LoadStats, run_load
from demo.plan import IndexerPlan, indexer_name, indexer_spec, service_specs

# Knobs of the processes under test: a quick poll and indexer cadence, an indexer lock that a killed
# indexer's successor can take soon, a short slot grace (versions come every few seconds), and no result
# cache, so a request after a kill goes to the dependencies instead of being answered from memory.
PROCESS_KNOBS: Mapping[str, str] = {
    "LOCKSTEP_ORCHESTRATOR_POLL_SECONDS": "1",
    "LOCKSTEP_INDEXER_LOCK_SECONDS": "6",
    "LOCKSTEP_SLOT_GRACE_SECONDS": "3",
    "LOCKSTEP_SERVING_RESULT_CACHE_SECONDS": "0",
    "LOCKSTEP_DEVELOPMENT": "1",
}


def _environment(stack: CrashStack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN}
    return {**env, **stack.env(), **PROCESS_KNOBS}


async def run(options: Options, console: Console) -> Report:
    """The whole run; the checker's report (the history is at options.history)."""
    stack = options.stack
    layout = Layout(stack.state_dir / "crash-run")
    names = ["orchestrator", "serving", *INDEXERS]
    processes.stop_all(layout, list(reversed(names)))  # a previous run's, if it was itself killed
    shutil.rmtree(layout.root, ignore_errors=True)
    layout.root.mkdir(parents=True)
    orchestrator_url = f"http://127.0.0.1:{free_port()}"
    serving_url = f"http://127.0.0.1:{free_port()}"
    lockstep = lockstep_command()
    deployment = Deployment("single", (orchestrator_url,), (serving_url,))
    plan = IndexerPlan(every="2s")
    specs = {spec.name: spec for spec in service_specs(deployment, lockstep)}
    for mode in sorted(set(data.TYPE_MODES.values()), key=lambda m: m.value):
        types = [n for n, m in data.TYPE_MODES.items() if m is mode]
        specs[indexer_name(mode)] = indexer_spec(lockstep, mode, types, plan, free_port(), orchestrator_url)
    crash = Crash(
        options=options,
        console=console,
        history=History(options.history),
        env={**_environment(stack), "LOCKSTEP_ORCHESTRATOR_URL": orchestrator_url},
        layout=layout,
        lockstep=lockstep,
        specs=specs,
        orchestrator_url=orchestrator_url,
        serving_url=serving_url,
        rng=random.Random(options.seed),
        victims={name: Victim(name) for name in PROCESSES},
    )
    try:
        crash.say(
            f"starting the crasher's stack (OpenSearch :{stack.opensearch_port}, Redis :{stack.redis_port}, "
            f"state {stack.state_dir})"
        )
        if not await services_up(lockstep, crash.env, "single", layout.log_file("services")):
            raise CrashError(f"`lockstep services up` failed; see {layout.log_file('services')}")
        # Our Redis has a user per role: every command and process of the run logs in as the app user.
        crash.env.update(await services_login(lockstep, crash.env, "single", "app"))
        await wipe(stack, crash.env)
        crash.say("registering the types, publishing their first versions, starting the processes")
        await load_catalog(crash)
        await register_types(crash)
        await asyncio.gather(*(first_version(crash, name) for name in data.TYPE_MODES))
        await asyncio.gather(*(start_process(crash, name) for name in names))
        await wait_in_use(crash)
        return await _chaos(crash)
    finally:
        crash.history.close()
        processes.stop_all(layout, list(reversed(names)))
        if not options.keep_stack:
            await _stack_down(crash)


async def _stack_down(crash: Crash) -> None:
    process = await asyncio.create_subprocess_exec(
        *crash.lockstep,
        "services",
        "down",
        "--topology",
        "single",
        env=crash.env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await process.wait()


async def _chaos(crash: Crash) -> Report:
    options = crash.options
    crash.history.write(
        history.RUN,
        phase="started",
        seconds=options.seconds,
        kill_every=options.kill_every,
        types={name: mode.value for name, mode in data.TYPE_MODES.items()},
        orchestrator=crash.orchestrator_url,
        serving=crash.serving_url,
    )
    crash.say(
        f"chaos for {options.seconds:.0f} s, a SIGKILL every {options.kill_every:.0f} s; "
        f"history {options.history}"
    )
    stats = LoadStats()
    stop_load = asyncio.Event()
    restarts: list[asyncio.Task[None]] = []
    load = asyncio.create_task(
        run_load(
            (crash.serving_url,),
            READER,
            data.profiles(),
            list(data.TYPE_MODES),
            options.concurrency,
            stop_load,
            stats,
            options.seed,
        )
    )
    watchers = [
        asyncio.create_task(task)
        for task in (
            drain_load(crash, stats),
            observe(crash),
            watch_indexers(crash),
            watch_recovery(crash),
            supervise(crash, restarts),
        )
    ]
    publishers = [publish(crash, name) for name in data.TYPE_MODES]
    chaos = [
        asyncio.create_task(task) for task in (*publishers, roll_back(crash), kill_loop(crash, restarts))
    ]
    try:
        await pause(crash.stop_all, options.seconds)
        crash.stop_chaos.set()
        await asyncio.gather(*chaos)
        crash.say("no more kills: waiting for every killed process to run again and recover")
        await settle(crash, restarts)
    finally:
        crash.stop_chaos.set()
        stop_load.set()
        await load
        crash.stop_all.set()
        await asyncio.gather(*watchers, return_exceptions=True)
        for task in [*chaos, *restarts]:
            task.cancel()
        await asyncio.gather(*chaos, *restarts, return_exceptions=True)
    indexer_acks(crash)
    await record_final(crash)
    crash.history.write(history.RUN, phase="ended")
    return check(history.read(options.history))
