"""Publish throughput against a raw redis-py pipeline writing the same bytes; Redis memory per vector."""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import numpy as np
import redis

from bench.checks import at_least, at_most
from contract.keys import Keys, Kind
from contract.redis_clients import SyncRedis, sync_client
from contract.replication import UNCONFIRMED, Replication
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.vectors import buckets_for, buckets_of
from contract.versions import Frame
from training.publish import VectorSet, publish, read_manifest
from training.registry import register_type

USERS, ITEMS, DIM, CHUNK = 50_000, 10_000, 64, 2000
ROUNDS = 5
TARGET_RATIO = 0.8
TARGET_BYTES = 4 * DIM + 100
ETYPE = EmbeddingType(name="bench-d64", family=Family.DIRECT_DIRECT, dim=DIM, similarity=Similarity.DOT)


def run(settings: Settings, users: int = USERS, items: int = ITEMS, rounds: int = ROUNDS) -> dict[str, Any]:
    """Publish `users` + `items` d=64 vectors `rounds` times each way; report throughput ratio and memory."""
    client = cast(redis.Redis, sync_client(settings))
    keys = bench_keys(settings)
    sets = vector_sets(users, items)
    register_type(client, keys, ETYPE)
    ours: list[float] = []
    raw: list[float] = []
    try:
        for round_ in range(rounds):
            # Alternate, each on a fresh version, so neither side profits from a warmer server.
            raw.append(_raw_pipeline(client, keys, ETYPE.name, f"raw{round_}", sets))
            ours.append(timed_publish(client, keys, round_, sets))
        # Measured after the last round, over every bucket hash of the first version: each bucket is a
        # listpack (on a Redis with hash-max-listpack-value >= 4*dim, as ours has), so a vector costs its
        # 256 bytes plus a few bytes of field and entry headers, plus its share of the bucket's key and
        # of jemalloc's size-class rounding of the listpack.
        first = read_manifest(client, keys, ETYPE.name, Frame.parse("2017-01-01..2017-02-02").version_id)
        assert first is not None
        memory = {
            kind.value: sum(
                _memory(client, keys.vectors(ETYPE.name, first.version, kind, bucket))
                for bucket in range(first.buckets.of(kind))
            )
            / len(sets[kind].ids)
            for kind in sets
        }
    finally:
        delete_prefix(client, keys)
        client.close()
    vectors = users + items
    ours_best, raw_best = min(ours), min(raw)
    per_vector = (memory["user"] * users + memory["item"] * items) / vectors
    return {
        "vectors": vectors,
        "dim": DIM,
        "publish_seconds": round(ours_best, 4),
        "raw_pipeline_seconds": round(raw_best, 4),
        "publish_vectors_per_second": round(vectors / ours_best),
        "raw_vectors_per_second": round(vectors / raw_best),
        "throughput_ratio": round(raw_best / ours_best, 3),
        "memory_bytes_per_vector": round(per_vector, 1),
        "memory_bytes_per_vector_by_kind": {kind: round(value, 1) for kind, value in memory.items()},
        "checks": [
            at_least("throughput vs raw pipeline", round(raw_best / ours_best, 3), TARGET_RATIO),
            at_most("Redis bytes per vector", round(per_vector, 1), TARGET_BYTES, unit=" B"),
        ],
    }


def bench_keys(settings: Settings) -> Keys:
    """Keys under a prefix of this run's own, so `_delete_prefix` removes only what the run wrote."""
    return Keys(f"{settings.key_prefix}-bench-{uuid.uuid4().hex[:8]}")


def vector_sets(users: int, items: int) -> dict[Kind, VectorSet]:
    """The users and items to publish: random d=64 vectors, the same ones in every run (seed 0)."""
    rng = np.random.default_rng(0)
    return {
        Kind.USER: VectorSet(
            tuple(str(i) for i in range(users)), rng.standard_normal((users, DIM)).astype(np.float32)
        ),
        Kind.ITEM: VectorSet(
            tuple(str(i) for i in range(items)), rng.standard_normal((items, DIM)).astype(np.float32)
        ),
    }


def timed_publish(
    client: SyncRedis,
    keys: Keys,
    round_: int,
    sets: dict[Kind, VectorSet],
    replication: Replication = UNCONFIRMED,
) -> float:
    """Seconds `publish` takes for `sets`, as the round's own version (a fresh frame per round)."""
    frame = Frame.parse(f"2017-01-01..2017-02-{round_ + 2:02d}")
    started = time.perf_counter()
    publish(
        client,
        keys,
        ETYPE,
        frame,
        users=sets[Kind.USER],
        items=sets[Kind.ITEM],
        chunk_size=CHUNK,
        replication=replication,
    )
    return time.perf_counter() - started


def _raw_pipeline(
    client: redis.Redis, keys: Keys, type_name: str, version: str, sets: dict[Kind, VectorSet]
) -> float:
    """The baseline: the same bytes in the same bucket hashes, in chunks, no validation and no manifest."""
    started = time.perf_counter()
    row = 4 * DIM
    for kind, vs in sets.items():
        buckets = buckets_for(len(vs.ids))
        groups: dict[int, list[int]] = {}
        for index, bucket in enumerate(buckets_of(vs.ids, buckets).tolist()):
            groups.setdefault(bucket, []).append(index)
        blob = vs.matrix.tobytes()
        # Rows bucket by bucket, in chunks of CHUNK rows: one flat HSET per bucket run, one round trip
        # per chunk (the fastest raw form we know, so the ratio is our whole overhead).
        pipe = client.pipeline(transaction=False)
        queued = 0
        for bucket, rows in sorted(groups.items()):
            for start in range(0, len(rows), CHUNK):
                part = rows[start : start + CHUNK]
                args: list[str | bytes] = [""] * (2 * len(part))
                args[0::2] = [vs.ids[r] for r in part]
                args[1::2] = [blob[r * row : (r + 1) * row] for r in part]
                pipe.execute_command("HSET", keys.vectors(type_name, version, kind, bucket), *args)  # type: ignore[no-untyped-call]
                queued += len(part)
                if queued >= CHUNK:
                    pipe.execute()
                    queued = 0
        pipe.execute()
    return time.perf_counter() - started


def _memory(client: redis.Redis, key: str) -> float:
    # SAMPLES 0: measure every field, not an estimate from five.
    return float(client.memory_usage(key, samples=0) or 0)


def delete_prefix(client: SyncRedis, keys: Keys) -> None:
    names = list(client.scan_iter(match=keys.all_keys_pattern(), count=1000))
    for start in range(0, len(names), 1000):
        client.unlink(*names[start : start + 1000])


if __name__ == "__main__":
    import json

    print(json.dumps(run(Settings()), indent=2))
