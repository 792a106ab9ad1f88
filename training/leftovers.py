"""Pending markers: which bucket hashes of an unpublished version may hold leftovers, and clearing them.

A publisher marks a version (in `Keys.vectors_pending`) with the bucket counts it is about to write before
its first vector, and the manifest's commit removes the mark; a delete marks the version with its
manifest's bucket counts before unlinking. Marks merge by taking the larger count of each kind, so a mark
always covers every bucket any earlier, killed, run may have written, and clearing never needs a SCAN.
"""

from __future__ import annotations

from collections.abc import Iterator

from contract.keys import Keys, Kind
from contract.manifest import Buckets
from contract.redis_clients import SyncRedis

# Lua: merge ARGV[2] ("user,item,attr" bucket counts) into the mark of version ARGV[1]; returns the old mark.
MERGE_MARK = """
local function merge(old, new)
  if not old then return new end
  local a, b = {}, {}
  for n in string.gmatch(old, '%d+') do a[#a + 1] = tonumber(n) end
  for n in string.gmatch(new, '%d+') do b[#b + 1] = tonumber(n) end
  for i = 1, 3 do b[i] = math.max(a[i] or 1, b[i] or 1) end
  return table.concat(b, ',')
end
"""
_MARK = (
    MERGE_MARK
    + """
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], merge(old, ARGV[2]))
return old
"""
)
_UNLINK_BATCH = 1000


def mark(buckets: Buckets) -> str:
    """A mark's value: the bucket counts of each kind, in Kind order."""
    return ",".join(str(buckets.of(kind)) for kind in Kind)


def parse_mark(raw: bytes | str) -> Buckets:
    """A stored mark back to bucket counts."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    counts = [int(part) for part in text.split(",")]
    return Buckets(**{kind.value: count for kind, count in zip(Kind, counts, strict=True)})


def mark_pending(
    client: SyncRedis, keys: Keys, type_name: str, version: str, buckets: Buckets
) -> Buckets | None:
    """Mark a version's buckets as possibly holding leftovers; returns the mark it had (None: clean)."""
    old = client.eval(_MARK, 1, keys.vectors_pending(type_name), version, mark(buckets))
    return None if old is None else parse_mark(old)


def bucket_names(keys: Keys, type_name: str, version: str, buckets: Buckets) -> Iterator[str]:
    """Every bucket hash a version with these bucket counts has."""
    for kind in Kind:
        for bucket in range(buckets.of(kind)):
            yield keys.vectors(type_name, version, kind, bucket)


def clear(client: SyncRedis, keys: Keys, type_name: str, version: str, buckets: Buckets) -> int:
    """UNLINK every bucket hash of the version within these counts; returns how many existed."""
    names = list(bucket_names(keys, type_name, version, buckets))
    removed = 0
    for start in range(0, len(names), _UNLINK_BATCH):
        # A cluster client splits the batch by slot; a standalone one sends it as one UNLINK.
        removed += int(client.unlink(*names[start : start + _UNLINK_BATCH]))
    return removed


def pending(client: SyncRedis, keys: Keys, type_name: str) -> dict[str, Buckets]:
    """Every marked version of a type with its mark."""
    raw = client.hgetall(keys.vectors_pending(type_name))
    return {(k.decode() if isinstance(k, bytes) else k): parse_mark(v) for k, v in raw.items()}


def unmark(client: SyncRedis, keys: Keys, type_name: str, version: str) -> None:
    """Remove a version's mark (its buckets are cleared)."""
    client.hdel(keys.vectors_pending(type_name), version)
