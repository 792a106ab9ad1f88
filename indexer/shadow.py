"""Shadow mode: build a fresh index per version, verify it, swap the alias, then advance in_use."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import numpy as np

from contract.indexing import (
    IndexedLocation,
    Mode,
    Slot,
    items_alias,
    shadow_index,
    vector_field,
    version_field,
)
from contract.settings import IndexerSettings
from contract.types import Encoder, IndexParams
from contract.versions import VERSION_ID
from contract.wire import TypeInfo
from indexer import promotion
from indexer.bulk import BulkWriter
from indexer.catalog import CatalogReader, Item
from indexer.clock import Clock, system_clock
from indexer.copies import check_copies, replicate
from indexer.errors import VerificationError
from indexer.metrics import IndexerMetrics
from indexer.progress import BuildProgress
from indexer.recall import exact_scores, recall_with_ties
from indexer.throttle import Throttle
from orchestrator_client import ItemVectors, OrchestratorClient
from orchestrator_client.errors import InUseConflict, OrchestratorCallError
from search.port import SearchEngine
from search.requests import (
    ItemDocument,
    SlotVector,
    VersionedKnnQuery,
    beam,
    candidates,
    count_body,
    index_action,
)
from search.results import ShardCopy, id_digest
from search.templates import effective, install_items_template, layout_of, vector_slot_mappings

log = logging.getLogger("lockstep.indexer.shadow")

READ_BACK_SAMPLE = 20
# 50 measured a 1M build at 0.94 whose sweep of 200 other users gave 0.978: too coarse near the floor.
RECALL_QUERIES = 200
RECALL_K = 10
COPY_COUNT_WAIT_SECONDS = 30.0


def gate_params(params: IndexParams, settings: IndexerSettings) -> dict[str, int | float | str]:
    """What the recall gate measures: the type's graph as built, queried as serving queries it (its
    candidates, and its ef_search else serving_ef_search)."""
    return {
        **effective(params, settings),
        "ef_search": beam(RECALL_K, params, settings.serving_ef_search),
        "candidates": candidates(RECALL_K, params.candidates),
    }


@dataclass
class BuildTimings:
    """Seconds spent per phase of one build."""

    fetch: float = 0.0
    bulk: float = 0.0
    refresh_merge: float = 0.0
    replicate: float = 0.0
    verify: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Rounded, for logs and reports."""
        return {k: round(v, 3) for k, v in vars(self).items()}


@dataclass
class ShadowResult:
    """What one type's shadow cycle did."""

    type_name: str
    version: str | None
    index: str | None
    built: bool = False
    promoted: bool = False
    recall: float | None = None
    recall_params: dict[str, int | float | str] = field(default_factory=dict)  # what the gate measured with
    docs: int = 0
    timings: BuildTimings = field(default_factory=BuildTimings)
    removed: list[str] = field(default_factory=list)
    held_back: str | None = None
    cleared_live_docs: int = 0  # documents whose live-index slots of this type went (after a switch)


def location_of(
    settings: IndexerSettings, type_name: str, version: str, item_count: int, indexed_at: datetime
) -> IndexedLocation:
    """Where a shadow-built version lives: its own index, slot A's fields."""
    return IndexedLocation(
        version=version,
        mode=Mode.SHADOW,
        index=shadow_index(settings.index_prefix, type_name, version),
        vector_field=vector_field(type_name, Slot.A),
        version_field=version_field(type_name, Slot.A),
        indexed_at=indexed_at,
        item_count=item_count,
    )


async def shadow_indices(search: SearchEngine, index_prefix: str, type_name: str) -> list[str]:
    """Shadow indices of a type (any version), by exact name shape, not just a prefix match."""
    alias = items_alias(index_prefix, type_name)
    names = await search.list_indices(f"{alias}-*")
    return [n for n in names if VERSION_ID.fullmatch(n[len(alias) + 1 :].upper())]


async def _no_step(_where: str) -> None:
    return None


