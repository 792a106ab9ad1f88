"""Incremental mode: one live index, two version slots per type, mini-batches of catalog changes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

import redis.asyncio as aioredis

from catalog.changes import CatalogChange, ChangeKind
from contract.indexing import IndexedLocation, Mode, Slot, live_index, vector_field, version_field
from contract.keys import Keys
from contract.settings import IndexerSettings
from contract.wire import MAX_BATCH_ITEMS, TypeInfo
from indexer import promotion
from indexer.bulk import BulkWriter
from indexer.catalog import CatalogReader, Item
from indexer.changes import ChangeConsumer
from indexer.clock import Clock, system_clock
from indexer.errors import VerificationError
from indexer.metrics import IndexerMetrics
from indexer.progress import BuildProgress
from indexer.slots import SlotPlan, plan
from indexer.throttle import Throttle
from orchestrator_client import OrchestratorClient
from orchestrator_client.errors import InUseConflict
from search.port import SearchEngine
from search.requests import (
    BulkAction,
    ItemDocument,
    SlotVector,
    carrying_query,
    clear_slot_action,
    delete_action,
    lacking_query,
    update_action,
)
from search.results import IndexStats
from search.templates import install_items_template, layout_of, vector_slot_mappings

log = logging.getLogger("lockstep.indexer.incremental")

# Upserted ids asked about per query when looking for those lacking a slot's vector (under MAX_K, a page).
LOOKUP_CHUNK = 5_000
# Stream entries read at a time: the first page's chunks are in flight while the rest is read and decoded.
CHANGE_PAGE = 1_000


@dataclass
class TypeResult:
    """What one incremental cycle did for one type."""

    type_name: str
    in_use: str | None
    latest: str | None
    target: str | None = None
    written: int = 0
    promoted: bool = False
    waiting_until: datetime | None = None
    held_back: str | None = None
    removed: list[str] = field(default_factory=list)  # this type's shadow indices deleted (after a switch)


class MergeKind(StrEnum):
    """What a merge of the live index is for."""

    SEGMENTS = "segments"  # down to live_max_segments per shard
    DELETES = "deletes"  # an expunge of deleted documents


@dataclass
class MergeBudget:
    """When this process last merged the live index, and for what (kept across cycles by the runner)."""

    last: datetime | None = None
    last_kind: MergeKind | None = None

    def choose(self, now: datetime, interval: timedelta, wanted: Sequence[MergeKind]) -> MergeKind | None:
        """The merge to start now, counted as run: none within `interval` of the last one; of two wanted,
        the one not run last, so steady churn that keeps both past their limits starves neither."""
        if not wanted or (self.last is not None and now - self.last < interval):
            return None
        kind = next((k for k in wanted if k is not self.last_kind), wanted[0])
        self.last, self.last_kind = now, kind
        return kind


@dataclass
class IncrementalResult:
    """What one incremental cycle did."""

    changes: int = 0
    deleted: int = 0
    bootstrapped: bool = False
    types: list[TypeResult] = field(default_factory=list)
    stats: IndexStats | None = None  # the live index after the cycle, before a merge it starts
    expunged: bool = False  # an expunge of deleted documents started this cycle (it runs in the background)
    merged: bool = False  # a merge down to live_max_segments started this cycle (in the background)
    seconds: dict[str, float] = field(default_factory=dict)  # per step of the cycle (CycleStep)


class CycleStep(StrEnum):
    """The steps of an incremental cycle, timed one after the other."""

    READ = "read"  # the types, the live index (made from the catalog the first time), the plans
    WRITE = "write"  # the changes, read page by page and written as they come; the items lacking a vector
    FILL = "fill"  # vectors into the slots lacking them
    REFRESH = "refresh"  # the cycle's writes made visible to search
    ACK = "ack"  # the changes acknowledged on the stream
    PROMOTE = "promote"  # verify, record, advance in_use
    MAINTAIN = "maintain"  # the live index's shape read, a merge started when past a limit


class _Laps:
    """Seconds per step into a dict, each step from the end of the one before."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.mark = time.perf_counter()

    def __call__(self, step: CycleStep) -> None:
        now = time.perf_counter()
        self.into[step.value] = self.into.get(step.value, 0.0) + now - self.mark
        self.mark = now


