"""While both modes advance versions, versioned k-NN never mixes versions nor comes back empty."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import redis
from catalog_loading import load_goodbooks
from indexer_support import CATALOG_SIZE, USERS, make_type, wait_latest

from contract.keys import Keys, Kind
from contract.settings import Settings
from contract.vectors import bucket_of, decode_one
from indexer.metrics import IndexerMetrics
from indexer.scheduler import Runner, connect_orchestrator
from orchestrator_client import OrchestratorClient
from orchestrator_client.errors import NoVersionInUse
from search.client import build_client
from search.requests import VersionedKnnQuery
from search.scores import to_similarity
from training.publish import read_manifest

SHADOW_TYPE = make_type("shadow-d8")
LIVE_TYPE = make_type("live-d8")

pytestmark = pytest.mark.anyio


async def _invariant_run(
    settings: Settings, publish_version, redis_client: redis.Redis, keys: Keys, seconds: float, versions: int
) -> dict[str, int]:
    """Query for `seconds`, and on until `versions` (type, version) pairs were served (a slow cluster)."""
    # The runners' own clock and a grace of 1 s: incremental slots are reused while the run lasts.
    settings = settings.model_copy(update={"slot_grace_seconds": 1.0})
    load_goodbooks(settings, CATALOG_SIZE)
    runners = {
        "shadow": Runner(settings, IndexerMetrics.create(), batch_size=100),
        "incremental": Runner(settings, IndexerMetrics.create(), batch_size=100),
    }
    types = {"shadow": [SHADOW_TYPE.name], "incremental": [LIVE_TYPE.name]}
    n = 1
    for etype in (SHADOW_TYPE, LIVE_TYPE):
        await wait_latest(settings, etype.name, publish_version(etype, n))
    stop = asyncio.Event()
    cycles = [asyncio.create_task(r.run_forever(mode, 0.3, types[mode], stop)) for mode, r in runners.items()]
    reader = OrchestratorClient(settings.orchestrator_url, settings.reader_key.get_secret_value(), timeout=5)
    orchestrator = connect_orchestrator(settings)
    search = build_client(settings, timeout=10)
    stats = {"queries": 0, "versions_seen": 0, "published": 1}
    seen: set[str] = set()
    rng = np.random.default_rng(0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    give_up = loop.time() + 10 * seconds  # only so a stuck indexer fails the test instead of hanging it
    next_publish = loop.time() + seconds / 6
    try:
        while loop.time() < deadline or (len(seen) < versions and loop.time() < give_up):
            if loop.time() > next_publish:
                n += 1
                for etype in (SHADOW_TYPE, LIVE_TYPE):
                    publish_version(etype, n)
                stats["published"] = n
                next_publish = loop.time() + seconds / 6
            for etype in (SHADOW_TYPE, LIVE_TYPE):
                try:
                    user = await reader.user_vector(etype.name, f"u{rng.integers(USERS)}")
                except NoVersionInUse:  # not yet
                    continue
                info = await orchestrator.type_info(etype.name)
                location = next(loc for loc in info.indexed if loc.version == user.version)
                hits = await search.knn(
                    VersionedKnnQuery(location, etype.similarity, user.vector, 10, source_fields=())
                )
                stats["queries"] += 1
                seen.add(f"{etype.name}:{user.version}")
                assert len(hits) == 10, f"{etype.name} {user.version}: {len(hits)} hits"
                assert all(h.version == user.version for h in hits), [h.version for h in hits]
                # The top score is the model similarity with that version's own vector of the item.
                manifest = read_manifest(redis_client, keys, etype.name, user.version)
                assert manifest is not None
                bucket = bucket_of(hits[0].item_id, manifest.buckets.item)
                raw = redis_client.hget(
                    keys.vectors(etype.name, user.version, Kind.ITEM, bucket), hits[0].item_id
                )
                assert raw is not None
                item = decode_one(raw, etype.dim)
                q = np.asarray(user.vector, dtype=np.float32)
                expected = float(item @ q / (np.linalg.norm(item) * np.linalg.norm(q)))
                assert abs(to_similarity(etype.similarity, hits[0].raw_score) - expected) < 1e-3
    finally:
        stop.set()
        await asyncio.gather(*cycles)
        await reader.aclose()
        await orchestrator.aclose()
        await search.aclose()
        for r in runners.values():
            await r.aclose()
    stats["versions_seen"] = len(seen)
    return stats


async def test_versioned_queries_never_mix_versions_while_both_modes_advance(
    orchestrator: Settings, publish_version, redis_client: redis.Redis, keys: Keys
) -> None:
    stats = await _invariant_run(orchestrator, publish_version, redis_client, keys, 15.0, 4)
    assert stats["queries"] > 20
    assert stats["versions_seen"] >= 4, stats  # in_use really moved in both modes during the run


@pytest.mark.soak
async def test_versioned_queries_soak_60s(
    orchestrator: Settings, publish_version, redis_client: redis.Redis, keys: Keys
) -> None:
    stats = await _invariant_run(orchestrator, publish_version, redis_client, keys, 60.0, 6)
    assert stats["versions_seen"] >= 6, stats
