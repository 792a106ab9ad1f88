"""Retention: list versions, delete one (manifest first, so it vanishes atomically), and GC old ones."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from contract.keys import Keys
from contract.manifest import Buckets, Counts, Manifest, UnreadableManifestError, read_manifest
from contract.redis_clients import SyncRedis
from contract.replication import UNCONFIRMED, NotReplicated, Replication, run_script
from contract.versions import order_key
from training import leftovers
from training.publish_lock import publish_lock, release
from training.registry import get_type, list_types
from training.validation import PublishError

_ORPHAN_LOCK_SECONDS = 60.0

# The unpublish, one script on the type's slot: only the manifest read before (so nothing changed under
# us), never the in-use version; the version is marked pending (its buckets) before any is unlinked.
# KEYS: manifest, in_use, published, pending; ARGV: version, manifest as read, mark.
_UNPUBLISH = (
    leftovers.MERGE_MARK
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then return 'unknown' end
if raw ~= ARGV[2] then return 'changed' end
if redis.call('GET', KEYS[2]) == ARGV[1] then return 'in_use' end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], merge(redis.call('HGET', KEYS[4], ARGV[1]), ARGV[3]))
return 'ok'
"""
)


class VersionInUse(PublishError):  # noqa: N818 - named like the API errors
    """The version serving uses cannot be deleted."""


class UnknownVersion(PublishError):  # noqa: N818 - named like the API errors
    """No such published version."""


@dataclass(frozen=True)
class GcPlan:
    """What GC keeps and deletes for one type, and why each kept version is kept."""

    type_name: str
    keep: tuple[tuple[str, str], ...]  # (version, reason)
    delete: tuple[str, ...]


def list_versions(client: SyncRedis, keys: Keys, type_name: str) -> list[Manifest]:
    """Published versions of a type, oldest first (frame end, then publish sequence).

    A version whose manifest does not match the contract is left out, as the orchestrator leaves it out:
    it serves nobody (`unreadable_versions` names them; `delete_version` removes them).
    """
    manifests = [m for m in _stored_manifests(client, keys, type_name).values() if isinstance(m, Manifest)]
    return sorted(manifests, key=lambda m: order_key(m.frame_end, m.seq))


def unreadable_versions(client: SyncRedis, keys: Keys, type_name: str) -> dict[str, str]:
    """Published versions whose manifest does not match the contract (written by an older Lockstep): why."""
    stored = _stored_manifests(client, keys, type_name)
    return {version: why for version, why in stored.items() if isinstance(why, str)}


def _stored_manifests(client: SyncRedis, keys: Keys, type_name: str) -> dict[str, Manifest | str]:
    """Each published version's manifest, or why it cannot be read."""
    versions = [_text(v) for v in client.zrange(keys.published(type_name), 0, -1)]
    if not versions:
        return {}
    raws = client.mget([keys.manifest(type_name, v) for v in versions])
    # A ZSET member without a manifest is a version being deleted right now: not published any more.
    return {v: _parse(raw) for v, raw in zip(versions, raws, strict=True) if raw is not None}


def _parse(raw: bytes | str) -> Manifest | str:
    try:
        return read_manifest(raw)
    except UnreadableManifestError as exc:
        return str(exc)


def plan_gc(
    type_name: str, manifests: Sequence[Manifest], in_use: str | None, indexed: Collection[str], keep: int
) -> GcPlan:
    """Keep the newest `keep` versions, the in-use one and every indexed one (rollback targets)."""
    if keep < 1:
        # The newest version may be being indexed right now: it is never GC's to take.
        raise PublishError(f"keep must be >= 1, got {keep}")
    ordered = sorted(manifests, key=lambda m: order_key(m.frame_end, m.seq))
    newest = {m.version for m in ordered[-keep:]}
    kept: list[tuple[str, str]] = []
    deleted: list[str] = []
    for m in ordered:
        if m.version == in_use:
            kept.append((m.version, "in use"))
        elif m.version in indexed:
            kept.append((m.version, "indexed (rollback target)"))
        elif m.version in newest:
            kept.append((m.version, f"among the newest {keep}"))
        else:
            deleted.append(m.version)
    return GcPlan(type_name, tuple(kept), tuple(deleted))


