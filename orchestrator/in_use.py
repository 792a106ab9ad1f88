"""Moving in_use: compare-and-set and rollback as scripts on the type's slot, audit entry in the same script.

Each change is one Lua script over the type's control keys (one hash tag, so one slot in a Redis Cluster),
followed on the same connection by WAIT when replicas must acknowledge it (contract.replication): a change
the replicas did not confirm is reported as RedisUnavailable, never as done. Every script is idempotent,
so the caller's retry is safe.
"""

from __future__ import annotations

from datetime import UTC, datetime

from contract.indexing import IndexedLocation
from contract.keys import Keys
from contract.redis_clients import AsyncRedis
from contract.replication import UNCONFIRMED, Replication, run_script_async
from contract.versions import Frame
from contract.wire import InUseChange
from orchestrator.errors import (
    InUseConflict,
    NoRollbackTarget,
    NotIndexed,
    NotPublished,
    VersionInUse,
)
from orchestrator.store import readable, text
from service.auth import Caller

AUDIT_MAXLEN = 10_000  # entries kept per type; older ones are trimmed (approximately)
_ATTEMPTS = 20  # optimistic retries when another writer changed what a rollback chose from

# The audit entry of a move from `from`: ARGV[2] to, ARGV[3..6] at, actor, role, reason, ARGV[7] maxlen.
_AUDIT = """
local function audit(key, from)
  redis.call('XADD', key, 'MAXLEN', '~', ARGV[7], '*', 'at', ARGV[3], 'actor', ARGV[4], 'role', ARGV[5],
             'from', from, 'to', ARGV[2], 'reason', ARGV[6])
end
"""
# KEYS: in_use, manifest of the target, indexed, audit. ARGV[1]: expected ('' for none), ARGV[2]: target.
# The target already in use is success whatever was expected (a promotion retried after a lost reply or a
# failover), written again unchanged so that WAIT confirms it too; no audit entry.
_CAS = (
    _AUDIT
    + """
local current = redis.call('GET', KEYS[1]) or ''
if current == ARGV[2] then
  redis.call('SET', KEYS[1], current)
  return {'same', current}
end
if current ~= ARGV[1] then return {'conflict', current} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'unpublished', current} end
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 then return {'unindexed', current} end
redis.call('SET', KEYS[1], ARGV[2])
audit(KEYS[4], current)
return {'moved', current}
"""
)
# KEYS: in_use, published, indexed, audit. ARGV[1]: the in_use the target was chosen from, ARGV[2]: the
# target, ARGV[8]/ARGV[9]: the published versions and indexed versions it was chosen from, each joined by
# newlines (sorted). Anything else now (what WATCH would have caught) is 'changed': choose again.
_ROLLBACK = (
    _AUDIT
    + """
local function joined(list) table.sort(list) return table.concat(list, '\\n') end
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 'changed' end
if joined(redis.call('ZRANGE', KEYS[2], 0, -1)) ~= ARGV[8] then return 'changed' end
if joined(redis.call('HKEYS', KEYS[3])) ~= ARGV[9] then return 'changed' end
redis.call('SET', KEYS[1], ARGV[2])
audit(KEYS[4], ARGV[1])
return 'moved'
"""
)
# KEYS: manifest, indexed. ARGV: version, location JSON.
_RECORD_INDEXED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unpublished' end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 'ok'
"""
# KEYS: in_use, indexed. ARGV: version.
_DROP_INDEXED = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return 'in_use' end
redis.call('HDEL', KEYS[2], ARGV[1])
return 'ok'
"""


def _change(caller: Caller, current: str | None, target: str, reason: str) -> InUseChange:
    return InUseChange(
        at=datetime.now(UTC),
        actor=caller.actor,
        role=caller.role.value,
        from_version=current,
        to_version=target,
        reason=reason,
    )


def _audit_args(change: InUseChange) -> list[str | int]:
    """ARGV[2..7] of a move (ARGV[1] is the script's own)."""
    return [change.to_version, change.at.isoformat(), change.actor, change.role, change.reason, AUDIT_MAXLEN]


