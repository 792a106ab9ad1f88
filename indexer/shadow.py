"""Shadow mode: build a fresh index per version, verify it, swap the alias, then advance in_use."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from opensearchpy import OpenSearch

from contract.indexing import (
    IndexedLocation,
    Mode,
    Slot,
    items_alias,
    shadow_index,
    vector_field,
    version_field,
)
from contract.settings import Settings
from contract.wire import TypeInfo
from indexer import promotion
from indexer.bulk import BulkWriter
from indexer.catalog import Item, id_digest
from indexer.errors import InUseConflictError, OrchestratorError, VerificationError
from indexer.metrics import IndexerMetrics
from indexer.orchestrator_client import ItemVectors, OrchestratorClient
from indexer.progress import BuildProgress
from indexer.recall import exact_scores, recall_with_ties
from search import engine
from search import item_indices as ix
from search.requests import ItemDocument, SlotVector, VersionedKnnQuery, count_body, index_action
from search.templates import install_items_template, vector_slot_mappings

log = logging.getLogger("lockstep.indexer.shadow")

READ_BACK_SAMPLE = 20
RECALL_QUERIES = 50
RECALL_K = 10


@dataclass
class BuildTimings:
    """Seconds spent per phase of one build."""

    fetch: float = 0.0
    bulk: float = 0.0
    refresh_merge: float = 0.0
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
    docs: int = 0
    timings: BuildTimings = field(default_factory=BuildTimings)
    removed: list[str] = field(default_factory=list)
    held_back: str | None = None
    cleared_live_docs: int = 0  # documents whose live-index slots of this type went (after a switch)


def location_of(settings: Settings, type_name: str, version: str, item_count: int) -> IndexedLocation:
    """Where a shadow-built version lives: its own index, slot A's fields."""
    return IndexedLocation(
        version=version,
        mode=Mode.SHADOW,
        index=shadow_index(settings.index_prefix, type_name, version),
        vector_field=vector_field(type_name, Slot.A),
        version_field=version_field(type_name, Slot.A),
        indexed_at=datetime.now(UTC),
        item_count=item_count,
    )


