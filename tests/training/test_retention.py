"""Retention against the real Redis: GC keeps newest N, in_use and indexed; delete is manifest-first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from publish_support import buckets_pattern, direct_type, items, stored, stored_count, users
from typer.testing import CliRunner

from cli.main import app
from contract.keys import Keys, Kind
from contract.manifest import Buckets, Counts, Manifest
from contract.settings import Settings
from contract.versions import Frame
from training import leftovers
from training.publish import publish, read_manifest
from training.retention import (
    UnknownVersion,
    VersionInUse,
    delete_version,
    gc,
    list_versions,
    plan_gc,
    remove_orphans,
    unreadable_versions,
)
from training.validation import PublishError

START = datetime(2017, 1, 1, tzinfo=UTC)


def _frames(n: int) -> list[Frame]:
    return [Frame(START, START + timedelta(days=30 * (k + 1))) for k in range(n)]


def _publish_all(client: redis.Redis, keys: Keys, n: int) -> list[str]:
    etype = direct_type(client, keys)
    for k, frame in enumerate(_frames(n)):
        # 200 users: four bucket hashes each, so deletion must find them all.
        publish(client, keys, etype, frame, users=users(200, seed=k), items=items(5, seed=k))
    return [f.version_id for f in _frames(n)]


def test_gc_keeps_newest_in_use_and_indexed_and_deletes_the_rest(
    redis_client: redis.Redis, keys: Keys
) -> None:
    versions = _publish_all(redis_client, keys, 5)
    redis_client.set(keys.in_use("als-d8"), versions[0])
    redis_client.hset(keys.indexed("als-d8"), versions[1], "{}")

    dry = gc(redis_client, keys, keep=1, dry_run=True)
    assert dry[0].delete == (versions[2], versions[3])
    assert [v.version for v in list_versions(redis_client, keys, "als-d8")] == versions  # nothing deleted

    plan = gc(redis_client, keys, keep=1)[0]
    assert dict(plan.keep) == {
        versions[0]: "in use",
        versions[1]: "indexed (rollback target)",
        versions[4]: "among the newest 1",
    }
    assert [v.version for v in list_versions(redis_client, keys, "als-d8")] == [
        versions[0],
        versions[1],
        versions[4],
    ]
    for gone in versions[2:4]:
        assert not redis_client.exists(keys.manifest("als-d8", gone))
        assert not list(redis_client.scan_iter(match=buckets_pattern(keys, "als-d8", gone)))
        assert redis_client.zscore(keys.published("als-d8"), gone) is None
    assert stored_count(redis_client, keys, "als-d8", versions[0], Kind.USER) == 200


def test_deleting_the_in_use_version_is_refused(redis_client: redis.Redis, keys: Keys) -> None:
    versions = _publish_all(redis_client, keys, 2)
    redis_client.set(keys.in_use("als-d8"), versions[1])
    with pytest.raises(VersionInUse, match="in use"):
        delete_version(redis_client, keys, "als-d8", versions[1])
    assert redis_client.exists(keys.manifest("als-d8", versions[1]))
    with pytest.raises(UnknownVersion):
        delete_version(redis_client, keys, "als-d8", "20990101T000000Z-20990201T000000Z")
    with pytest.raises(PublishError, match="keep must be >= 1"):
        gc(redis_client, keys, keep=0)


def test_delete_removes_manifest_and_entry_together_then_vectors(
    redis_client: redis.Redis, keys: Keys
) -> None:
    versions = _publish_all(redis_client, keys, 2)
    manifest = delete_version(redis_client, keys, "als-d8", versions[0])
    assert manifest is not None and manifest.version == versions[0]
    assert redis_client.zrange(keys.published("als-d8"), 0, -1) == [versions[1].encode()]
    assert not redis_client.exists(keys.manifest("als-d8", versions[0]))
    assert not list(redis_client.scan_iter(match=buckets_pattern(keys, "als-d8", versions[0])))
    assert stored_count(redis_client, keys, "als-d8", versions[1], Kind.USER) == 200
    # A deleted version can be published again (a new seq): ids name frames, not contents.
    etype = direct_type(redis_client, keys)
    again = publish(
        redis_client, keys, etype, _frames(1)[0], users=users(200, seed=0), items=items(5, seed=0)
    )
    assert again.created and again.manifest.seq == 3
    assert not redis_client.hexists(keys.vectors_pending("als-d8"), versions[0])


def test_a_republish_after_a_delete_killed_midway_keeps_no_stale_vectors(
    redis_client: redis.Redis, keys: Keys
) -> None:
    versions = _publish_all(redis_client, keys, 1)
    # What delete_version's script leaves if the process dies before its UNLINKs: no manifest, a mark
    # naming the deleted manifest's buckets.
    manifest = read_manifest(redis_client, keys, "als-d8", versions[0])
    assert manifest is not None
    with redis_client.pipeline(transaction=True) as pipe:
        pipe.delete(keys.manifest("als-d8", versions[0]))
        pipe.zrem(keys.published("als-d8"), versions[0])
        pipe.hset(keys.vectors_pending("als-d8"), versions[0], leftovers.mark(manifest.buckets))
        pipe.execute()
    etype = direct_type(redis_client, keys)
    fewer = users(200, seed=5)
    fewer = type(fewer)(fewer.ids[100:], fewer.matrix[100:])  # u100..u199, other vectors
    again = publish(redis_client, keys, etype, _frames(1)[0], users=fewer, items=items(5, seed=0))

    assert again.created and stored_count(redis_client, keys, "als-d8", versions[0], Kind.USER) == 100
    assert b"u0" not in stored(redis_client, keys, "als-d8", versions[0], Kind.USER)
    assert not redis_client.hexists(keys.vectors_pending("als-d8"), versions[0])


def test_gc_removes_orphans_of_killed_publishes_but_not_of_running_ones(
    redis_client: redis.Redis, keys: Keys
) -> None:
    versions = _publish_all(redis_client, keys, 1)
    orphan, running = "20180101T000000Z-20180201T000000Z", "20180101T000000Z-20180301T000000Z"
    # A killed publish may leave any buckets of any kind, within the counts it marked before writing.
    for version in (orphan, running):
        leftovers.mark_pending(redis_client, keys, "als-d8", version, Buckets(user=4, item=1, attr=1))
    redis_client.hset(keys.vectors("als-d8", orphan, Kind.USER, 3), "u1", b"\0" * 32)
    redis_client.hset(keys.vectors("als-d8", orphan, Kind.ITEM, 0), "1", b"\0" * 32)
    redis_client.hset(keys.vectors("als-d8", running, Kind.USER, 0), "u1", b"\0" * 32)
    redis_client.set(keys.publish_lock("als-d8", running), "someone", px=10_000)

    assert remove_orphans(redis_client, keys, "als-d8") == [orphan]
    assert not list(redis_client.scan_iter(match=buckets_pattern(keys, "als-d8", orphan)))
    assert redis_client.exists(keys.vectors("als-d8", running, Kind.USER, 0))
    assert redis_client.get(keys.publish_lock("als-d8", running)) == b"someone"
    assert stored_count(redis_client, keys, "als-d8", versions[0], Kind.USER) == 200


def _manifest(version: str, seq: int) -> Manifest:
    frame = Frame.from_version_id(version)
    return Manifest(
        type_name="t",
        version=version,
        seq=seq,
        frame_start=frame.start,
        frame_end=frame.end,
        dim=1,
        counts=Counts(),
        buckets=Buckets(),
        checksum="x",
        created_at=START,
    )


@st.composite
def _published(draw: st.DrawFn) -> list[Manifest]:
    ends = draw(st.lists(st.integers(1, 12), min_size=1, max_size=10))
    seen: set[str] = set()
    manifests = []
    for seq, end in enumerate(ends, start=1):
        days = draw(st.integers(0, 3))
        frame = Frame(START + timedelta(days=days), START + timedelta(days=30 * end))
        if frame.version_id not in seen:
            seen.add(frame.version_id)
            manifests.append(_manifest(frame.version_id, seq))
    return manifests


@given(_published(), st.data(), st.integers(1, 5))
def test_gc_plan_never_deletes_in_use_or_indexed_and_keeps_the_newest(
    manifests: list[Manifest], data: st.DataObject, keep: int
) -> None:
    names = [m.version for m in manifests]
    in_use = data.draw(st.none() | st.sampled_from(names))
    indexed = set(data.draw(st.lists(st.sampled_from(names), max_size=3)))
    plan = plan_gc("t", manifests, in_use, indexed, keep)

    kept = {v for v, _ in plan.keep}
    assert kept.isdisjoint(plan.delete) and kept | set(plan.delete) == set(names)
    assert in_use is None or in_use in kept
    assert indexed <= kept
    newest = sorted(manifests, key=lambda m: m.order)[-keep:]
    assert {m.version for m in newest} <= kept
    assert len(kept) <= keep + len(indexed) + 1


def _break_manifest(client: redis.Redis, keys: Keys, version: str) -> None:
    """What an older Lockstep left behind: a manifest without the `buckets` field."""
    stored = json.loads(client.get(keys.manifest("als-d8", version)) or b"")
    del stored["buckets"]
    client.set(keys.manifest("als-d8", version), json.dumps(stored))


def test_an_unreadable_version_is_listed_apart_and_deleted_with_its_vectors(
    redis_client: redis.Redis, keys: Keys
) -> None:
    versions = _publish_all(redis_client, keys, 3)
    _break_manifest(redis_client, keys, versions[1])
    assert [m.version for m in list_versions(redis_client, keys, "als-d8")] == [versions[0], versions[2]]
    assert unreadable_versions(redis_client, keys, "als-d8") == {versions[1]: "buckets: Field required"}
    assert gc(redis_client, keys, keep=1, dry_run=True)[0].delete == (versions[0],)  # never touches it

    assert delete_version(redis_client, keys, "als-d8", versions[1]) is None
    assert unreadable_versions(redis_client, keys, "als-d8") == {}
    assert not list(redis_client.scan_iter(match=buckets_pattern(keys, "als-d8", versions[1])))
    assert not redis_client.hexists(keys.vectors_pending("als-d8"), versions[1])
    assert stored_count(redis_client, keys, "als-d8", versions[2], Kind.USER) == 200


def test_versions_check_reports_then_deletes_unreadable_versions(
    redis_client: redis.Redis, keys: Keys, settings: Settings
) -> None:
    versions = _publish_all(redis_client, keys, 2)
    _break_manifest(redis_client, keys, versions[0])
    env = {"LOCKSTEP_REDIS_URL": settings.redis_endpoint, "LOCKSTEP_KEY_PREFIX": settings.key_prefix}
    runner = CliRunner()
    found = runner.invoke(app, ["versions", "check"], env=env)
    assert found.exit_code == 1, found.output
    assert versions[0] in found.output and "buckets:" in found.output  # the table wraps the rest
    fixed = runner.invoke(app, ["versions", "check", "--delete"], env=env)
    assert fixed.exit_code == 0 and "deleted" in fixed.output, fixed.output
    clean = runner.invoke(app, ["versions", "check"], env=env)
    assert clean.exit_code == 0 and "every published manifest matches the contract" in clean.output
    assert [m.version for m in list_versions(redis_client, keys, "als-d8")] == [versions[1]]
