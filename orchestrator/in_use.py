"""Moving in_use: compare-and-set and rollback under WATCH/MULTI, audit entry in the same EXEC."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from contract.indexing import IndexedLocation
from contract.keys import Keys
from contract.versions import Frame
from contract.wire import InUseChange
from orchestrator.auth import Caller
from orchestrator.errors import (
    InUseConflict,
    NoRollbackTarget,
    NotIndexed,
    NotPublished,
    VersionInUse,
)
from orchestrator.store import readable, text

AUDIT_MAXLEN = 10_000  # entries kept per type; older ones are trimmed (approximately)
_ATTEMPTS = 20  # optimistic retries when another writer touched a watched key

T = TypeVar("T")


async def _optimistic(redis: Redis, attempt: Callable[[Pipeline], Awaitable[T]]) -> T:
    """Run `attempt` (WATCH, read, MULTI, write) until no watched key changed under it."""
    async with redis.pipeline(transaction=True) as pipe:
        for _ in range(_ATTEMPTS):
            try:
                return await attempt(pipe)
            except WatchError:
                await pipe.reset()  # type: ignore[no-untyped-call]
                continue
    raise InUseConflict("in_use: too many concurrent writers, retry")


def _text(raw: bytes | str | None) -> str | None:
    return None if raw is None else text(raw)


def _audit(pipe: Pipeline, keys: Keys, type_name: str, change: InUseChange) -> None:
    pipe.xadd(
        keys.audit(type_name),
        {
            "at": change.at.isoformat(),
            "actor": change.actor,
            "role": change.role,
            "from": change.from_version or "",
            "to": change.to_version,
            "reason": change.reason,
        },
        maxlen=AUDIT_MAXLEN,
        approximate=True,
    )


async def compare_and_set(
    redis: Redis, keys: Keys, type_name: str, expected: str | None, target: str, reason: str, caller: Caller
) -> InUseChange:
    """Set in_use to `target` if it is `expected` now and `target` is published and indexed.

    Setting it to the value it already has is a no-op that writes no audit entry.
    """
    in_use_key, manifest_key, indexed_key = (
        keys.in_use(type_name),
        keys.manifest(type_name, target),
        keys.indexed(type_name),
    )

    async def attempt(pipe: Pipeline) -> InUseChange:
        await pipe.watch(in_use_key, manifest_key, indexed_key)
        current = _text(await pipe.get(in_use_key))
        if current != expected:
            raise InUseConflict(f"expected: in_use of {type_name} is {current!r}, not {expected!r}")
        if not await pipe.exists(manifest_key):
            raise NotPublished(f"version: {target} of {type_name} is not published")
        if not await pipe.hexists(indexed_key, target):
            raise NotIndexed(f"version: {target} of {type_name} is not recorded as indexed and visible")
        change = InUseChange(
            at=datetime.now(UTC),
            actor=caller.actor,
            role=caller.role.value,
            from_version=current,
            to_version=target,
            reason=reason,
        )
        if current == target:
            await pipe.unwatch()  # type: ignore[no-untyped-call]
            return change
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.set(in_use_key, target)
        _audit(pipe, keys, type_name, change)
        await pipe.execute()
        return change

    return await _optimistic(redis, attempt)


async def rollback(redis: Redis, keys: Keys, type_name: str, reason: str, caller: Caller) -> InUseChange:
    """Move in_use back to the newest earlier version that is still published and indexed."""
    in_use_key, published_key, indexed_key = (
        keys.in_use(type_name),
        keys.published(type_name),
        keys.indexed(type_name),
    )

    async def attempt(pipe: Pipeline) -> InUseChange:
        await pipe.watch(in_use_key, published_key, indexed_key)
        current = _text(await pipe.get(in_use_key))
        if current is None:
            raise NoRollbackTarget(f"type {type_name} has no in_use version to roll back from")
        published = [text(v) for v in await pipe.zrange(published_key, 0, -1)]  # type: ignore[arg-type]
        indexed = {text(v) for v in await pipe.hkeys(indexed_key)}
        names = list(dict.fromkeys([*published, current]))
        manifest_keys = [keys.manifest(type_name, v) for v in names]
        await pipe.watch(*manifest_keys)
        raws = await pipe.mget(manifest_keys)
        manifests = {v: m for v, raw in zip(names, raws, strict=True) if raw and (m := readable(raw))}
        if current in manifests:
            ceiling = manifests[current].order
        else:  # in_use was unpublished under us: everything up to its frame end counts as earlier
            ceiling = (Frame.from_version_id(current).end, 2**62)
        earlier = sorted(
            (m for v, m in manifests.items() if v != current and m.order < ceiling), key=lambda m: m.order
        )
        candidates = [m for m in earlier if m.version in indexed]
        if not candidates:
            if not earlier:
                why = "no earlier version is published"
            else:
                why = (
                    f"earlier published versions {[m.version for m in earlier]} are not indexed "
                    f"(indexed: {sorted(indexed)})"
                )
            raise NoRollbackTarget(f"cannot roll back {type_name} from {current}: {why}")
        target = candidates[-1].version
        change = InUseChange(
            at=datetime.now(UTC),
            actor=caller.actor,
            role=caller.role.value,
            from_version=current,
            to_version=target,
            reason=reason,
        )
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.set(in_use_key, target)
        _audit(pipe, keys, type_name, change)
        await pipe.execute()
        return change

    return await _optimistic(redis, attempt)


async def history(redis: Redis, keys: Keys, type_name: str, limit: int) -> list[InUseChange]:
    """The newest `limit` in_use changes, newest first."""
    entries = await redis.xrevrange(keys.audit(type_name), count=limit)
    out: list[InUseChange] = []
    for _id, raw in entries or ():
        fields = {text(k): text(v) for k, v in (raw or {}).items()}
        out.append(
            InUseChange(
                at=datetime.fromisoformat(fields["at"]),
                actor=fields["actor"],
                role=fields["role"],
                from_version=fields["from"] or None,
                to_version=fields["to"],
                reason=fields["reason"],
            )
        )
    return out


async def record_indexed(redis: Redis, keys: Keys, type_name: str, location: IndexedLocation) -> None:
    """Record a version as fully indexed and visible; only a published version may be recorded."""
    manifest_key, indexed_key = keys.manifest(type_name, location.version), keys.indexed(type_name)

    async def attempt(pipe: Pipeline) -> None:
        await pipe.watch(manifest_key)
        if not await pipe.exists(manifest_key):
            raise NotPublished(f"version: {location.version} of {type_name} is not published")
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.hset(indexed_key, location.version, location.model_dump_json())
        await pipe.execute()

    await _optimistic(redis, attempt)


async def drop_indexed(redis: Redis, keys: Keys, type_name: str, version: str) -> None:
    """Forget that a version is indexed (its index was dropped); refused while it is in use."""
    in_use_key, indexed_key = keys.in_use(type_name), keys.indexed(type_name)

    async def attempt(pipe: Pipeline) -> None:
        await pipe.watch(in_use_key)
        if _text(await pipe.get(in_use_key)) == version:
            raise VersionInUse(f"version: {version} is in_use of {type_name}; move in_use before dropping it")
        pipe.multi()  # type: ignore[no-untyped-call]
        pipe.hdel(indexed_key, version)
        await pipe.execute()

    await _optimistic(redis, attempt)
