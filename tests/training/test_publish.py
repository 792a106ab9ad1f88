"""Publishing against the real Redis: manifest last, immutability, kill safety, concurrency."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import redis
from publish_support import (
    DIM,
    buckets_pattern,
    direct_type,
    indirect_type,
    items,
    snapshot,
    stored,
    stored_count,
    users,
    vectors,
)

from contract.keys import Keys, Kind
from contract.manifest import Buckets, Manifest
from contract.redis_clients import login_options
from contract.settings import Settings
from contract.types import Family
from contract.vectors import bucket_of, buckets_for, decode_one
from contract.versions import Frame
from training.publish import PublishError, PublishResult, VectorSet, hset_command, publish, read_manifest

FRAME = Frame.parse("2017-01-01..2017-07-01")
REPO = Path(__file__).resolve().parents[2]


def test_publish_writes_vectors_then_manifest_and_published_entry(
    redis_client: redis.Redis, keys: Keys
) -> None:
    etype = direct_type(redis_client, keys)
    u, i = users(30), items(7)
    result = publish(
        redis_client, keys, etype, FRAME, users=u, items=i, trainer={"algo": "als"}, chunk_size=4
    )

    assert isinstance(result, PublishResult) and result.created
    m = result.manifest
    assert (m.type_name, m.version, m.seq, m.dim) == (etype.name, FRAME.version_id, 1, DIM)
    assert (m.counts.user, m.counts.item, m.counts.attr) == (30, 7, 0)
    assert m.frame == FRAME and m.trainer == {"algo": "als"}
    assert read_manifest(redis_client, keys, etype.name, FRAME.version_id) == m
    assert redis_client.zrange(keys.published(etype.name), 0, -1, withscores=True) == [
        (FRAME.version_id.encode(), 1.0)
    ]
    assert m.buckets == Buckets(user=buckets_for(30), item=buckets_for(7), attr=1)
    found = stored(redis_client, keys, etype.name, FRAME.version_id, Kind.USER)
    assert len(found) == 30
    for row, uid in enumerate(u.ids):
        np.testing.assert_array_equal(decode_one(found[uid.encode()], DIM), u.matrix[row])
    assert stored_count(redis_client, keys, etype.name, FRAME.version_id, Kind.ITEM) == 7
    assert not redis_client.exists(keys.publish_lock(etype.name, FRAME.version_id))


def test_checksum_follows_the_documented_layout(redis_client: redis.Redis, keys: Keys) -> None:
    etype = direct_type(redis_client, keys)
    u, i = users(5), items(3)
    m = publish(redis_client, keys, etype, FRAME, users=u, items=i).manifest

    # Recomputed from the stored hashes exactly as docs/publishing.md describes it.
    digest = hashlib.sha256()
    for kind in sorted(Kind, key=lambda k: k.value):
        found = stored(redis_client, keys, etype.name, m.version, kind)
        if not found:
            continue
        ids = sorted(field.decode() for field in found)
        digest.update(f"{kind.value}\n{len(ids)}\n".encode())
        digest.update("".join(entity + "\n" for entity in ids).encode())
        digest.update(b"".join(found[entity.encode()] for entity in ids))
    assert m.checksum == digest.hexdigest()


def test_identical_republish_is_a_no_op(redis_client: redis.Redis, keys: Keys) -> None:
    etype = direct_type(redis_client, keys)
    first = publish(redis_client, keys, etype, FRAME, users=users(10), items=items(4))
    before = snapshot(redis_client, keys)
    # Same content in another row order: the checksum is over sorted records, so it is the same version.
    order = np.arange(10)[::-1]
    shuffled = VectorSet(tuple(np.array(users(10).ids)[order].tolist()), users(10).matrix[order])
    again = publish(
        redis_client, keys, etype, FRAME, users=shuffled, items=items(4), trainer={"other": "run"}
    )

    assert not again.created and again.manifest == first.manifest
    assert snapshot(redis_client, keys) == before


def test_different_content_under_a_published_version_is_refused(
    redis_client: redis.Redis, keys: Keys
) -> None:
    etype = direct_type(redis_client, keys)
    publish(redis_client, keys, etype, FRAME, users=users(10), items=items(4))
    before = snapshot(redis_client, keys)

    with pytest.raises(PublishError, match="already published with different content"):
        publish(redis_client, keys, etype, FRAME, users=users(10, seed=9), items=items(4))
    assert snapshot(redis_client, keys) == before


def test_a_half_published_version_is_invisible_to_readers(
    redis_client: redis.Redis, keys: Keys, settings: Settings
) -> None:
    etype = direct_type(redis_client, keys)
    reader = redis.Redis.from_url(settings.redis_endpoint, **login_options(settings))
    seen: list[tuple[int, int, int, bool]] = []

    def check(done: int, total: int) -> None:
        # Another connection, mid-publish: no manifest, no published entry, whatever vectors exist.
        count = stored_count(reader, keys, etype.name, FRAME.version_id, Kind.USER)
        visible = bool(reader.exists(keys.manifest(etype.name, FRAME.version_id))) or bool(
            reader.zcard(keys.published(etype.name))
        )
        seen.append((done, total, count, visible))

    worker = threading.Thread(
        target=publish,
        args=(redis_client, keys, etype, FRAME),
        kwargs={"users": users(200), "items": items(50), "chunk_size": 25, "progress": check},
    )
    worker.start()
    worker.join(timeout=60)
    reader.close()

    assert not worker.is_alive()
    assert len(seen) == 1 + 200 // 25 + 50 // 25  # the start, then every chunk
    assert [done for done, *_ in seen] == sorted(done for done, *_ in seen)
    assert any(0 < count < 200 for _, _, count, _ in seen)  # readers did run mid-way
    assert not any(visible for *_, visible in seen)
    assert read_manifest(redis_client, keys, etype.name, FRAME.version_id) is not None


_KILLABLE = """
import os, sys, time
import numpy as np, redis
from contract.keys import Keys
from contract.types import EmbeddingType
from contract.versions import Frame
from training.publish import VectorSet, publish
url, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
# The stack Redis's login, from the environment the test session set (stack.services.client_environment).
env = os.environ.get
login = {"username": env("LOCKSTEP_REDIS_USERNAME"), "password": env("LOCKSTEP_REDIS_PASSWORD")}
client = redis.Redis.from_url(url, **login)
etype = EmbeddingType(name="als-d8", family="direct-direct", dim=8, similarity="dot")
rng = np.random.default_rng(5)
def report(done, total):
    print(done, flush=True)
    time.sleep(0.02)  # slow enough to be killed mid-way, fast enough for a short test
