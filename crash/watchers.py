"""What tells that a killed process works again: each indexer's completed cycles, and the first success
of each killed kind."""

from __future__ import annotations

import asyncio
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from crash import history
from crash.context import POLL_SECONDS, Crash
from crash.kinds import INDEXERS, success_of


async def watch_indexers(crash: Crash) -> None:
    """Each indexer's completed cycles (its metrics): a rise is a working indexer."""
    ports = {name: crash.specs[name].port for name in INDEXERS}
    async with httpx.AsyncClient(timeout=2.0) as client:
        while not crash.stop_all.is_set():
            for name, port in ports.items():
                sent = time.time()
                try:
                    text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.HTTPError:
                    continue
                killed = crash.victims[name].killed_at
                if killed is not None and sent < killed:
                    continue  # the killed process's answer, come back after the kill: not its successor's
                count = sum(
                    sample.value
                    for family in text_string_to_metric_families(text)
                    if family.name == "lockstep_indexer_cycles"
                    for sample in family.samples
                    if sample.name == "lockstep_indexer_cycles_total"
                )
                if count != crash.cycles.get(name, 0.0) and count > 0:
                    crash.history.write(history.INDEXER_CYCLE, sent, process=name, cycles=count)
                crash.cycles[name] = count
            await asyncio.sleep(POLL_SECONDS)


async def watch_recovery(crash: Crash) -> None:
    """After each kill, the first success of the killed kind: written as `recovered`."""
    while not crash.stop_all.is_set():
        events = crash.history.events
        for victim in crash.victims.values():
            if victim.killed_at is None:
                continue
            for event in events[victim.scan :]:
                if float(event["t"]) > victim.killed_at and success_of(victim.name, event):
                    seconds = round(float(event["t"]) - victim.killed_at, 3)
                    crash.history.write(history.RECOVERED, process=victim.name, seconds=seconds)
                    crash.say(f"{victim.name} recovered {seconds:.1f} s after its kill")
                    victim.killed_at = None
                    break
            victim.scan = len(events)
        await asyncio.sleep(0.25)