class ShadowIndexer:
    """Runs shadow cycles for a set of types against one catalog."""

    def __init__(
        self,
        settings: Settings,
        search: OpenSearch,
        orchestrator: OrchestratorClient,
        catalog: Sequence[Item],
        metrics: IndexerMetrics,
        *,
        batch_size: int = 500,
        progress: bool = False,
        merge: bool = True,
        step: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.search = search
        self.orchestrator = orchestrator
        self.catalog = list(catalog)
        self.metrics = metrics
        self.batch_size = batch_size
        self.progress = progress
        self.merge = merge
        # Called between every phase and batch: the crash tests slow the build down through it.
        self.step = step or (lambda _where: None)

    def cycle(self, info: TypeInfo, still_locked: Callable[[], None] = lambda: None) -> ShadowResult:
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
        targets = set(engine.alias_targets(self.search, alias))
        keep = {loc.index for loc in recorded.values()} | targets
        for index in ix.shadow_indices(self.search, self.settings.index_prefix, name):
            if index not in keep:
                # Left by a crashed or failed build: never verified, nothing points at it.
                log.info("removing unverified index", extra={"index": index, "type": name})
                engine.delete_index(self.search, index)
                result.removed.append(index)
        latest = info.latest
        if latest is None:
            return result
        decision = promotion.decide(info, lambda: self.orchestrator.in_use_history(name))
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
                engine.swap_alias(self.search, alias, current.index)
            self.retire(info, recorded, result)
            return result
        result.index = shadow_index(self.settings.index_prefix, name, latest)
        if latest not in recorded:
            location = self.build(info, latest, result)
            still_locked()
            # Recorded before the alias moves: the alias only ever points at a verified, recorded index.
            self.orchestrator.record_indexed(name, location)
            recorded[latest] = location
            result.built = True
        self.step("before-alias")
        still_locked()
        if targets != {result.index}:
            engine.swap_alias(self.search, alias, result.index)
        self.step("before-in-use")
        if decision.promote:
            still_locked()
            self.promote(info, latest, recorded[latest].item_count)
            result.promoted = True
        self.retire(info, recorded, result)
        return result

    def promote(self, info: TypeInfo, latest: str, item_count: int) -> None:
        """Advance in_use by compare-and-set, after refreshing the record's time (grace starts now)."""
        name = info.type.name
        self.orchestrator.record_indexed(name, location_of(self.settings, name, latest, item_count))
        try:
            self.orchestrator.set_in_use(
                name, info.in_use, latest, reason=f"shadow build of {latest} verified"
            )
        except InUseConflictError:
            now = self.orchestrator.type_info(name).in_use
            if now != latest:
                raise
        self.metrics.promotions.labels("shadow", name).inc()
        published = next((v for v in info.published if v.version == latest), None)
        if published is not None:
            self.metrics.freshness_seconds.labels("shadow", name).set(
                (datetime.now(UTC) - published.created_at).total_seconds()
            )
        log.info("in_use advanced", extra={"type": name, "from": info.in_use, "to": latest})

    def retire(self, info: TypeInfo, recorded: dict[str, IndexedLocation], result: ShadowResult) -> None:
        """Delete indices past grace and beyond the retention count (never in_use's or latest's)."""
        fresh = self.orchestrator.type_info(info.type.name)
        in_use = fresh.in_use
        since = recorded[in_use].indexed_at if in_use in recorded else None
        if since is None:
            return
        grace = timedelta(seconds=self.settings.slot_grace_seconds + self.settings.request_timeout_seconds)
        if datetime.now(UTC) < since + grace:
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
                self.orchestrator.forget_indexed(info.type.name, version)
            except OrchestratorError as exc:
                log.warning("not retiring index", extra={"version": version, "reason": str(exc)})
                continue
            engine.delete_index(self.search, recorded[version].index)
            result.removed.append(recorded[version].index)
            log.info("retired index", extra={"index": recorded[version].index, "version": version})

    def build(self, info: TypeInfo, version: str, result: ShadowResult) -> IndexedLocation:
        """Create, fill, refresh and verify the version's index; raise before anything points at it."""
        name = info.type.name
        index = shadow_index(self.settings.index_prefix, name, version)
        if engine.index_exists(self.search, index):
            engine.delete_index(self.search, index)
        install_items_template(self.search, self.settings)
        ix.create_building_index(
            self.search,
            index,
            vector_slot_mappings(info.type, self.settings, (Slot.A,)),
            self.settings.hnsw_ef_search,
            meta={"lockstep": {"type": name, "version": version, "state": "building"}},
        )
        self.step("created")
        t = result.timings
        ids_all: list[str] = []
        rows: list[np.ndarray] = []
        written = self.metrics.docs_indexed.labels("shadow", name).inc
        with (
            BuildProgress(self.progress, f"shadow {name} {version}", len(self.catalog)) as bar,
            BulkWriter(
                self.search, self.settings.indexer_bulk_workers, f"shadow build of {name} {version}", written
            ) as writer,
        ):
            bulk_began = time.perf_counter()
            for start in range(0, len(self.catalog), self.batch_size):
                batch = self.catalog[start : start + self.batch_size]
                began = time.perf_counter()
                vectors = self.orchestrator.item_vectors(name, version, [i.item_id for i in batch])
                t.fetch += time.perf_counter() - began
                writes = [index_action(index, doc) for doc in documents(batch, vectors, name, Slot.A)]
                # Chunks are indexed while the next batch is fetched; a rejection raises here or at drain.
                writer.submit(writes)
                ids_all.extend(vectors.ids)
                rows.append(vectors.matrix)
                result.docs += len(writes)
                bar.advance(len(batch))
                self.step("batch")
            writer.drain()
            # Fetch and bulk overlap: bulk is the wall time of the loop not spent fetching.
            t.bulk += time.perf_counter() - bulk_began - t.fetch
        began = time.perf_counter()
        ix.finish_build(self.search, index)
        if self.merge:
            ix.force_merge(self.search, index)
        t.refresh_merge += time.perf_counter() - began
        self.step("refreshed")
        began = time.perf_counter()
        matrix = np.concatenate(rows) if rows else np.zeros((0, info.type.dim), dtype=np.float32)
        result.recall = self.verify(info, version, index, ids_all, matrix)
        t.verify += time.perf_counter() - began
        ix.set_index_meta(
            self.search, index, {"lockstep": {"type": name, "version": version, "state": "verified"}}
        )
        self.step("verified")
        log.info(
            "shadow build verified",
            extra={"type": name, "version": version, "index": index, "recall": result.recall, **t.as_dict()},
        )
        return location_of(self.settings, name, version, len(self.catalog))

    def verify(self, info: TypeInfo, version: str, index: str, ids: list[str], matrix: np.ndarray) -> float:
        """Count, id digest, read-back and recall@10 against exact; raise VerificationError on any miss."""
        name = info.type.name
        vfield, verfield = vector_field(name, Slot.A), version_field(name, Slot.A)
        expected = len(self.catalog)
        location = location_of(self.settings, name, version, expected)
        found = engine.count(self.search, index)
        if found != expected:
            raise VerificationError(f"{index}: {found} documents visible, catalog has {expected}")
        if id_digest(engine.iter_item_ids(self.search, index)) != id_digest(i.item_id for i in self.catalog):
            raise VerificationError(f"{index}: the ids in the index differ from the catalog's")
        with_vectors = engine.count(self.search, index, count_body(location))
        if with_vectors != len(ids):
            raise VerificationError(f"{index}: {with_vectors} documents carry {version}, expected {len(ids)}")
        rng = random.Random(f"{name}:{version}")
        sample = rng.sample(range(len(ids)), min(READ_BACK_SAMPLE, len(ids)))
        back = engine.get_items(self.search, index, [ids[i] for i in sample])
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
        queries = rng.sample(range(len(ids)), min(RECALL_QUERIES, len(ids)))
        total = 0.0
        position = {item_id: n for n, item_id in enumerate(ids)}
        for q in queries:
            query = VersionedKnnQuery(
                location, info.type.similarity, matrix[q].tolist(), RECALL_K, source_fields=()
            )
            hits = engine.knn_search(self.search, query)
            scores = exact_scores(matrix, matrix[q], info.type.similarity)
            total += recall_with_ties([h.item_id for h in hits], position, scores, RECALL_K)
        recall = total / len(queries)
        if recall < self.settings.recall_floor:
            raise VerificationError(
                f"{index}: recall@{RECALL_K} {recall:.3f} is below the floor {self.settings.recall_floor}"
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
