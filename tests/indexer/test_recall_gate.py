"""The recall gate queries a new index with the vectors serving will query it with: the version's users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis
from indexer_support import USERS, RunnerFactory, make_type, wait_latest

from contract.keys import Keys, Kind
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.vectors import bucket_of, buckets_for
from contract.versions import Frame
from indexer.scheduler import Runner
from indexer.shadow import RECALL_QUERIES, ShadowIndexer
from training.publish import VectorSet, publish
from training.registry import register_type

pytestmark = pytest.mark.anyio


def stored_users(client: redis.Redis, keys: Keys, etype: EmbeddingType, version: str) -> set[bytes]:
    """The bytes of every user vector of the version (publish_version's users are u0..u39)."""
    buckets = buckets_for(USERS)
    found = set()
    for user in (f"u{j}" for j in range(USERS)):
        raw = client.hget(keys.vectors(etype.name, version, Kind.USER, bucket_of(user, buckets)), user)
        assert isinstance(raw, bytes)
        found.add(raw)
    return found


def shadow_of(runner: Runner) -> ShadowIndexer:
    return ShadowIndexer(runner.settings, runner.search, runner.orchestrator, [], runner.metrics)


async def test_the_gate_queries_with_the_versions_user_vectors_and_says_so(
    orchestrator: Settings,
    publish_version,
    make_runner: RunnerFactory,
    redis_client: redis.Redis,
    keys: Keys,
) -> None:
    etype = make_type()
    v1 = publish_version(etype, 1)
    v2 = publish_version(etype, 2)  # other users' vectors: the gate of v1 must not query with them
    await wait_latest(orchestrator, etype.name, v2)
    runner = make_runner(orchestrator)
    items = np.random.default_rng(0).normal(size=(300, etype.dim)).astype(np.float32)
    probes, asked_with = await shadow_of(runner).recall_probes(etype.name, v1, items)
    assert asked_with == "user vectors"
    assert len(probes) == min(USERS, RECALL_QUERIES)
    assert {row.astype("<f4").tobytes() for row in probes} == stored_users(redis_client, keys, etype, v1)

    (result,) = (await runner.shadow()).results
    assert result.promoted and result.recall is not None and result.recall >= orchestrator.recall_floor
    assert result.recall_params["queries"] == "user vectors"


async def test_a_version_without_user_vectors_is_gated_on_its_items(
    orchestrator: Settings, make_runner: RunnerFactory, redis_client: redis.Redis, keys: Keys
) -> None:
    etype = EmbeddingType(
        name="tagged-d8",
        family=Family.INDIRECT_DIRECT,
        dim=8,
        similarity=Similarity.COSINE,
        attribute_namespaces=("tag",),
    )
    runner = make_runner(orchestrator)  # loads the catalog whose ids the items take
    ids = tuple(i.item_id for i in await runner.catalog())
    rng = np.random.default_rng(5)
    start = datetime(2017, 1, 1, tzinfo=UTC)
    register_type(redis_client, keys, etype)
    version = publish(
        redis_client,
        keys,
        etype,
        Frame(start, start + timedelta(days=30)),
        items=VectorSet(ids, rng.normal(size=(len(ids), 8)).astype(np.float32)),
        attributes=VectorSet(("tag:a",), np.ones((1, 8), np.float32)),
    ).manifest.version
    await wait_latest(orchestrator, etype.name, version)
    items = rng.normal(size=(len(ids), 8)).astype(np.float32)
    probes, asked_with = await shadow_of(runner).recall_probes(etype.name, version, items)
    assert asked_with == "item vectors" and len(probes) == RECALL_QUERIES
    assert all(any(np.array_equal(p, row) for row in items) for p in probes)

    (result,) = (await runner.shadow()).results
    assert result.promoted and result.recall_params["queries"] == "item vectors"