class ShadowIndexer:
    """Runs shadow cycles for a set of types against one catalog."""

    def __init__(
        self,
        settings: IndexerSettings,
        search: SearchEngine,
        orchestrator: OrchestratorClient,
        catalog: Sequence[Item] | CatalogReader,
        metrics: IndexerMetrics,
        *,
        batch_size: int = 500,
        progress: bool = False,
        merge: bool = True,
        step: Callable[[str], Awaitable[None]] | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.search = search
        self.orchestrator = orchestrator
        # A reader is called by the first build of the cycle: a cycle with nothing to build reads nothing.
        self._reader: CatalogReader | None = catalog if callable(catalog) else None
        self.catalog: list[Item] = [] if callable(catalog) else list(catalog)
        self.metrics = metrics
        self.batch_size = batch_size
        self.progress = progress
        self.merge = merge
        # Called between every phase and batch: the crash tests slow the build down through it.
        self.step = step or _no_step
        self.clock = clock

    async def cycle(self, info: TypeInfo, still_locked: Callable[[], None] = lambda: None) -> ShadowResult:
        """One type: clean up, build+verify latest if needed, swap alias, advance in_use, retire old.

        `still_locked` raises if this process lost its lock: checked before every step that promotes.
        """
        name = info.type.name
        alias = items_alias(self.settings.index_prefix, name)
        result = ShadowResult(name, info.latest, None)
        recorded = {
            loc.version: loc
            for loc in info.indexed
            if loc.mode is Mode.SHADOW
            and loc.index == shadow_index(self.settings.index_prefix, name, loc.version)
        }
        targets = set(await self.search.alias_targets(alias))
        keep = {loc.index for loc in recorded.values()} | targets
        for index in await shadow_indices(self.search, self.settings.index_prefix, name):
            if index not in keep:
                # Left by a crashed or failed build: never verified, nothing points at it.
                log.info("removing unverified index", extra={"index": index, "type": name})
                await self.search.delete_index(index)
                result.removed.append(index)
        latest = info.latest
        if latest is None:
            return result
        history = partial(self.orchestrator.in_use_history, name, promotion.HISTORY_LIMIT)
        decision = await promotion.decide(info, history)
        self.metrics.held_back.labels("shadow", name).set(1 if decision.held_back else 0)
        if decision.held_back is not None:
            result.held_back = decision.held_back
            log.warning(
                "latest held back", extra={"type": name, "latest": latest, "reason": decision.held_back}
            )
            current = recorded.get(info.in_use) if info.in_use is not None else None
            if current is not None and targets != {current.index}:
                # The alias names what serves: after a rollback, the in-use version's index.
                still_locked()
                await self.search.swap_alias(alias, current.index)
            await self.retire(info, recorded, result)
            return result
        result.index = shadow_index(self.settings.index_prefix, name, latest)
        if latest not in recorded:
            location = await self.build(info, latest, result)
            still_locked()
            # Recorded before the alias moves: the alias only ever points at a verified, recorded index.
            await self.orchestrator.record_indexed(name, location)
            recorded[latest] = location
            result.built = True
        await self.step("before-alias")
        still_locked()
        if targets != {result.index}:
            await self.search.swap_alias(alias, result.index)
        await self.step("before-in-use")
        if decision.promote:
            still_locked()
            await self.promote(info, latest, recorded[latest].item_count)
            result.promoted = True
        await self.retire(info, recorded, result)
        return result

    async def promote(self, info: TypeInfo, latest: str, item_count: int) -> None:
        """Advance in_use by compare-and-set, after refreshing the record's time (grace starts now)."""
        name = info.type.name
        location = location_of(self.settings, name, latest, item_count, self.clock())
        await self.orchestrator.record_indexed(name, location)
        try:
            await self.orchestrator.set_in_use(
                name, info.in_use, latest, reason=f"shadow build of {latest} verified"
            )
        except InUseConflict:
            now = (await self.orchestrator.type_info(name)).in_use
            if now != latest:
                raise
        self.metrics.promotions.labels("shadow", name).inc()
        published = next((v for v in info.published if v.version == latest), None)
        if published is not None:
            self.metrics.freshness_seconds.labels("shadow", name).set(
                (self.clock() - published.created_at).total_seconds()
            )
        log.info("in_use advanced", extra={"type": name, "from": info.in_use, "to": latest})

    async def retire(
        self, info: TypeInfo, recorded: dict[str, IndexedLocation], result: ShadowResult
    ) -> None:
        """Delete indices past grace and beyond the retention count (never in_use's or latest's)."""
        fresh = await self.orchestrator.type_info(info.type.name)
        in_use = fresh.in_use
        since = recorded[in_use].indexed_at if in_use in recorded else None
        if since is None:
            return
        grace = timedelta(seconds=self.settings.slot_grace_seconds + self.settings.request_timeout_seconds)
        if self.clock() < since + grace:
            return
        order = {v.version: v.seq for v in fresh.published}
        newest = sorted(recorded, key=lambda v: order.get(v, 0), reverse=True)
        keep = set(newest[: self.settings.shadow_keep]) | {in_use, fresh.latest}
        for version in newest:
            if version in keep:
                continue
            # Withdraw the record first: from then on nobody is routed to the index we delete. The
            # orchestrator refuses while the version is in_use (an admin rollback may have just moved it).
            try:
                await self.orchestrator.forget_indexed(info.type.name, version)
            except OrchestratorCallError as exc:
                log.warning("not retiring index", extra={"version": version, "reason": str(exc)})
                continue
            await self.search.delete_index(recorded[version].index)
            result.removed.append(recorded[version].index)
            log.info("retired index", extra={"index": recorded[version].index, "version": version})

    async def build(self, info: TypeInfo, version: str, result: ShadowResult) -> IndexedLocation:
        """Create, fill, merge, replicate and verify the version's index; raise before anything points at it.

        The load runs without replicas and without refresh; the replicas are added after the merge, and the
        build waits for every copy (green) before it verifies them all.
        """
        if self._reader is not None:
            self.catalog, self._reader = list(await self._reader()), None
        name = info.type.name
        index = shadow_index(self.settings.index_prefix, name, version)
        if await self.search.index_exists(index):
            await self.search.delete_index(index)
        await install_items_template(self.search, self.settings)
        await self.search.create_index(
            index,
            vector_slot_mappings(info.type, self.settings, (Slot.A,)),
            self.settings.hnsw_ef_search,
            build_meta={"lockstep": {"type": name, "version": version, "state": "building"}},
            layout=layout_of(self.settings, Mode.SHADOW),
        )
        await self.step("created")
        t = result.timings
        ids_all: list[str] = []
        rows: list[np.ndarray] = []
        written = self.metrics.docs_indexed.labels("shadow", name).inc
        writer = BulkWriter(
            self.search,
            self.settings.indexer_bulk_workers,
            f"shadow build of {name} {version}",
            written,
            throttle=Throttle.of(self.search, self.settings, self.metrics),
        )
        with BuildProgress(self.progress, f"shadow {name} {version}", len(self.catalog)) as bar:
            async with writer:
                bulk_began = time.perf_counter()
                for start in range(0, len(self.catalog), self.batch_size):
                    batch = self.catalog[start : start + self.batch_size]
                    began = time.perf_counter()
                    vectors = await self.orchestrator.item_vectors(name, version, [i.item_id for i in batch])
                    t.fetch += time.perf_counter() - began
                    writes = [index_action(index, doc) for doc in documents(batch, vectors, name, Slot.A)]
                    # Chunks are indexed while the next batch is fetched; a rejection raises here or at drain.
                    await writer.submit(writes)
                    ids_all.extend(vectors.ids)
                    rows.append(vectors.matrix)
                    result.docs += len(writes)
                    bar.advance(len(batch))
                    await self.step("batch")
                await writer.drain()
                # Fetch and bulk overlap: bulk is the wall time of the loop not spent fetching.
                t.bulk += time.perf_counter() - bulk_began - t.fetch
        began = time.perf_counter()
        await self.search.finish_build(index)
        if self.merge:
            await self.search.force_merge(index)
        t.refresh_merge += time.perf_counter() - began
        await self.step("refreshed")
        began = time.perf_counter()
        layout = layout_of(self.settings, Mode.SHADOW)
        await replicate(self.search, index, layout, self.settings.index_green_timeout_seconds)
        t.replicate += time.perf_counter() - began
        await self.step("replicated")
        began = time.perf_counter()
        matrix = np.concatenate(rows) if rows else np.zeros((0, info.type.dim), dtype=np.float32)
        probes, asked_with = await self.recall_probes(name, version, matrix)
        result.recall_params = {**gate_params(info.type.index, self.settings), "queries": asked_with}
        result.recall = await self.verify(info, version, index, ids_all, matrix, probes, asked_with)
        t.verify += time.perf_counter() - began
        await self.search.set_index_meta(
            index, {"lockstep": {"type": name, "version": version, "state": "verified"}}
        )
        await self.step("verified")
        log.info(
            "shadow build verified",
            extra={
                "type": name,
                "version": version,
                "index": index,
                "recall": result.recall,
                "recall_params": result.recall_params,
                **t.as_dict(),
            },
        )
        return location_of(self.settings, name, version, len(self.catalog), self.clock())

    async def recall_probes(self, name: str, version: str, matrix: np.ndarray) -> tuple[np.ndarray, str]:
        """What the recall gate queries with, and what that is.

        The version's own user vectors, as serving will query: an item's own vector sits on the data, the
        easiest query a graph gets (it passed a 1M-item build at 1.0 that answered queries far from every
        item at 0.63). Items' vectors only where the version has no user vectors (aggregated users).
        """
        _, users = await self.orchestrator.user_sample(name, version, RECALL_QUERIES)
        if len(users):
            return users, "user vectors"
        rng = random.Random(f"{name}:{version}:probes")
        return matrix[rng.sample(range(len(matrix)), min(RECALL_QUERIES, len(matrix)))], "item vectors"

    async def _counted_copies(self, index: str) -> list[ShardCopy]:
        """The index's shard copies once every started one reports its document count: a copy that has
        just started (recovered, or moved by the cluster's rebalancing) reports none for a moment."""
        copies = await self.search.shard_copies(index)
        deadline = time.monotonic() + COPY_COUNT_WAIT_SECONDS
        while any(c.serving and c.docs is None for c in copies) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            copies = await self.search.shard_copies(index)
        return copies

    async def verify(
        self,
        info: TypeInfo,
        version: str,
        index: str,
        ids: list[str],
        matrix: np.ndarray,
        probes: np.ndarray,
        asked_with: str,
    ) -> float:
        """Every copy whole, count, id digest, read-back, recall@10 of `probes` (`asked_with` says what
        they are) against exact; raise on any miss."""
        name = info.type.name
        vfield, verfield = vector_field(name, Slot.A), version_field(name, Slot.A)
        expected = len(self.catalog)
        layout = layout_of(self.settings, Mode.SHADOW)
        check_copies(index, await self._counted_copies(index), layout, expected)
        location = location_of(self.settings, name, version, expected, self.clock())
        found, digest = await self.search.index_id_digest(index)
        if found != expected:
            raise VerificationError(f"{index}: {found} documents visible, catalog has {expected}")
        if digest != id_digest(i.item_id for i in self.catalog):
            raise VerificationError(f"{index}: the ids in the index differ from the catalog's")
        with_vectors = await self.search.count(index, count_body(location))
        if with_vectors != len(ids):
            raise VerificationError(f"{index}: {with_vectors} documents carry {version}, expected {len(ids)}")
        rng = random.Random(f"{name}:{version}")
        sample = rng.sample(range(len(ids)), min(READ_BACK_SAMPLE, len(ids)))
        back = await self.search.get_items(index, [ids[i] for i in sample])
        for i in sample:
            doc = back.get(ids[i])
            if doc is None or doc.get(verfield) != version:
                raise VerificationError(f"{index}: read-back of item {ids[i]!r} lacks version {version}")
            if not np.allclose(np.asarray(doc[vfield], dtype=np.float32), matrix[i], rtol=1e-6, atol=1e-6):
                raise VerificationError(
                    f"{index}: read-back vector of item {ids[i]!r} differs from the store's"
                )
        if len(ids) == 0:
            return 1.0
        params = gate_params(info.type.index, self.settings)
        total = 0.0
        position = {item_id: n for n, item_id in enumerate(ids)}
        for probe in probes:
            query = VersionedKnnQuery(
                location,
                info.type.similarity,
                probe.tolist(),
                RECALL_K,
                source_fields=(),
                # As serving asks: its candidates, re-scored exactly when the graph is quantized.
                candidates=int(params["candidates"]),
                ef_search=int(params["ef_search"]),
                rescore=info.type.index.encoder is not Encoder.FLOAT,
            )
            hits = await self.search.knn(query)
            scores = exact_scores(matrix, probe, info.type.similarity)
            total += recall_with_ties([h.item_id for h in hits], position, scores, RECALL_K)
        recall = total / len(probes)
        if recall < self.settings.recall_floor:
            raise VerificationError(
                f"{index}: recall@{RECALL_K} {recall:.3f} is below the floor {self.settings.recall_floor} "
                f"(measured with {', '.join(f'{k}={v}' for k, v in params.items())}, "
                f"querying {len(probes)} {asked_with})"
            )
        return recall


def documents(batch: Sequence[Item], vectors: ItemVectors, type_name: str, slot: Slot) -> list[ItemDocument]:
    """Documents for a batch: metadata, plus the slot's vector and version where the item has one."""
    rows = {item_id: i for i, item_id in enumerate(vectors.ids)}
    docs = []
    for item in batch:
        row = rows.get(item.item_id)
        slots: tuple[SlotVector, ...] = ()
        if row is not None:
            slots = (SlotVector.of(type_name, slot, vectors.version, vectors.matrix[row].tolist()),)
        docs.append(ItemDocument(item.item_id, item.document(), slots))
    return docs