async def compare_and_set(
    redis: AsyncRedis,
    keys: Keys,
    type_name: str,
    expected: str | None,
    target: str,
    reason: str,
    caller: Caller,
    replication: Replication = UNCONFIRMED,
) -> InUseChange:
    """Set in_use to `target` if it is `expected` now and `target` is published and indexed.

    `target` already in use is success with no audit entry (from_version == to_version), whatever was
    expected: promotion is idempotent, so an indexer retrying after a lost reply or a failover succeeds.
    """
    names = [
        keys.in_use(type_name),
        keys.manifest(type_name, target),
        keys.indexed(type_name),
        keys.audit(type_name),
    ]
    change = _change(caller, None, target, reason)
    outcome, raw_current = await run_script_async(
        redis, _CAS, names, [expected or "", *_audit_args(change)], replication
    )
    current = text(raw_current) or None
    match text(outcome):
        case "conflict":
            raise InUseConflict(f"expected: in_use of {type_name} is {current!r}, not {expected!r}")
        case "unpublished":
            raise NotPublished(f"version: {target} of {type_name} is not published")
        case "unindexed":
            raise NotIndexed(f"version: {target} of {type_name} is not recorded as indexed and visible")
    return change.model_copy(update={"from_version": current})


async def rollback(
    redis: AsyncRedis,
    keys: Keys,
    type_name: str,
    reason: str,
    caller: Caller,
    replication: Replication = UNCONFIRMED,
    expected: str | None = None,
) -> InUseChange:
    """Move in_use back to the newest earlier version that is still published and indexed.

    With `expected`, only from that version (InUseConflict otherwise): a retried rollback moves once.
    """
    in_use_key, published_key, indexed_key = (
        keys.in_use(type_name),
        keys.published(type_name),
        keys.indexed(type_name),
    )
    names = [in_use_key, published_key, indexed_key, keys.audit(type_name)]
    for _ in range(_ATTEMPTS):
        pipe = redis.pipeline(transaction=False)
        pipe.get(in_use_key)
        pipe.zrange(published_key, 0, -1)
        pipe.hkeys(indexed_key)
        raw_current, raw_published, raw_indexed = await pipe.execute()
        if raw_current is None:
            raise NoRollbackTarget(f"type {type_name} has no in_use version to roll back from")
        current = text(raw_current)
        if expected is not None and current != expected:
            raise InUseConflict(f"expected: in_use of {type_name} is {current!r}, not {expected!r}")
        published = [text(v) for v in raw_published]
        indexed = {text(v) for v in raw_indexed}
        target = await _rollback_target(redis, keys, type_name, current, published, indexed)
        change = _change(caller, current, target, reason)
        args = [current, *_audit_args(change), "\n".join(sorted(published)), "\n".join(sorted(indexed))]
        if text(await run_script_async(redis, _ROLLBACK, names, args, replication)) == "moved":
            return change
    raise InUseConflict("in_use: too many concurrent writers, retry")


async def _rollback_target(
    redis: AsyncRedis, keys: Keys, type_name: str, current: str, published: list[str], indexed: set[str]
) -> str:
    names = list(dict.fromkeys([*published, current]))
    raws = await redis.mget([keys.manifest(type_name, v) for v in names])
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
    return candidates[-1].version


async def history(redis: AsyncRedis, keys: Keys, type_name: str, limit: int) -> list[InUseChange]:
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


async def record_indexed(
    redis: AsyncRedis,
    keys: Keys,
    type_name: str,
    location: IndexedLocation,
    replication: Replication = UNCONFIRMED,
) -> None:
    """Record a version as fully indexed and visible; only a published version may be recorded."""
    names = [keys.manifest(type_name, location.version), keys.indexed(type_name)]
    args = [location.version, location.model_dump_json()]
    if text(await run_script_async(redis, _RECORD_INDEXED, names, args, replication)) == "unpublished":
        raise NotPublished(f"version: {location.version} of {type_name} is not published")


async def drop_indexed(
    redis: AsyncRedis, keys: Keys, type_name: str, version: str, replication: Replication = UNCONFIRMED
) -> None:
    """Forget that a version is indexed (its index was dropped); refused while it is in use."""
    names = [keys.in_use(type_name), keys.indexed(type_name)]
    if text(await run_script_async(redis, _DROP_INDEXED, names, [version], replication)) == "in_use":
        raise VersionInUse(f"version: {version} is in_use of {type_name}; move in_use before dropping it")
