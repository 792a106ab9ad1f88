"""The kills: which kind when, SIGKILL and restart, a supervisor for processes that exit by themselves,
and the wait for every recovery at the end."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from functools import partial

from crash import history
from crash.context import Crash, CrashError, pause
from crash.kinds import INDEXERS, OPENSEARCH, PROCESSES, REDIS, compatible
from crash.stack import listening_pid
from crash.startup import start_process
from demo import processes
from demo.faults import kill, services_up


def _down(crash: Crash) -> set[str]:
    """Kinds killed (or exited) and not recovered or not restarted yet."""
    return {v.name for v in crash.victims.values() if v.restarting or v.killed_at is not None}


def next_victim(crash: Crash) -> str | None:
    """A kind to kill now: one of those killed least so far (so every kind is killed once before any is
    killed twice), at random, among those compatible with what is down; None: wait."""
    down = _down(crash)
    fewest = min(v.kills for v in crash.victims.values())
    candidates = [
        name
        for name in PROCESSES
        if crash.victims[name].kills == fewest and name not in down and compatible(name, down)
    ]
    return crash.rng.choice(candidates) if candidates else None


async def _kill_one(crash: Crash, name: str) -> Callable[[], Awaitable[int]] | None:
    """SIGKILL the process of `name`; the coroutine that starts it again (None: it was not running)."""
    victim = crash.victims[name]
    if name in (REDIS, OPENSEARCH):
        port = crash.options.stack.port_of(name)
        pid = listening_pid(port)
        if pid is None:
            return None
        at = kill(pid)

        async def restart() -> int:
            if not await services_up(crash.lockstep, crash.env, "single", crash.layout.log_file("services")):
                raise CrashError(f"`lockstep services up` failed; see {crash.layout.log_file('services')}")
            return listening_pid(port) or 0

    else:
        record = processes.running(crash.layout, name)
        if record is None:
            return None
        pid = record.pid
        processes.kill(pid)
        at = time.time()

        async def restart() -> int:
            return await start_process(crash, name)

    victim.kills += 1
    victim.killed_at = at
    victim.restarting = True
    victim.scan = len(crash.history.events)
    if name in INDEXERS:
        crash.cycles[name] = 0.0  # its successor counts from zero
    crash.history.write(history.KILL, at, process=name, pid=pid)
    crash.say(f"SIGKILL {name} (pid {pid})")
    return restart


async def bring_back(crash: Crash, name: str, restart: Callable[[], Awaitable[int]]) -> None:
    """Run `restart` (the caller marked the victim restarting, before anything else could look)."""
    victim = crash.victims[name]
    try:
        pid = await restart()
        crash.history.write(history.RESTART, process=name, pid=pid)
        crash.say(f"{name} running again (pid {pid})")
    finally:
        victim.restarting = False


async def kill_loop(crash: Crash, restarts: list[asyncio.Task[None]]) -> None:
    """A SIGKILL every kill_every seconds, or as soon after as a kind may be killed (see next_victim)."""
    while not crash.stop_chaos.is_set():
        await pause(crash.stop_chaos, crash.options.kill_every)
        name = None
        while name is None and not crash.stop_chaos.is_set():
            name = next_victim(crash)
            if name is None:
                await pause(crash.stop_chaos, 0.5)
        if name is None or crash.stop_chaos.is_set():
            return  # the chaos ended during the pause: no kill after it
        restart = await _kill_one(crash, name)
        if restart is not None:
            restarts.append(asyncio.create_task(bring_back(crash, name, restart)))


async def supervise(crash: Crash, restarts: list[asyncio.Task[None]]) -> None:
    """Start again a process of ours that exited by itself, as a supervisor would (one started while
    Redis was down may exit at once)."""
    while not crash.stop_all.is_set():
        for name in crash.specs:
            if crash.victims[name].restarting or processes.running(crash.layout, name) is not None:
                continue
            crash.victims[name].restarting = True
            crash.history.write(history.EXITED, process=name)
            crash.say(f"{name} exited by itself: starting it again")
            restarts.append(asyncio.create_task(bring_back(crash, name, partial(start_process, crash, name))))
        await pause(crash.stop_all, 1.0)


async def settle(crash: Crash, restarts: list[asyncio.Task[None]]) -> None:
    """Until every killed process runs again and has recovered (or recover_timeout)."""
    deadline = time.monotonic() + crash.options.recover_timeout
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*restarts, return_exceptions=True), crash.options.recover_timeout
        )
    while any(v.killed_at is not None for v in crash.victims.values()) and time.monotonic() < deadline:
        await pause(crash.stop_all, 0.5)  # the recovery watcher clears killed_at
