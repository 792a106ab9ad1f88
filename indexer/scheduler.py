"""Running cycles: one-shot (cron) or every DURATION, one cycle at a time per target under a Redis lock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

import redis.asyncio as aioredis

from catalog.store import CatalogStore
from contract.indexing import Mode, live_index, shadow_index
from contract.items import schema
from contract.keys import Keys
from contract.redis_clients import async_client
from contract.redis_setup import check_async
from contract.replication import Replication
from contract.settings import IndexerSettings
from contract.wire import TypeInfo
from indexer import leftovers
from indexer.catalog import Item
from indexer.clock import Clock, system_clock
from indexer.errors import CYCLE_FAILURES, CatalogEmptyError, ClusterError, LockBusyError, ModeConflictError
from indexer.incremental import IncrementalIndexer, MergeBudget
from indexer.lock import IndexerLock
from indexer.metrics import IndexerMetrics
from orchestrator_client import OrchestratorClient
from search.client import build_client

log = logging.getLogger("lockstep.indexer")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
SEARCH_TIMEOUT_SECONDS: Final = 120.0  # per call of the indexer's engine: verification reads whole indices


def parse_duration(text: str) -> float:
    """'30s', '5m', '1h', '250ms', '10' -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r} must look like 30s, 5m, 1h or 250ms")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return seconds


def connect_orchestrator(settings: IndexerSettings, timeout: float | None = None) -> OrchestratorClient:
    """The indexer's client of the orchestrator, with its key (call `aclose()` when done)."""
    return OrchestratorClient(
        settings.orchestrator_url,
        settings.indexer_key.get_secret_value(),
        # items:batch of 1000 vectors is bigger than a lookup; give it more than the per-call default.
        timeout=timeout if timeout is not None else max(10.0, settings.request_timeout_seconds),
    )


def _mode_of(info: TypeInfo) -> Mode | None:
    """The mode the type's in_use version is served from (None before it has one)."""
    location = info.in_use_location()
    return location.mode if location is not None else None