class IncrementalIndexer:
    """Runs mini-batch cycles on the live index."""

    def __init__(
        self,
        settings: IndexerSettings,
        search: SearchEngine,
        orchestrator: OrchestratorClient,
        redis_client: aioredis.Redis,
        keys: Keys,
        metrics: IndexerMetrics,
        *,
        batch_size: int = 500,
        progress: bool = False,
        clock: Clock = system_clock,
        merges: MergeBudget | None = None,
    ) -> None:
        self.settings = settings
        self.search = search
        self.orchestrator = orchestrator
        self.metrics = metrics
        self.batch_size = batch_size
        self.progress = progress
        self.live = live_index(settings.index_prefix)
        self.changes = ChangeConsumer(redis_client, keys)
        self.clock = clock
        self.merges = merges or MergeBudget()
        # One for the indexer's life: the rate it backed off to carries over between batches.
        self.throttle = Throttle.of(search, settings, metrics)

    def _writer(self, type_name: str = "") -> BulkWriter:
        counted = self.metrics.docs_indexed.labels("incremental", type_name).inc if type_name else None
        return BulkWriter(
            self.search,
            self.settings.indexer_bulk_workers,
            f"incremental write to {self.live}",
            counted,
            # The live index serves while it is written: a write goes ahead only with enough copies up.
            wait_for_active_shards=self.settings.live_wait_for_active_shards,
            throttle=self.throttle,
        )

    async def _write(self, actions: Sequence[BulkAction], type_name: str = "") -> int:
        # Every chunk is checked, and all are done, before the caller goes on (e.g. to refresh).
        async with self._writer(type_name) as writer:
            for start in range(0, len(actions), self.batch_size):
                await writer.submit(actions[start : start + self.batch_size])
        return writer.written

    async def _apply_changes(
        self, asked: Sequence[tuple[str, Slot, str]]
    ) -> tuple[list[CatalogChange], dict[str, ChangeKind], dict[tuple[str, Slot, str], list[str]]]:
        """The cycle's changes written to the live index, each page of the stream while the next is read;
        each item's last kind of change; and which upserted items lack each `asked` slot's vector, looked up
        a page at a time beside the writes.

        An item's changes within a page come down to its last one (an upsert, else a delete). An item
        changed again in a later page waits until every earlier write has landed: with several chunks in
        flight, its older state could otherwise land last. An item deleted and then upserted again comes
        back without its vectors, whatever the (unrefreshed) index still shows: it lacks every slot.
        """
        changes: list[CatalogChange] = []
        in_flight: set[str] = set()
        deleted: set[str] = set()
        carrying: dict[tuple[str, Slot, str], set[str]] = {key: set() for key in asked}
        looked_up: set[str] = set()
        lookup: asyncio.Task[None] | None = None  # one at a time, beside the writes
        try:
            async with self._writer() as writer:
                async for page in self.changes.pages(self.settings.live_max_changes, CHANGE_PAGE):
                    changes += page
                    upserts = _last_upserts(page)
                    deletes = {c.item_id for c in page if c.kind is ChangeKind.DELETE} - upserts.keys()
                    if not in_flight.isdisjoint(upserts) or not in_flight.isdisjoint(deletes):
                        await writer.drain()
                        in_flight.clear()
                    in_flight |= upserts.keys() | deletes
                    deleted |= deletes
                    fresh = sorted(upserts.keys() - looked_up)
                    if asked and fresh:
                        looked_up.update(fresh)
                        if lookup is not None:
                            await lookup
                        lookup = asyncio.create_task(self._carrying(fresh, asked, carrying))
                    actions = [
                        update_action(self.live, ItemDocument(item.item_id, item.replacement()))
                        for item in upserts.values()
                    ]
                    actions += [delete_action(self.live, item_id) for item_id in sorted(deletes)]
                    for start in range(0, len(actions), self.batch_size):
                        await writer.submit(actions[start : start + self.batch_size])
                if lookup is not None:
                    await lookup  # beside the last chunks in flight
        finally:
            # A failed write or read fails the cycle (nothing is acknowledged): its lookup is not waited for,
            # and a lookup that failed too is collected here, not left for the loop to report.
            if lookup is not None:
                lookup.cancel()
                await asyncio.gather(lookup, return_exceptions=True)
        last = {c.item_id: c.kind for c in changes}
        upserted = sorted(item_id for item_id, kind in last.items() if kind is ChangeKind.UPSERT)
        recreated = deleted.intersection(upserted)
        lacking = {
            key: [item_id for item_id in upserted if item_id in recreated or item_id not in carried]
            for key, carried in carrying.items()
        }
        return changes, last, lacking

    async def _ensure_index(self, infos: Sequence[TypeInfo], catalog: CatalogReader) -> bool:
        if await self.search.index_exists(self.live):
            for info in infos:
                await self.search.add_vector_slots(self.live, vector_slot_mappings(info.type, self.settings))
            return False
        await install_items_template(self.search, self.settings)
        slots: dict[str, object] = {}
        for info in infos:
            slots.update(vector_slot_mappings(info.type, self.settings))
        await self.search.create_index(
            self.live, slots, self.settings.hnsw_ef_search, layout=layout_of(self.settings, Mode.INCREMENTAL)
        )
        # The live index starts from the whole catalog, read after `mark`: the changes up to it are in that
        # read, so the stream is applied from there on (a 1M-item load is not replayed change by change).
        mark = await self.changes.position()
        items = await catalog()
        await self._write([update_action(self.live, ItemDocument(i.item_id, i.document())) for i in items])
        await self.search.refresh(self.live)
        await self.changes.start_at(mark)
        return True

    async def cycle(
        self, catalog: CatalogReader, types: Sequence[str] | None, still_locked: Callable[[], None]
    ) -> list[IncrementalResult]:
        """One mini-batch: apply catalog changes, fill slots, then record and advance where complete."""
        result = IncrementalResult()
        lap = _Laps(result.seconds)
        infos = [i for i in await self.orchestrator.list_types() if types is None or i.type.name in types]
        result.bootstrapped = await self._ensure_index(infos, catalog)
        plans, held = await self._plans(infos)
        # Which upserted items still need a slot's vector is read from the index while the last of the
        # cycle's fields are written (a partial update keeps a document's slots).
        asked = [
            (info.type.name, slot, version)
            for info, p in plans.values()
            for slot, version in p.writes.items()
            if not (p.full_pass and slot is p.target)
        ]
        lap(CycleStep.READ)
        # A failed write or lookup fails the cycle: nothing is acknowledged, the next applies it all again.
        changes, last, lacking = await self._apply_changes(asked)
        result.changes = len(changes)
        result.deleted = sum(kind is ChangeKind.DELETE for kind in last.values())
        lap(CycleStep.WRITE)
        if any(p.full_pass for _i, p in plans.values()):
            await self.search.refresh(self.live)
            all_ids = [item_id async for item_id in self.search.iter_item_ids(self.live)]
        else:
            all_ids = []
        for info, p in plans.values():
            tr = TypeResult(
                info.type.name,
                info.in_use,
                info.latest,
                waiting_until=p.wait_until,
                held_back=held.get(info.type.name),
            )
            result.types.append(tr)
            for slot, version in p.writes.items():
                ids = (
                    all_ids
                    if (p.full_pass and slot is p.target)
                    else lacking[(info.type.name, slot, version)]
                )
                if p.evict is not None and slot is p.target:
                    # Withdraw the old occupant before its vectors are overwritten: nobody is routed to it.
                    await self.orchestrator.forget_indexed(info.type.name, p.evict)
                if ids:
                    tr.written += await self._fill(info, slot, version, ids)
            if p.target is not None:
                tr.target = p.writes[p.target]
        lap(CycleStep.FILL)
        await self.search.refresh(self.live)
        lap(CycleStep.REFRESH)
        # Acknowledge only now: the changes are indexed and visible to search.
        await self.changes.ack(changes)
        lap(CycleStep.ACK)
        for tr in result.types:
            info, p = plans[tr.type_name]
            if p.promote and p.target is not None and info.latest is not None:
                still_locked()
                await self._promote(info, p.target, info.latest, tr)
        lap(CycleStep.PROMOTE)
        await self._maintain(result)
        lap(CycleStep.MAINTAIN)
        for step, seconds in result.seconds.items():
            self.metrics.cycle_step_seconds.labels(step).observe(seconds)
        return [result]

    async def _plans(
        self, infos: Sequence[TypeInfo]
    ) -> tuple[dict[str, tuple[TypeInfo, SlotPlan]], dict[str, str]]:
        """Each type's slot plan for this cycle, and the types whose latest is held back (with why)."""
        plans: dict[str, tuple[TypeInfo, SlotPlan]] = {}
        now = self.clock()
        grace = timedelta(seconds=self.settings.slot_grace_seconds + self.settings.request_timeout_seconds)
        held: dict[str, str] = {}
        for info in infos:
            name = info.type.name
            decision = await promotion.decide(
                info, partial(self.orchestrator.in_use_history, name, promotion.HISTORY_LIMIT)
            )
            self.metrics.held_back.labels("incremental", name).set(1 if decision.held_back else 0)
            if decision.held_back is not None:
                held[name] = decision.held_back
                log.warning(
                    "latest held back",
                    extra={"type": name, "latest": info.latest, "reason": decision.held_back},
                )
            p = plan(
                name,
                self.live,
                info.in_use,
                info.latest,
                info.indexed,
                now,
                grace,
                hold_back=decision.held_back is not None,
                in_use_since=decision.in_use_since,
            )
            plans[name] = (info, p)
        return plans, held

    async def _maintain(self, result: IncrementalResult) -> None:
        """Report the live index's shape; past live_max_segments per shard start a merge of segments down
        to it, past live_max_deleted_ratio an expunge of deleted documents (past both, each in turn).

        Updates and deletions leave deleted documents in their segments until a merge drops them, and
        every search still walks them (and their HNSW graph nodes). Each refresh of a cycle's writes adds a
        segment, and a search walks one HNSW graph per segment: latency follows the segment count (at 100k
        items, 4.3-5.3 ms with 4-12 segments, 12.3 ms with 15, 3.5 ms with one). A merge rebuilds the merged
        segments' graphs, minutes at 1M items: it runs in the background while cycles go on applying
        changes, none starts while any merge runs, and at most one starts per
        live_expunge_interval_seconds, the budget. That interval also lets OpenSearch's retention lease move
        past recent deletions, which an expunge right after churn could not drop.
        """
        stats = await self.search.index_stats(self.live)
        interval = timedelta(seconds=self.settings.live_expunge_interval_seconds)
        limit = self.settings.live_max_segments
        over = {
            MergeKind.SEGMENTS: stats.segments > limit * self.settings.live_shards,
            MergeKind.DELETES: stats.deleted_ratio > self.settings.live_max_deleted_ratio,
        }
        wanted = [kind for kind, past in over.items() if past]
        kind = None if stats.merging else self.merges.choose(self.clock(), interval, wanted)
        if kind is not None:
            shape = {
                "index": self.live,
                "segments": stats.segments,
                "deleted_ratio": round(stats.deleted_ratio, 3),
            }
            segments = kind is MergeKind.SEGMENTS
            task = await self.search.start_merge(self.live, limit if segments else None)
            (self.metrics.merges if segments else self.metrics.expunges).inc()
            result.merged, result.expunged = segments, not segments
            what = "a merge of segments" if segments else "an expunge of deleted documents"
            log.info(
                f"started {what} of the live index", extra={**shape, "max_segments": limit, "task": task}
            )
        result.stats = stats
        self.metrics.live_segments.set(stats.segments)
        self.metrics.live_deleted_ratio.set(stats.deleted_ratio)
        self.metrics.live_bytes.set(stats.size_bytes)

    async def _carrying(
        self,
        ids: Sequence[str],
        slots: Sequence[tuple[str, Slot, str]],
        into: dict[tuple[str, Slot, str], set[str]],
    ) -> None:
        """Adds to `into`, per (type, slot, version), those of `ids` whose document carries the version in
        the slot; the others are new items, or a slot moving on.

        One that does keeps its vector through the partial update of its fields (vectors of a version never
        change), so an update of metadata alone writes no vector again.
        """
        for name, slot, version in slots:
            for start in range(0, len(ids), LOOKUP_CHUNK):
                chunk = ids[start : start + LOOKUP_CHUNK]
                query = carrying_query(chunk, version_field(name, slot), version)
                # A page wider than the chunk: one query per chunk. Paging the whole id list instead ran
                # its filter over every id once per page, beside the cycle's write on the same CPU.
                found = self.search.iter_item_ids(self.live, query, page_size=len(chunk) + 1)
                into[(name, slot, version)].update([item_id async for item_id in found])

    async def _fill(self, info: TypeInfo, slot: Slot, version: str, ids: Sequence[str]) -> int:
        name = info.type.name
        vfield, verfield = vector_field(name, slot), version_field(name, slot)
        progress = BuildProgress(self.progress and len(ids) > self.batch_size, f"{name} {version}", len(ids))
        with progress as bar:
            async with self._writer(name) as writer:
                for start in range(0, len(ids), self.batch_size):
                    batch = list(ids[start : start + self.batch_size])
                    vectors = await self.orchestrator.item_vectors(name, version, batch)
                    actions: list[BulkAction] = []
                    for row, item_id in enumerate(vectors.ids):
                        doc = ItemDocument(
                            item_id, {}, (SlotVector(vfield, verfield, version, vectors.matrix[row]),)
                        )
                        actions.append(update_action(self.live, doc))
                    # Cold items lack the version: empty the slot so no stale vector of another version stays.
                    actions += [clear_slot_action(self.live, i, vfield, verfield) for i in vectors.missing]
                    # Batches hold disjoint ids, so chunks in flight together never update the same document.
                    await writer.submit(actions)
                    bar.advance(len(batch))
        return writer.written

    async def verify(self, name: str, version_field: str, version: str) -> int:
        """Every live document carries `version` in `version_field` or has no vector of it; returns carriers.

        Only the documents lacking the version are asked about, and the orchestrator answers each with
        "missing" (no vector to ship) when it is truly cold: no item's vector is fetched a second time.
        """
        carrying = await self.search.count(self.live, {"query": {"term": {version_field: version}}})
        expected = await self.search.count(self.live)
        lacking_ids = self.search.iter_item_ids(self.live, lacking_query(version_field, version))
        lacking = [item_id async for item_id in lacking_ids]
        for start in range(0, len(lacking), MAX_BATCH_ITEMS):
            batch = lacking[start : start + MAX_BATCH_ITEMS]
            found = await self.orchestrator.item_vectors(name, version, batch)
            if found.ids:
                raise VerificationError(
                    f"{self.live}: item {found.ids[0]!r} has a vector of {name} {version} but its document "
                    f"lacks it in {version_field}; not promoting"
                )
        if carrying + len(lacking) != expected:
            raise VerificationError(
                f"{self.live}: {carrying} items carry {name} {version} and {len(lacking)} have no vector, "
                f"but the index holds {expected}; not promoting"
            )
        return carrying

    async def _promote(self, info: TypeInfo, slot: Slot, version: str, tr: TypeResult) -> None:
        name = info.type.name
        location = IndexedLocation(
            version=version,
            mode=Mode.INCREMENTAL,
            index=self.live,
            vector_field=vector_field(name, slot),
            version_field=version_field(name, slot),
            indexed_at=self.clock(),
            item_count=0,
        )
        carrying = await self.verify(name, location.version_field, version)
        location = location.model_copy(update={"item_count": carrying})
        await self.orchestrator.record_indexed(name, location)
        try:
            await self.orchestrator.set_in_use(
                name, info.in_use, version, reason=f"incremental: every item carries {version}"
            )
        except InUseConflict:
            if (await self.orchestrator.type_info(name)).in_use != version:
                raise
        tr.promoted = True
        self.metrics.promotions.labels("incremental", name).inc()
        published = next((v for v in info.published if v.version == version), None)
        if published is not None:
            self.metrics.freshness_seconds.labels("incremental", name).set(
                (self.clock() - published.created_at).total_seconds()
            )
        log.info(
            "in_use advanced", extra={"type": name, "from": info.in_use, "to": version, "slot": slot.value}
        )


def _last_upserts(changes: Sequence[CatalogChange]) -> dict[str, Item]:
    """The final state of each item changed in this batch (a later delete cancels an earlier upsert)."""
    latest: dict[str, Item] = {}
    for change in changes:
        if change.kind is ChangeKind.UPSERT and change.doc is not None:
            latest[change.item_id] = Item.stored(change.doc)
        else:
            latest.pop(change.item_id, None)
    return latest
