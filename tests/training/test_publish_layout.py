"""The Redis layout of published vectors: bucket hashes, in listpack encoding, within the memory budget."""

from __future__ import annotations

import numpy as np
import redis
from publish_support import bucket_keys, vectors

from contract.keys import Keys, Kind
from contract.types import EmbeddingType, Family, Similarity
from contract.vectors import BUCKET_TARGET, bucket_of, buckets_for
from contract.versions import Frame
from training.publish import publish
from training.registry import register_type

FRAME = Frame.parse("2017-01-01..2017-07-01")


def _d64(client: redis.Redis, keys: Keys) -> EmbeddingType:
    etype = EmbeddingType(name="als-d64", family=Family.DIRECT_DIRECT, dim=64, similarity=Similarity.DOT)
    register_type(client, keys, etype)
    return etype


def test_each_vector_lives_in_the_bucket_its_id_hashes_to(redis_client: redis.Redis, keys: Keys) -> None:
    etype = _d64(redis_client, keys)
    users = vectors([f"u{i}" for i in range(1000)], seed=1, dim=64)
    m = publish(redis_client, keys, etype, FRAME, users=users, items=vectors(["1"], dim=64)).manifest

    assert m.buckets.user == buckets_for(1000) == 16 and m.buckets.item == 1
    assert len(bucket_keys(redis_client, keys, etype.name, m.version, Kind.USER)) == 16
    for row, uid in enumerate(users.ids):
        key = keys.vectors(etype.name, m.version, Kind.USER, bucket_of(uid, m.buckets.user))
        assert redis_client.hget(key, uid) == users.matrix[row].astype("<f4").tobytes()
    sizes = [redis_client.hlen(keys.vectors(etype.name, m.version, Kind.USER, b)) for b in range(16)]
    assert sum(sizes) == 1000 and max(sizes) < 2 * BUCKET_TARGET  # crc32 spreads ids evenly enough


def test_published_buckets_are_listpacks_within_the_memory_budget(
    redis_client: redis.Redis, keys: Keys
) -> None:
    etype = _d64(redis_client, keys)
    rng = np.random.default_rng(3)
    users = vectors([str(i) for i in range(3000)], seed=2, dim=64)
    items = vectors([str(rng.integers(10**9)) for _ in range(500)], seed=4, dim=64)
    m = publish(redis_client, keys, etype, FRAME, users=users, items=items).manifest

    names = [
        keys.vectors(etype.name, m.version, kind, b)
        for kind in (Kind.USER, Kind.ITEM)
        for b in range(m.buckets.of(kind))
    ]
    # Our redis-server runs with hash-max-listpack-value 4096 (stack.redis_server.HASH_TUNING): a 256-byte
    # vector keeps its bucket compact, a hashtable would cost ~100 bytes more per vector.
    assert {redis_client.object("ENCODING", name) for name in names} == {b"listpack"}
    used = sum(int(redis_client.memory_usage(name, samples=0) or 0) for name in names)
    assert used / 3500 <= 4 * 64 + 100