def delete_version(
    client: SyncRedis, keys: Keys, type_name: str, version: str, replication: Replication = UNCONFIRMED
) -> Manifest | None:
    """Delete a version: manifest and ZREM in one script, then its buckets; the in-use one is refused.

    With `replication`, buckets are unlinked only once replicas have the unpublish (a failover must not
    bring back a manifest whose vectors are gone). Returns the deleted manifest (None when unreadable).
    """
    get_type(client, keys, type_name)
    manifest_key = keys.manifest(type_name, version)
    names = [manifest_key, keys.in_use(type_name), keys.published(type_name), keys.vectors_pending(type_name)]
    while True:
        raw = client.get(manifest_key)
        if raw is None:
            raise UnknownVersion(f"type {type_name!r} has no published version {version!r}")
        buckets = _buckets_of(raw, type_name, version)
        try:
            outcome = run_script(
                client, _UNPUBLISH, names, [version, raw, leftovers.mark(buckets)], replication
            )
        except NotReplicated as exc:
            raise PublishError(
                f"{type_name!r} {version} is unpublished on the primary but not confirmed: {exc}; its "
                "vectors stay until `lockstep versions gc` finds the version unpublished and clears them"
            ) from exc
        if outcome == b"unknown":
            raise UnknownVersion(f"type {type_name!r} has no published version {version!r}")
        if outcome == b"in_use":
            raise VersionInUse(
                f"version {version} of {type_name!r} is in use; move in_use (or roll back) first"
            )
        if outcome == b"ok":
            break
    manifest = _parse(raw)
    deleted = manifest if isinstance(manifest, Manifest) else None
    # Invisible from here on. Take the version's publish lock so no republish of it is writing buckets
    # while we unlink; if one holds it, it found the pending mark and clears the buckets itself.
    lock = publish_lock(client, keys, type_name, version, _ORPHAN_LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        return deleted
    try:
        marked = leftovers.pending(client, keys, type_name).get(version, buckets)
        leftovers.clear(client, keys, type_name, version, marked)
        leftovers.unmark(client, keys, type_name, version)
    finally:
        release(lock)
    return deleted


def _buckets_of(raw: bytes | str, type_name: str, version: str) -> Buckets:
    """The bucket counts a stored manifest names, read loosely: an unreadable one may still say them."""
    parsed = _parse(raw)
    if isinstance(parsed, Manifest):
        return parsed.buckets
    try:
        fields = json.loads(raw)
        if "buckets" in fields:
            return Buckets.model_validate(fields["buckets"])
        return Buckets.for_counts(Counts.model_validate(fields["counts"]))
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise PublishError(
            f"the manifest of {type_name!r} {version} names neither bucket counts nor vector counts, so "
            "its bucket hashes are unknown; delete its keys by hand"
        ) from exc


def gc(
    client: SyncRedis,
    keys: Keys,
    keep: int,
    *,
    type_name: str | None = None,
    dry_run: bool = False,
    replication: Replication = UNCONFIRMED,
) -> list[GcPlan]:
    """Apply the retention rule to one type or all; with dry_run only report the plan."""
    names = [type_name] if type_name is not None else [t.name for t in list_types(client, keys)]
    plans: list[GcPlan] = []
    for name in names:
        get_type(client, keys, name)
        in_use_raw = client.get(keys.in_use(name))
        in_use = None if in_use_raw is None else _text(in_use_raw)
        indexed = {_text(v) for v in client.hkeys(keys.indexed(name))}
        plan = plan_gc(name, list_versions(client, keys, name), in_use, indexed, keep)
        plans.append(plan)
        if dry_run:
            continue
        for version in plan.delete:
            try:
                delete_version(client, keys, name, version, replication)
            except (VersionInUse, UnknownVersion):
                continue  # moved into use, or deleted by someone else, since the plan was made
        remove_orphans(client, keys, name)
    return plans


def remove_orphans(client: SyncRedis, keys: Keys, type_name: str) -> list[str]:
    """Delete the buckets of marked versions with no manifest (killed publishes) no publisher holds."""
    removed = []
    for version, buckets in sorted(leftovers.pending(client, keys, type_name).items()):
        if client.exists(keys.manifest(type_name, version)):
            continue
        # Take the version's publish lock, so no publisher is writing it while we delete.
        lock = publish_lock(client, keys, type_name, version, _ORPHAN_LOCK_SECONDS)
        if not lock.acquire(blocking=False):
            continue
        try:
            if not client.exists(keys.manifest(type_name, version)):
                marked = leftovers.pending(client, keys, type_name).get(version, buckets)
                leftovers.clear(client, keys, type_name, version, marked)
                leftovers.unmark(client, keys, type_name, version)
                removed.append(version)
        finally:
            release(lock)
    return removed


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
