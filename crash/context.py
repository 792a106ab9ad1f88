"""Options, the state every task of a run shares, and the small steps they all use."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from contract.settings import DEV_ADMIN_KEYS, DEV_READER_KEYS
from crash.history import History
from crash.stack import CrashStack
from demo.layout import Layout
from demo.processes import Spec

POLL_SECONDS = 0.5  # the observer's and the indexer watcher's period
COMMAND_TIMEOUT = 120.0  # a `lockstep publish` or `types register` that hangs counts as failed
READER = DEV_READER_KEYS[0]
ADMIN = DEV_ADMIN_KEYS[0]


class CrashError(Exception):
    """The run could not start (stack, processes, first versions); the message says where to look."""


@dataclass(frozen=True)
class Options:
    """Knobs of one crash run."""

    seconds: float
    history: Path
    stack: CrashStack
    kill_every: float = 8.0
    publish_pause: float = 2.0
    rollback_every: float = 20.0
    concurrency: int = 4
    recover_timeout: float = 180.0
    seed: int = 1
    keep_stack: bool = False


@dataclass
class Victim:
    """What the killer knows of one process kind."""

    name: str
    kills: int = 0
    restarting: bool = False
    killed_at: float | None = None  # the last kill not recovered from yet
    scan: int = 0  # history events already scanned for its recovery


@dataclass
class Crash:
    """Everything the run's tasks share."""

    options: Options
    console: Console
    history: History
    env: dict[str, str]
    layout: Layout
    lockstep: list[str]
    specs: dict[str, Spec]
    orchestrator_url: str
    serving_url: str
    rng: random.Random
    victims: dict[str, Victim] = field(default_factory=dict)
    in_use: dict[str, str | None] = field(default_factory=dict)  # the last observed
    cycles: dict[str, float] = field(default_factory=dict)  # each indexer's completed cycles, last read
    stop_chaos: asyncio.Event = field(default_factory=asyncio.Event)  # no more kills, publishes, rollbacks
    stop_all: asyncio.Event = field(default_factory=asyncio.Event)

    def say(self, text: str) -> None:
        """A progress line."""
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}", highlight=False)


async def command(crash: Crash, argv: list[str], log_name: str) -> int:
    """Run a `lockstep` command (output to its log); its exit code (-1: timed out, killed)."""
    with crash.layout.log_file(log_name).open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *crash.lockstep, *argv, env=crash.env, stdout=log, stderr=asyncio.subprocess.STDOUT
        )
        try:
            return await asyncio.wait_for(process.wait(), COMMAND_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            return -1


async def pause(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
