"""The catalog's store of record in Redis: items written with their change event, atomically.

Every key shares the `{catalog}` hash tag (contract.keys), so each write is one Lua script on one slot in
every topology: the item's hash, the id set and an entry on the change stream change together, or not at
all, and the script is followed by WAIT when replicas must confirm it (contract.replication). Each script
also checks the schema record: the first write records the item schema's fingerprint, and a process with a
different schema is refused before it writes anything.

Items are validated by the caller (contract.items.ItemSchema.validate_item) before they reach the store.
Field values are stored JSON-encoded, one hash field each, so a patch writes only the fields it names.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from contract.items import ITEM_ID, ItemSchema
from contract.keys import Keys
from contract.redis_clients import AsyncRedis
from contract.replication import Replication, run_script_async

WRITE_BATCH: Final = 500  # items per script: bounds one script's run time (Redis is single-threaded)
READ_BATCH: Final = 1000

# KEYS[1] schema record. ARGV[1] fingerprint, ARGV[2] the record to write when there is none.
# Returns the recorded fingerprint when it differs (every write script starts with this check).
_SCHEMA_CHECK = """
local recorded = redis.call('GET', KEYS[1])
if recorded then
  local fingerprint = cjson.decode(recorded)['fingerprint']
  if fingerprint ~= ARGV[1] then return {'schema', recorded} end
else
  redis.call('SET', KEYS[1], ARGV[2])
end
"""

# KEYS[2] ids, KEYS[3] stream, KEYS[4..] one item key per item.
# ARGV[3..]: per item: id, its JSON, n, then n field/value pairs.
_PUT = (
    _SCHEMA_CHECK
    + """
local at = 3
for i = 4, #KEYS do
  local id, doc, n = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
  redis.call('DEL', KEYS[i])
  redis.call('HSET', KEYS[i], '_id', cjson.encode(id), unpack(ARGV, at + 3, at + 2 + 2 * n))
  redis.call('SADD', KEYS[2], id)
  redis.call('XADD', KEYS[3], '*', 'kind', 'upsert', 'item_id', id, 'item', doc)
  at = at + 3 + 2 * n
