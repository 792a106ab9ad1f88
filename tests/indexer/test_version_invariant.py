"""While both modes advance versions, versioned k-NN never mixes versions nor comes back empty."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import pytest
import redis
from indexer_support import CATALOG_SIZE, USERS, make_type, wait_latest

from contract.keys import Keys, Kind
from contract.settings import Settings
from contract.vectors import bucket_of, decode_one
from contract.wire import TypeInfo, UserVector
from indexer.metrics import IndexerMetrics
from indexer.scheduler import Runner
from search import engine
from search.requests import VersionedKnnQuery
from search.scores import to_similarity
from training.publish import read_manifest

SHADOW_TYPE = make_type("shadow-d8")
LIVE_TYPE = make_type("live-d8")


def _invariant_run(
    settings: Settings, publish_version, redis_client: redis.Redis, keys: Keys, seconds: float
) -> dict[str, int]:
    runners = {
        "shadow": Runner(settings, IndexerMetrics.create(), catalog_limit=CATALOG_SIZE, batch_size=100),
        "incremental": Runner(settings, IndexerMetrics.create(), catalog_limit=CATALOG_SIZE, batch_size=100),
    }
    types = {"shadow": [SHADOW_TYPE.name], "incremental": [LIVE_TYPE.name]}
    n = 1
    for etype in (SHADOW_TYPE, LIVE_TYPE):
        wait_latest(settings, etype.name, publish_version(etype, n))
    stop = threading.Event()
    threads = [
        threading.Thread(target=r.run_forever, args=(mode, 0.3, types[mode], stop), daemon=True)
        for mode, r in runners.items()
    ]
    for t in threads:
        t.start()
    reader = {"Authorization": f"Bearer {settings.reader_key.get_secret_value()}"}
    http = httpx.Client(base_url=settings.orchestrator_url, headers=reader, timeout=5)
    search = engine.build_client(settings, timeout=10)
    stats = {"queries": 0, "versions_seen": 0, "published": 1}
    seen: set[str] = set()
    rng = np.random.default_rng(0)
    deadline = time.monotonic() + seconds
    next_publish = time.monotonic() + seconds / 6
    try:
        while time.monotonic() < deadline:
            if time.monotonic() > next_publish:
                n += 1
                for etype in (SHADOW_TYPE, LIVE_TYPE):
                    publish_version(etype, n)
                stats["published"] = n
                next_publish = time.monotonic() + seconds / 6
            for etype in (SHADOW_TYPE, LIVE_TYPE):
                r = http.get(f"/v1/embedding-types/{etype.name}/users/u{rng.integers(USERS)}")
                if r.status_code == 409:  # no version in use yet
                    continue
                r.raise_for_status()
                user = UserVector.model_validate(r.json())
                info = TypeInfo.model_validate(http.get(f"/v1/embedding-types/{etype.name}").json())
                location = next(loc for loc in info.indexed if loc.version == user.version)
                hits = engine.knn_search(
                    search, VersionedKnnQuery(location, etype.similarity, user.vector, 10, source_fields=())
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
        for t in threads:
            t.join(timeout=60)
        http.close()
        search.close()
        for r in runners.values():
            r.close()
    stats["versions_seen"] = len(seen)
    return stats


def test_versioned_queries_never_mix_versions_while_both_modes_advance(
    orchestrator: Settings, publish_version, redis_client: redis.Redis, keys: Keys
) -> None:
    stats = _invariant_run(orchestrator, publish_version, redis_client, keys, 15.0)
    assert stats["queries"] > 20
    assert stats["versions_seen"] >= 4, stats  # in_use really moved in both modes during the run


@pytest.mark.soak
def test_versioned_queries_soak_60s(
    orchestrator: Settings, publish_version, redis_client: redis.Redis, keys: Keys
) -> None:
    stats = _invariant_run(orchestrator, publish_version, redis_client, keys, 60.0)
    assert stats["versions_seen"] >= 6, stats