@dataclass
class CycleReport:
    """What a cycle did, per type, for logs and the CLI's output."""

    mode: str
    results: list[Any] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Runner:
    """Clients and catalog shared by the cycles of one indexer process (use it from one event loop).

    `clock` is read for every record time and grace period: tests move it instead of sleeping.
    """

    settings: IndexerSettings
    metrics: IndexerMetrics
    batch_size: int = 500
    progress: bool = False
    step: Callable[[str], Awaitable[None]] | None = None
    lock_wait_seconds: float = 0.0
    clock: Clock = system_clock
    _merges: MergeBudget = field(default_factory=MergeBudget)

    def __post_init__(self) -> None:
        # A cluster client has the same commands; `start` refuses a Redis set up wrongly.
        self.redis = cast(aioredis.Redis, async_client(self.settings))
        self.keys = Keys(self.settings.key_prefix)
        self.search = build_client(self.settings, timeout=SEARCH_TIMEOUT_SECONDS)
        self.orchestrator = connect_orchestrator(self.settings)
        self.store = CatalogStore(self.redis, self.keys, schema(), Replication.of(self.settings))

    async def check_redis(self) -> None:
        """Refuse a Redis set up wrongly (RedisSetupError naming the node and the setting)."""
        await check_async(self.redis, self.settings, self.keys)

    async def aclose(self) -> None:
        """Close every client."""
        await self.orchestrator.aclose()
        await self.search.aclose()
        await self.redis.aclose()

    async def check_cluster(self) -> None:
        """Refuse a cycle on a cluster that cannot hold our indices: a data node without k-NN, named."""
        problems = await self.search.cluster_problems()
        if problems:
            raise ClusterError("; ".join(problems))

    async def catalog(self) -> list[Item]:
        """Every item of the catalog store, as of now (CatalogEmptyError before anything was loaded)."""
        await self.store.check_schema()
        items = [Item.stored(doc) async for batch in self.store.items() for doc in batch]
        if not items:
            raise CatalogEmptyError(
                f"the catalog under key prefix {self.settings.key_prefix!r} is empty: load it with "
                "`lockstep catalog load FILE` (or `lockstep catalog goodbooks` for the example)"
            )
        return items

    def lock(self, target: str) -> IndexerLock:
        """The lock of one target (a shadow alias or the live index)."""
        return IndexerLock(
            self.redis,
            self.keys,
            target,
            self.settings.indexer_lock_seconds,
            wait_seconds=self.lock_wait_seconds,
        )

    async def select(self, mode: Mode, types: Sequence[str] | None, switch: bool = False) -> list[TypeInfo]:
        """The types a cycle of `mode` may work on: named ones (default all) that this mode serves.

        A type belongs to the mode its in_use version is recorded in (a new type to whichever mode gets
        it first). Each indexed version records its own location and serving routes by it, so moving a
        type to the other mode is safe: the cycle re-indexes in_use (or latest) in its own mode and
        re-records it there, and the old location stays intact for requests already routed to it. It
        must be asked for (`switch`), so two modes never index the same type: a shadow cycle would
        otherwise delete the index an incremental record had just superseded, and vice versa.
        """
        selected = []
        for info in await self.orchestrator.list_types():
            name = info.type.name
            if types and name not in types:
                continue
            current = _mode_of(info)
            if current is None or current is mode or switch:
                if current is not None and current is not mode:
                    await self._check_switch_back(info, mode)
                    log.warning(
                        "switching mode", extra={"type": name, "from": current.value, "to": mode.value}
                    )
                selected.append(info)
                continue
            why = (
                f"type {name}: in_use {info.in_use} is served from {current.value} mode, not {mode.value}; "
                f"run it with `lockstep index {current.value}`, or pass --switch-mode to move it"
            )
            if types:
                raise ModeConflictError(why)
            log.info("type skipped: other mode", extra={"type": name, "reason": why})
        return selected

    async def _check_switch_back(self, info: TypeInfo, mode: Mode) -> None:
        """Refuse a switch to shadow that would rebuild an index requests may still be routed to.

        A shadow build of `latest` first deletes any index of its name. When the type left shadow mode
        less than the grace ago, that index may still answer requests routed to it before the switch.
        """
        left = leftovers.grace_left(self.settings, info, self.clock())
        if mode is not Mode.SHADOW or left <= 0 or info.latest is None:
            return
        index = shadow_index(self.settings.index_prefix, info.type.name, info.latest)
        if await self.search.index_exists(index):
            raise ModeConflictError(
                f"type {info.type.name}: switching back to shadow now would rebuild {index}, which may "
                f"still answer requests routed to it before the last switch; switch in {left:.0f} s or later"
            )

    async def shadow(self, types: Sequence[str] | None = None, switch: bool = False) -> CycleReport:
        """One shadow cycle over the given types (default: every registered type of this mode)."""
        from indexer.shadow import ShadowIndexer

        began = time.perf_counter()
        report = CycleReport("shadow")
        shadow = ShadowIndexer(
            self.settings,
            self.search,
            self.orchestrator,
            self.catalog,
            self.metrics,
            batch_size=self.batch_size,
            progress=self.progress,
            step=self.step,
            clock=self.clock,
        )
        try:
            await self.check_cluster()
            for info in await self.select(Mode.SHADOW, types, switch):
                async with self.lock(f"shadow:{info.type.name}") as held:
                    result = await shadow.cycle(info, held.check)
                result.cleared_live_docs = await self._clear_live_slots(info.type.name)
                report.results.append(result)
                log.info("shadow cycle", extra={"type": info.type.name, "result": vars(result)})
        except CYCLE_FAILURES as exc:
            self.metrics.failures.labels("shadow", type(exc).__name__).inc()
            raise
        finally:
            report.seconds = time.perf_counter() - began
            self.metrics.cycle_seconds.labels("shadow").observe(report.seconds)
        return report

    async def incremental(self, types: Sequence[str] | None = None, switch: bool = False) -> CycleReport:
        """One incremental mini-batch cycle on the live index (all types of this mode, by default)."""

        began = time.perf_counter()
        report = CycleReport("incremental")
        try:
            await self.check_cluster()
            selected = await self.select(Mode.INCREMENTAL, types, switch)
            if types:
                selected += await self._served_incrementally_besides(selected)
            names = [info.type.name for info in selected]
            if not names:
                # No type to index: leave the catalog changes in the stream for a cycle that has one.
                return report
            await self.store.check_schema()  # the live index and the changes follow the recorded schema
            async with self.lock(live_index(self.settings.index_prefix)) as held:
                incremental = IncrementalIndexer(
                    self.settings,
                    self.search,
                    self.orchestrator,
                    self.redis,
                    self.keys,
                    self.metrics,
                    batch_size=self.batch_size,
                    progress=self.progress,
                    clock=self.clock,
                    merges=self._merges,
                )
                report.results = await incremental.cycle(self.catalog, names, held.check)
            for result in report.results:
                for type_result in result.types:
                    type_result.removed = await self._retire_shadow_indices(type_result.type_name)
        except CYCLE_FAILURES as exc:
            self.metrics.failures.labels("incremental", type(exc).__name__).inc()
            raise
        finally:
            report.seconds = time.perf_counter() - began
            self.metrics.cycle_seconds.labels("incremental").observe(report.seconds)
        return report

    async def _clear_live_slots(self, type_name: str) -> int:
        """After a switch to shadow: the type's live slots, under the live lock (taken only when needed)."""
        info = await self.orchestrator.type_info(type_name)
        if not await leftovers.live_leftovers(self.settings, self.search, info, self.clock()):
            return 0
        try:
            async with self.lock(live_index(self.settings.index_prefix)):
                info = await self.orchestrator.type_info(type_name)
                cleared = await leftovers.clear_live_slots(
                    self.settings, self.search, self.orchestrator, info, self.clock()
                )
            self.metrics.switch_leftovers.labels(type_name, "live_documents").inc(cleared)
            return cleared
        except LockBusyError:
            return 0  # an incremental cycle is on: the next shadow cycle clears them

    async def _retire_shadow_indices(self, type_name: str) -> list[str]:
        """After a switch to incremental: the type's shadow indices, under its shadow lock (when needed)."""
        info = await self.orchestrator.type_info(type_name)
        if not await leftovers.shadow_leftovers(self.settings, self.search, info, self.clock()):
            return []
        try:
            async with self.lock(f"shadow:{type_name}"):
                info = await self.orchestrator.type_info(type_name)
                removed = await leftovers.retire_shadow_indices(
                    self.settings, self.search, self.orchestrator, info, self.clock()
                )
            self.metrics.switch_leftovers.labels(type_name, "shadow_indices").inc(len(removed))
            return removed
        except LockBusyError:
            return []  # a shadow cycle of the type is on (switching back?): the next cycle decides

    async def _served_incrementally_besides(self, selected: Sequence[TypeInfo]) -> list[TypeInfo]:
        """Types served from incremental mode that a cycle given --type left out: it covers them too.

        The live index's catalog changes are consumed once, by whichever incremental cycle reads them
        first, so a type left out of a cycle would never get its vectors of the items that cycle changed.
        Types of no mode yet (never indexed) are not taken: only naming them puts them in a mode.
        """
        named = {info.type.name for info in selected}
        others = [
            info
            for info in await self.orchestrator.list_types()
            if info.type.name not in named and _mode_of(info) is Mode.INCREMENTAL
        ]
        for info in others:
            log.info("type covered: served incrementally", extra={"type": info.type.name})
        return others

    async def run_forever(
        self,
        mode: str,
        every: float,
        types: Sequence[str] | None = None,
        stop: asyncio.Event | None = None,
        switch: bool = False,
    ) -> None:
        """Run a cycle every `every` seconds until `stop` is set; a failed cycle is logged, not fatal."""
        stop = stop or asyncio.Event()
        cycle = self.shadow if mode == "shadow" else self.incremental
        while not stop.is_set():
            began = time.monotonic()
            try:
                await cycle(types, switch)
                self.metrics.cycles.labels(mode).inc()
            except LockBusyError as exc:
                log.info("cycle skipped: lock busy", extra={"mode": mode, "reason": str(exc)})
            except CYCLE_FAILURES as exc:
                log.error("cycle failed", extra={"mode": mode, "error": str(exc)})
            except Exception:  # a long-lived job must survive a bad cycle; the next one retries
                self.metrics.failures.labels(mode, "unexpected").inc()
                log.exception("cycle crashed", extra={"mode": mode})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, every - (time.monotonic() - began)))