end
return {'ok', #KEYS - 3}
"""
)

# KEYS[2] ids, KEYS[3] stream, KEYS[4] the item. ARGV[3] id, ARGV[4] n to set, then n pairs, then the
# fields to remove. The event carries the whole item after the patch, built from the stored JSON values.
_PATCH = (
    _SCHEMA_CHECK
    + """
if redis.call('EXISTS', KEYS[4]) == 0 then return {'missing', ''} end
local n = tonumber(ARGV[4])
if n > 0 then redis.call('HSET', KEYS[4], unpack(ARGV, 5, 4 + 2 * n)) end
for i = 5 + 2 * n, #ARGV do redis.call('HDEL', KEYS[4], ARGV[i]) end
local flat = redis.call('HGETALL', KEYS[4])
local parts = {}
for i = 1, #flat, 2 do
  local name = flat[i]
  if name == '_id' then name = 'item_id' end
  parts[#parts + 1] = cjson.encode(name) .. ':' .. flat[i + 1]
end
local doc = '{' .. table.concat(parts, ',') .. '}'
redis.call('XADD', KEYS[3], '*', 'kind', 'upsert', 'item_id', ARGV[3], 'item', doc)
return {'ok', doc}
"""
)

# KEYS[2] ids, KEYS[3] stream, KEYS[4..] item keys; ARGV[3..] their ids. Only items that exist get an event.
_DELETE = (
    _SCHEMA_CHECK
    + """
local deleted = 0
for i = 4, #KEYS do
  if redis.call('DEL', KEYS[i]) == 1 then
    redis.call('SREM', KEYS[2], ARGV[i - 1])
    redis.call('XADD', KEYS[3], '*', 'kind', 'delete', 'item_id', ARGV[i - 1])
    deleted = deleted + 1
  end
end
return {'ok', deleted}
"""
)

# The stored id field: item fields may not be named "_id" (contract.items field names start with a letter).
_ID_FIELD: Final = "_id"


class SchemaChanged(Exception):  # noqa: N818 - named for what the caller is told
    """The catalog was written with another item schema; this process's schema is refused."""


@dataclass(frozen=True)
class CatalogStats:
    """How big the catalog is and how far behind its change stream's consumers are."""

    items: int
    stream_length: int
    schema: dict[str, Any] | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(doc: Mapping[str, Any]) -> list[str]:
    """Field/value pairs to HSET: each present field's value as JSON (null fields are not stored)."""
    out: list[str] = []
    for name, value in doc.items():
        if name != ITEM_ID and value is not None:
            out += [name, json.dumps(value, ensure_ascii=False)]
    return out


def document_of(flat: Mapping[Any, Any]) -> dict[str, Any]:
    """An item as stored (HGETALL) as its document: item_id and every field it has."""
    doc: dict[str, Any] = {}
    for name, value in flat.items():
        key = _text(name)
        doc[ITEM_ID if key == _ID_FIELD else key] = json.loads(value)
    return doc


class CatalogStore:
    """Reads and writes the items of one key prefix under one item schema."""

    def __init__(
        self, client: AsyncRedis, keys: Keys, item_schema: ItemSchema, replication: Replication
    ) -> None:
        self.client, self.keys, self.schema, self.replication = client, keys, item_schema, replication
        self._record = json.dumps(
            {
                "name": item_schema.name,
                "fingerprint": item_schema.fingerprint(),
                "schema": item_schema.model_dump(mode="json"),
            }
        )

    def _head(self) -> tuple[list[str], list[str]]:
        keys = [self.keys.catalog_schema(), self.keys.catalog_ids(), self.keys.catalog_changes()]
        return keys, [self.schema.fingerprint(), self._record]

    async def _run(self, script: str, keys: list[str], args: list[str]) -> Any:
        reply = await run_script_async(self.client, script, keys, args, self.replication)
        status = _text(reply[0])
        if status == "schema":
            raise SchemaChanged(self._refusal(json.loads(_text(reply[1]))))
        return status, reply[1]

    def _refusal(self, recorded: Mapping[str, Any]) -> str:
        before = recorded.get("schema", {}).get("fields", {})
        now = self.schema.model_dump(mode="json")["fields"]
        added = sorted(set(now) - set(before))
        removed = sorted(set(before) - set(now))
        changed = sorted(n for n in set(now) & set(before) if now[n] != before[n])
        return (
            f"the catalog under this key prefix was written with item schema {recorded.get('name')!r} "
            f"(fingerprint {recorded.get('fingerprint')}), this process has {self.schema.name!r} "
            f"(fingerprint {self.schema.fingerprint()}): added {added or 'none'}, "
            f"removed {removed or 'none'}, changed {changed or 'none'}. Changing the schema of a live "
            "deployment is refused: its indices and stored items follow the old one. Deploy the new schema "
            "under a new key and index prefix (LOCKSTEP_KEY_PREFIX, LOCKSTEP_INDEX_PREFIX), load the catalog "
            "there and index it, then move traffic; or run with the recorded schema file"
        )

    async def check_schema(self) -> None:
        """Refuse (SchemaChanged) when the catalog was written with another schema; record it if none."""
        keys, args = self._head()
        await self._run(_SCHEMA_CHECK + "\nreturn {'ok', ''}", keys, args)

    async def put(self, docs: Sequence[Mapping[str, Any]]) -> int:
        """Create or replace validated items (whole), WRITE_BATCH per script; returns how many."""
        for start in range(0, len(docs), WRITE_BATCH):
            batch = docs[start : start + WRITE_BATCH]
            keys, args = self._head()
            for doc in batch:
                pairs = _pairs(doc)
                item_id = str(doc[ITEM_ID])
                keys.append(self.keys.catalog_item(item_id))
                args += [item_id, json.dumps(doc, ensure_ascii=False), str(len(pairs) // 2), *pairs]
            await self._run(_PUT, keys, args)
        return len(docs)

    async def patch(self, item_id: str, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        """Change some fields of an item (None removes one); the item after it, or None if there is none."""
        keys, args = self._head()
        keys.append(self.keys.catalog_item(item_id))
        sets = _pairs(fields)
        removed = [name for name, value in fields.items() if value is None and name != ITEM_ID]
        status, doc = await self._run(_PATCH, keys, [*args, item_id, str(len(sets) // 2), *sets, *removed])
        if status == "missing":
            return None
        result: dict[str, Any] = json.loads(_text(doc))
        return result

    async def delete(self, item_ids: Sequence[str]) -> int:
        """Delete items; returns how many existed (only those get a change event)."""
        deleted = 0
        for start in range(0, len(item_ids), WRITE_BATCH):
            batch = list(dict.fromkeys(item_ids[start : start + WRITE_BATCH]))
            keys, args = self._head()
            keys += [self.keys.catalog_item(i) for i in batch]
            _status, count = await self._run(_DELETE, keys, [*args, *batch])
            deleted += int(count)
        return deleted

    async def get(self, item_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored items among `item_ids`, by id."""
        pipe = self.client.pipeline(transaction=False)
        for item_id in item_ids:
            pipe.hgetall(self.keys.catalog_item(item_id))
        found = await pipe.execute()
        return {i: document_of(flat) for i, flat in zip(item_ids, found, strict=True) if flat}

    async def ids(self) -> list[str]:
        """Every item id, sorted (SSCAN: the set is read in pieces, never blocking Redis)."""
        found = [_text(i) async for i in self.client.sscan_iter(self.keys.catalog_ids(), count=READ_BATCH)]
        return sorted(set(found))

    async def items(self, item_ids: Sequence[str] | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        """The items (all of them unless `item_ids` are given), READ_BATCH at a time, in id order."""
        wanted = await self.ids() if item_ids is None else list(item_ids)
        for start in range(0, len(wanted), READ_BATCH):
            batch = wanted[start : start + READ_BATCH]
            found = await self.get(batch)
            yield [found[i] for i in batch if i in found]

    async def stats(self) -> CatalogStats:
        """Items, change stream length and the recorded schema."""
        pipe = self.client.pipeline(transaction=False)
        pipe.scard(self.keys.catalog_ids())
        pipe.xlen(self.keys.catalog_changes())
        pipe.get(self.keys.catalog_schema())
        items, length, record = await pipe.execute()
        return CatalogStats(int(items), int(length), json.loads(record) if record else None)