publish(client, Keys(prefix), etype, Frame.parse("2017-01-01..2017-07-01"),
        users=VectorSet(tuple(f"u{i}" for i in range(n)), rng.standard_normal((n, 8)).astype(np.float32)),
        items=VectorSet(("1", "2"), rng.standard_normal((2, 8)).astype(np.float32)),
        chunk_size=100, progress=report, lock_ttl_seconds=1.0)
print("finished", flush=True)
"""


def test_a_killed_publish_leaves_no_version_and_a_rerun_completes(
    redis_client: redis.Redis, keys: Keys, settings: Settings
) -> None:
    etype = direct_type(redis_client, keys)
    n = 20_000
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE, settings.redis_endpoint, keys.prefix, str(n)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if int(line) >= 3000:  # several chunks are in Redis
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    partial = stored_count(redis_client, keys, etype.name, FRAME.version_id, Kind.USER)
    assert 3000 <= partial < n
    assert read_manifest(redis_client, keys, etype.name, FRAME.version_id) is None
    assert redis_client.zcard(keys.published(etype.name)) == 0
    assert redis_client.hexists(keys.vectors_pending(etype.name), FRAME.version_id)  # tells a rerun to clear

    # The re-run carries other content (fewer users): stale fields of the killed run must not survive.
    rerun_users = vectors([f"u{i}" for i in range(100, 600)], seed=8)
    result = publish(redis_client, keys, etype, FRAME, users=rerun_users, items=items(2))
    assert result.created and result.manifest.counts.user == 500
    assert stored_count(redis_client, keys, etype.name, FRAME.version_id, Kind.USER) == 500
    assert not redis_client.hexists(keys.vectors_pending(etype.name), FRAME.version_id)
    assert b"u0" not in stored(redis_client, keys, etype.name, FRAME.version_id, Kind.USER)
    # The killed run had 20,000 users in 313 buckets: none of the buckets beyond the re-run's 8 survive.
    assert len(list(redis_client.scan_iter(match=buckets_pattern(keys, etype.name, FRAME.version_id)))) == (
        buckets_for(500) + buckets_for(2)
    )


def test_two_versions_published_concurrently_both_complete(redis_client: redis.Redis, keys: Keys) -> None:
    etype = direct_type(redis_client, keys)
    frames = [Frame.parse("2017-01-01..2017-07-01"), Frame.parse("2017-01-01..2017-08-01")]
    results: dict[str, PublishResult] = {}

    def run(frame: Frame, seed: int) -> None:
        results[frame.version_id] = publish(
            redis_client, keys, etype, frame, users=users(2000, seed), items=items(300, seed), chunk_size=100
        )

    threads = [threading.Thread(target=run, args=(f, s)) for s, f in enumerate(frames)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert set(results) == {f.version_id for f in frames}
    assert sorted(r.manifest.seq for r in results.values()) == [1, 2]
    for frame in frames:
        m = results[frame.version_id].manifest
        assert read_manifest(redis_client, keys, etype.name, frame.version_id) == m
        assert redis_client.zscore(keys.published(etype.name), frame.version_id) == m.seq
        assert stored_count(redis_client, keys, etype.name, frame.version_id, Kind.USER) == 2000
        assert (m.counts.user, m.counts.item) == (2000, 300)


def test_two_publishers_of_the_same_version_agree_on_one(redis_client: redis.Redis, keys: Keys) -> None:
    etype = direct_type(redis_client, keys)
    results: list[PublishResult] = []
    lock = threading.Lock()

    def run() -> None:
        result = publish(redis_client, keys, etype, FRAME, users=users(3000), items=items(10), chunk_size=100)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert sorted(r.created for r in results) == [False, True]
    assert results[0].manifest == results[1].manifest
    assert redis_client.zcard(keys.published(etype.name)) == 1
    assert redis_client.get(keys.publish_seq(etype.name)) == b"1"


def test_indirect_families_publish_attributes(redis_client: redis.Redis, keys: Keys) -> None:
    etype = indirect_type(redis_client, keys, Family.INDIRECT_INDIRECT)
    attrs = vectors(["tag:fantasy", "author:j-k-rowling", "tag:sci-fi"], seed=3)
    m = publish(redis_client, keys, etype, FRAME, attributes=attrs).manifest
    assert (m.counts.user, m.counts.item, m.counts.attr) == (0, 0, 3)
    bucket = bucket_of("tag:fantasy", m.buckets.attr)
    assert redis_client.hexists(keys.vectors(etype.name, m.version, Kind.ATTRIBUTE, bucket), "tag:fantasy")
    loaded = Manifest.model_validate_json(redis_client.get(keys.manifest(etype.name, m.version)) or b"")
    assert loaded == m


def test_hand_packed_hset_matches_redis_py_packing(redis_client: redis.Redis) -> None:
    blob = np.arange(12, dtype="<f4").tobytes()
    ours = hset_command(b"k:vec", [b"b", b"c2"], blob, 1, 16)
    connection = redis_client.connection_pool.get_connection()
    try:
        theirs = b"".join(connection.pack_command("HSET", b"k:vec", b"b", blob[16:32], b"c2", blob[32:48]))
    finally:
        redis_client.connection_pool.release(connection)
    assert ours == theirs


def test_a_publish_refuses_while_another_holds_the_versions_lock(
    redis_client: redis.Redis, keys: Keys
) -> None:
    etype = direct_type(redis_client, keys)
    lock_key = keys.publish_lock(etype.name, FRAME.version_id)
    redis_client.set(lock_key, "someone", px=60_000)

    with pytest.raises(PublishError, match=r"another publish .* holds"):
        publish(redis_client, keys, etype, FRAME, users=users(3), items=items(2), lock_wait_seconds=0)

    assert redis_client.get(lock_key) == b"someone"
    assert read_manifest(redis_client, keys, etype.name, FRAME.version_id) is None


@pytest.mark.parametrize(("steal_at", "message"), [(4, "it expired"), (10, "before the manifest")])
def test_a_publish_whose_lock_was_taken_over_stops_unpublished(
    redis_client: redis.Redis, keys: Keys, steal_at: int, message: str
) -> None:
    """The lock expired and someone else took it: mid-write (the refresh fails) or before the commit."""
    etype = direct_type(redis_client, keys)
    lock_key = keys.publish_lock(etype.name, FRAME.version_id)

    def take_over(done: int, total: int) -> None:
        if done == steal_at:
            redis_client.set(lock_key, "someone", px=60_000)

    with pytest.raises(PublishError, match=f"lost the publish lock .*{message}"):
        publish(
            redis_client, keys, etype, FRAME, users=users(8), items=items(2), chunk_size=4, progress=take_over
        )

    assert redis_client.get(lock_key) == b"someone"  # our release leaves the new holder's lock alone
    assert read_manifest(redis_client, keys, etype.name, FRAME.version_id) is None
    assert not redis_client.zrange(keys.published(etype.name), 0, -1)
