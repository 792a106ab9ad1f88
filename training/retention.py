"""Retention: list versions, delete one (manifest first, so it vanishes atomically), and GC old ones."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import redis

from contract.keys import Keys, Kind
from contract.manifest import Manifest, UnreadableManifestError, read_manifest
from contract.versions import order_key
from training.publish import release_lock, unlink_matching
from training.registry import get_type, list_types
from training.validation import PublishError

_ORPHAN_LOCK_MS = 60_000


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


def list_versions(client: redis.Redis, keys: Keys, type_name: str) -> list[Manifest]:
    """Published versions of a type, oldest first (frame end, then publish sequence).

    A version whose manifest does not match the contract is left out, as the orchestrator leaves it out:
    it serves nobody (`unreadable_versions` names them; `delete_version` removes them).
    """
    manifests = [m for m in _stored_manifests(client, keys, type_name).values() if isinstance(m, Manifest)]
    return sorted(manifests, key=lambda m: order_key(m.frame_end, m.seq))


def unreadable_versions(client: redis.Redis, keys: Keys, type_name: str) -> dict[str, str]:
    """Published versions whose manifest does not match the contract (written by an older Lockstep): why."""
    stored = _stored_manifests(client, keys, type_name)
    return {version: why for version, why in stored.items() if isinstance(why, str)}


def _stored_manifests(client: redis.Redis, keys: Keys, type_name: str) -> dict[str, Manifest | str]:
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


def delete_version(client: redis.Redis, keys: Keys, type_name: str, version: str) -> Manifest | None:
    """Delete a version: manifest and ZREM in one MULTI, then its buckets; the in-use one is refused.

    Returns the deleted manifest (None when it was unreadable: its buckets are then found by pattern).
    """
    get_type(client, keys, type_name)
    manifest_key = keys.manifest(type_name, version)
    in_use_key = keys.in_use(type_name)
    with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                # WATCH in_use: if it moves to this version meanwhile, EXEC fails and we look again.
                pipe.watch(in_use_key, manifest_key)  # type: ignore[no-untyped-call]
                raw = pipe.get(manifest_key)
                if raw is None:
                    raise UnknownVersion(f"type {type_name!r} has no published version {version!r}")
                current = pipe.get(in_use_key)
                if current is not None and _text(current) == version:
                    raise VersionInUse(
                        f"version {version} of {type_name!r} is in use; move in_use (or roll back) first"
                    )
                pipe.multi()
                pipe.delete(manifest_key)
                pipe.zrem(keys.published(type_name), version)
                # Until every bucket is gone, a publisher of this version must clear leftovers first.
                pipe.set(keys.vectors_pending(type_name, version), "deleting")
                pipe.execute()
                break
            except redis.WatchError:
                continue
    manifest = _parse(raw)
    deleted = manifest if isinstance(manifest, Manifest) else None
    # Invisible from here on. Take the version's publish lock so no republish of it is writing buckets
    # while we unlink; if one holds it, it found the pending marker and clears the buckets itself.
    lock_key = keys.publish_lock(type_name, version)
    token = uuid.uuid4().hex
    if not client.set(lock_key, token, nx=True, px=_ORPHAN_LOCK_MS):
        return deleted
    try:
        if isinstance(manifest, str):  # unreadable: no bucket counts to go by
            unlink_matching(client, keys.vectors_pattern(type_name, version))
        else:
            # The manifest names every bucket a complete publish wrote (publishing first clears leftovers
            # of a killed run), so no SCAN is needed.
            names = [
                keys.vectors(type_name, version, kind, bucket)
                for kind in Kind
                for bucket in range(manifest.buckets.of(kind))
            ]
            for start in range(0, len(names), 1000):
                client.unlink(*names[start : start + 1000])
        client.delete(keys.vectors_pending(type_name, version))
    finally:
        release_lock(client, lock_key, token)
    return deleted


def gc(
    client: redis.Redis, keys: Keys, keep: int, *, type_name: str | None = None, dry_run: bool = False
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
                delete_version(client, keys, name, version)
            except (VersionInUse, UnknownVersion):
                continue  # moved into use, or deleted by someone else, since the plan was made
        remove_orphans(client, keys, name)
    return plans


def remove_orphans(client: redis.Redis, keys: Keys, type_name: str) -> list[str]:
    """Delete vector bucket hashes of versions with no manifest (killed publishes) no publisher holds."""
    versions = {
        keys.vectors_version(key)
        for key in client.scan_iter(match=keys.vectors_pattern(type_name, "*"), count=10_000)
    }
    removed = []
    for version in sorted(versions):
        if client.exists(keys.manifest(type_name, version)):
            continue
        # Take the version's publish lock, so no publisher is writing it while we delete.
        lock_key = keys.publish_lock(type_name, version)
        token = uuid.uuid4().hex
        if not client.set(lock_key, token, nx=True, px=_ORPHAN_LOCK_MS):
            continue
        try:
            if not client.exists(keys.manifest(type_name, version)):
                unlink_matching(client, keys.vectors_pattern(type_name, version))
                client.delete(keys.vectors_pending(type_name, version))
                removed.append(version)
        finally:
            release_lock(client, lock_key, token)
    return removed


def _text(raw: object) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
