"""The indexer's CPU budget (LOCKSTEP_INDEXER_CPU_BUDGET_PERCENT): a build backs off while an OpenSearch node
is busier than the budget, and climbs back once it is not."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest

from contract.settings import Settings
from indexer.metrics import IndexerMetrics
from indexer.throttle import MIN_DOCS_PER_SECOND, Throttle, next_rate
from search.client import build_client

DEADLINE_SECONDS = 60.0  # what a condition is given before the test fails; it never paces the test


def test_over_the_budget_the_rate_halves_what_was_sent_and_within_it_climbs_back_to_the_cap() -> None:
    assert next_rate(math.inf, math.inf, True, 800.0) == 400.0  # half of what was sent, not of "no cap"
    assert next_rate(300.0, 1000.0, True, 800.0) == 150.0  # half of what was allowed, when that is less
    assert next_rate(60.0, 1000.0, True, 60.0) == MIN_DOCS_PER_SECOND  # a build always progresses
    assert next_rate(400.0, 1000.0, False, 400.0) == 500.0
    assert next_rate(900.0, 1000.0, False, 900.0) == 1000.0  # never past the cap
    assert next_rate(math.inf, math.inf, False, 800.0) == math.inf


@contextmanager
def busy_cpus() -> Iterator[None]:
    """Every CPU of the machine busy (the node's CPU use is the machine's), until the block ends."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


@pytest.mark.anyio
async def test_a_busy_node_slows_the_writes_and_a_quiet_one_lets_them_climb_back(settings: Settings) -> None:
    search = build_client(settings)
    now = [0.0]
    metrics = IndexerMetrics.create()
    throttle = Throttle(search, cap=1000, cpu_budget=80, metrics=metrics, clock=lambda: now[0])

    async def cpu_over(percent: int) -> bool:
        return await search.node_cpu_percent() > percent

    async def cpu_under(percent: int) -> bool:
        return await search.node_cpu_percent() < percent

    try:
        await throttle.acquire(400)  # the first reading: nothing sent before it to halve
        with busy_cpus():
            await until(lambda: cpu_over(95), "the node never saw its CPUs busy")
            now[0] += 1.0
            await throttle.acquire(1)  # 400 documents went out in the interval while the node was busy
        assert throttle.cpu_percent is not None and throttle.cpu_percent > 80
        assert throttle.rate == 200.0
        assert metrics.registry.get_sample_value("lockstep_indexer_backoffs_total") == 1
        assert metrics.registry.get_sample_value("lockstep_indexer_write_rate_limit") == 200.0

        now[0] += 0.5  # within the interval: no reading, no change
        await throttle.acquire(1)
        assert throttle.rate == 200.0

        await until(lambda: cpu_under(60), "the node's CPU use never fell back")
        now[0] += 0.5
        await throttle.acquire(1)
        assert throttle.cpu_percent is not None and throttle.cpu_percent <= 80
        assert throttle.rate == 250.0
        assert metrics.registry.get_sample_value("lockstep_indexer_backoffs_total") == 1
    finally:
        await search.aclose()


def test_a_cap_or_budget_out_of_range_is_refused(settings: Settings) -> None:
    search = build_client(settings)
    for bad in ({"cap": -1}, {"cpu_budget": 101}, {"cpu_budget": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Throttle(search, **bad)
