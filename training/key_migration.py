"""Moving data of the key schema before hash tags (contract.keys.LegacyKeys) to the current one.

Per type: every key is copied (DUMP, RESTORE) to its new name, the published set last, and only then are
the old keys deleted, the old published set last: its presence is what marks a type as not yet migrated,
so a run killed anywhere is finished by running again. Bucket hashes of versions that were never
published (leftovers of killed publishes) are dropped, not moved. Profiles keep their keys; their index
(Keys.profile_users), which the old schema lacked, is built from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.keys import Keys, LegacyKeys
from contract.redis_clients import SyncRedis
from training.registry import list_types
from training.validation import PublishError

_BATCH = 1000


@dataclass(frozen=True)
class Migrated:
    """What one type's migration moved and dropped."""

    type_name: str
    versions: int
    moved: int  # keys copied to their new names
    dropped: int  # bucket hashes of never-published versions, and old pending markers


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _scan(client: SyncRedis, pattern: str) -> list[bytes]:
    return list(client.scan_iter(match=pattern, count=10_000))


def migrate_type(client: SyncRedis, keys: Keys, type_name: str) -> Migrated:
    """Move one type's keys; refused while a publish of it holds an old-schema lock."""
    legacy = LegacyKeys(keys.prefix)
    held = _scan(client, legacy.publish_lock_pattern(type_name))
    if held:
        raise PublishError(
            f"a publish of {type_name!r} is under way ({_text(held[0])}); run again when it has ended"
        )
    versions = [_text(v) for v in client.zrange(legacy.published(type_name), 0, -1)]  # type: ignore[arg-type]
    moves = [(legacy.manifest(type_name, v), keys.manifest(type_name, v)) for v in versions]
    moves += [
        (legacy.publish_seq(type_name), keys.publish_seq(type_name)),
        (legacy.in_use(type_name), keys.in_use(type_name)),
        (legacy.audit(type_name), keys.audit(type_name)),
        (legacy.indexed(type_name), keys.indexed(type_name)),
    ]
    dropped: list[str | bytes] = [*_scan(client, legacy.pending_pattern(type_name))]
    for key in _scan(client, legacy.vectors_pattern(type_name)):
        version, kind, bucket = LegacyKeys.vectors_parts(key)
        if version in versions:
            moves.append((_text(key), keys.vectors(type_name, version, kind, bucket)))
        else:
            dropped.append(key)
    moves.append((legacy.published(type_name), keys.published(type_name)))  # readers list versions from it
    moved = 0
    for old, new in moves:
        dumped = client.dump(old)
        if dumped is not None:  # absent: never written, or moved by an earlier, killed, run
            client.restore(new, 0, dumped, replace=True)
            moved += 1
    old_names: list[str | bytes] = [*(old for old, _ in moves[:-1]), *dropped]
    for start in range(0, len(old_names), _BATCH):
        client.unlink(*old_names[start : start + _BATCH])
    client.unlink(legacy.published(type_name))  # last: until now a rerun finds the type unmigrated
    return Migrated(type_name, len(versions), moved, len(dropped))


def index_profiles(client: SyncRedis, keys: Keys) -> int:
    """Add every stored profile's user to Keys.profile_users; returns how many profiles there are."""
    prefix = keys.profile("")
    users = [_text(key)[len(prefix) :] for key in _scan(client, keys.profile("*"))]
    for start in range(0, len(users), _BATCH):
        client.zadd(keys.profile_users(), dict.fromkeys(users[start : start + _BATCH], 0))
    return len(users)


def migrate(client: SyncRedis, keys: Keys) -> tuple[list[Migrated], int]:
    """Migrate every registered type that has old-schema keys, then index the profiles."""
    done = [migrate_type(client, keys, etype.name) for etype in list_types(client, keys)]
    return [m for m in done if m.moved or m.dropped], index_profiles(client, keys)
