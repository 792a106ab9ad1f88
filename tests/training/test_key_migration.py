"""Data of the key schema before hash tags: refused everywhere, moved by `lockstep redis migrate-keys`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis
from publish_support import direct_type, items, users
from typer.testing import CliRunner

from cli.main import app
from contract.indexing import IndexedLocation, Mode
from contract.keys import Keys, Kind, LegacyKeys
from contract.profiles import Interaction, Profile
from contract.redis_setup import MIGRATE_COMMAND, RedisSetupError, check
from contract.settings import Settings
from contract.versions import Frame
from orchestrator.main import create_app
from training import leftovers
from training.profiles import write_profiles
from training.publish import publish, read_manifest
from training.retention import list_versions

FRAMES = [Frame.parse("2017-01-01..2017-07-01"), Frame.parse("2017-01-01..2017-08-01")]
LEFTOVER = "20180101T000000Z-20180201T000000Z"  # a publish killed before its manifest


@pytest.fixture
def anyio_backend() -> str:
    """The orchestrator app runs on asyncio."""
    return "asyncio"


def _legacy_vectors(keys: Keys, type_name: str, version: str, kind: Kind, bucket: int) -> str:
    return f"{keys.prefix}:vec:{type_name}:{version}:{kind.value}:{bucket}"


def _as_before_hash_tags(client: redis.Redis, keys: Keys, type_name: str) -> None:
    """Rename every key of the type to what the Lockstep before hash tags wrote (same values)."""
    legacy = LegacyKeys(keys.prefix)
    moves = [
        (keys.published(type_name), legacy.published(type_name)),
        (keys.publish_seq(type_name), legacy.publish_seq(type_name)),
        (keys.in_use(type_name), legacy.in_use(type_name)),
        (keys.audit(type_name), legacy.audit(type_name)),
        (keys.indexed(type_name), legacy.indexed(type_name)),
    ]
    for frame in FRAMES:
        version = frame.version_id
        manifest = read_manifest(client, keys, type_name, version)
        assert manifest is not None
        moves.append((keys.manifest(type_name, version), legacy.manifest(type_name, version)))
        for kind in Kind:
            for bucket in range(manifest.buckets.of(kind)):
                moves.append(
                    (
                        keys.vectors(type_name, version, kind, bucket),
                        _legacy_vectors(keys, type_name, version, kind, bucket),
                    )
                )
    for old, new in moves:
        if client.exists(old):
            client.rename(old, new)  # one server: no slots in the way
    client.hset(_legacy_vectors(keys, type_name, LEFTOVER, Kind.USER, 0), "u1", b"\0" * 32)
    client.set(f"{keys.prefix}:vecpending:{type_name}:{LEFTOVER}", "token")
    client.delete(keys.vectors_pending(type_name), keys.profile_users())  # the old schema had neither


def _env(settings: Settings) -> dict[str, str]:
    return {"LOCKSTEP_REDIS_URL": settings.redis_endpoint, "LOCKSTEP_KEY_PREFIX": settings.key_prefix}


@pytest.mark.anyio
async def test_old_schema_data_is_refused_then_migrated_whole(
    redis_client: redis.Redis, keys: Keys, settings: Settings
) -> None:
    etype = direct_type(redis_client, keys)
    for k, frame in enumerate(FRAMES):
        publish(redis_client, keys, etype, frame, users=users(300, seed=k), items=items(5, seed=k))
    first, second = (f.version_id for f in FRAMES)
    location = IndexedLocation(
        version=second,
        mode=Mode.SHADOW,
        index="idx",
        vector_field="emb",
        version_field="emb_version",
        indexed_at=datetime.now(UTC),
        item_count=5,
    )
    redis_client.hset(keys.indexed(etype.name), second, location.model_dump_json())
    redis_client.set(keys.in_use(etype.name), second)
    redis_client.xadd(
        keys.audit(etype.name),
        {
            "at": "2017-08-01T00:00:00+00:00",
            "actor": "a",
            "role": "admin",
            "from": "",
            "to": second,
            "reason": "old",
        },
    )
    write_profiles(
        redis_client, keys, [Profile(user_id="u1", interactions=(Interaction(item_id="1", weight=1.0),))]
    )
    _as_before_hash_tags(redis_client, keys, etype.name)

    # Every process refuses, naming the command.
    with pytest.raises(RedisSetupError, match=MIGRATE_COMMAND):
        check(redis_client, settings, keys)
    orchestrator = create_app(settings)
    with pytest.raises(RedisSetupError, match=f"{keys.prefix}:published:{etype.name}"):
        async with orchestrator.router.lifespan_context(orchestrator):
            pass
    refused = CliRunner().invoke(app, ["versions", "list", "--type", etype.name], env=_env(settings))
    assert refused.exit_code == 2 and MIGRATE_COMMAND in " ".join(refused.output.split())

    migrated = CliRunner().invoke(app, ["redis", "migrate-keys"], env=_env(settings))
    assert migrated.exit_code == 0, migrated.output
    assert etype.name in migrated.output and "profiles indexed: 1" in migrated.output

    check(redis_client, settings, keys)  # nothing refused any more
    assert [m.version for m in list_versions(redis_client, keys, etype.name)] == [first, second]
    assert redis_client.get(keys.in_use(etype.name)) == second.encode()
    assert redis_client.hkeys(keys.indexed(etype.name)) == [second.encode()]
    assert redis_client.xlen(keys.audit(etype.name)) == 1
    assert int(redis_client.get(keys.publish_seq(etype.name)) or 0) == 2
    manifest = read_manifest(redis_client, keys, etype.name, second)
    assert manifest is not None
    stored = sum(
        int(redis_client.hlen(name))
        for name in leftovers.bucket_names(keys, etype.name, second, manifest.buckets)
    )
    assert stored == 300 + 5
    assert redis_client.zrange(keys.profile_users(), 0, -1) == [b"u1"]
    # Nothing of the old schema is left, not even the killed publish's leftovers.
    old = [k for k in redis_client.scan_iter(match=keys.all_keys_pattern()) if b"{" not in k]
    assert sorted(old) == sorted(
        [keys.types().encode(), keys.profile("u1").encode(), keys.profile_users().encode()]
    )

    again = CliRunner().invoke(app, ["redis", "migrate-keys"], env=_env(settings))
    assert again.exit_code == 0 and "nothing to migrate" in again.output
    started = create_app(settings)
    async with started.router.lifespan_context(started):
        pass  # starts now
