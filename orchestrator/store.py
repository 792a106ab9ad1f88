"""Reads from Redis through the contract's key schema; vectors go through the in-process cache."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pydantic

from contract.indexing import IndexedLocation
from contract.keys import Keys, Kind
from contract.manifest import Buckets, Manifest, UnreadableManifestError, read_manifest
from contract.profiles import Profile
from contract.redis_clients import AsyncRedis
from contract.types import EmbeddingType
from contract.vectors import DTYPE, Matrix, bucket_of, by_bucket
from orchestrator.cache import VectorCache
from orchestrator.errors import CorruptData

log = logging.getLogger(__name__)

ITEM_NAMESPACE = "item:"

TypeState = tuple[str | None, dict[str, IndexedLocation]]  # (in_use, indexed versions)

# Bucket counts of this many versions are remembered; a version's never change once published.
MAX_REMEMBERED_VERSIONS = 10_000

# A type's in_use and indexed versions in one atomic read (both keys share the type's slot).
_STATE = "return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2])}"


def text(raw: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes; its type hints also allow str)."""
    return raw.decode() if isinstance(raw, bytes) else raw


def _text(raw: bytes | str | None) -> str | None:
    return None if raw is None else text(raw)


def parse_manifest(raw: bytes | str) -> Manifest:
    """A stored manifest, or CorruptData naming the problem."""
    try:
        return read_manifest(raw)
    except UnreadableManifestError as exc:
        raise CorruptData(f"stored manifest does not match the contract: {exc}") from exc


def readable(raw: bytes | str) -> Manifest | None:
    """A stored manifest, or None when it does not match the contract (that version exists for nobody)."""
    try:
        return parse_manifest(raw)
    except CorruptData:
        return None


def parse_type(name: str, raw: bytes | str) -> EmbeddingType:
    """A registered type, or CorruptData."""
    try:
        return EmbeddingType.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise CorruptData(f"stored type {name!r} does not match the contract") from exc


def _state(reply: Sequence[object]) -> TypeState:
    """The _STATE script's reply: in_use, and the indexed hash as a flat field/value list."""
    in_use, flat = reply
    pairs = list(flat)  # type: ignore[call-overload]
    indexed = parse_indexed(dict(zip(pairs[::2], pairs[1::2], strict=True)))
    return (_text(in_use) if in_use else None, indexed)  # type: ignore[arg-type]


def parse_indexed(raw: Mapping[bytes | str, bytes | str]) -> dict[str, IndexedLocation]:
    """The indexed-versions hash as version -> location."""
    try:
        return {text(k): IndexedLocation.model_validate_json(v) for k, v in raw.items()}
    except pydantic.ValidationError as exc:
        raise CorruptData("a stored IndexedLocation does not match the contract") from exc


class Store:
    """Thin async reads; one round trip each unless noted.

    Immutable data (manifests, vectors) is read through `immutable`, which may read replicas: what a
    replica lacks (it lags) is read again from the primary, so a published version is never missed.
    Everything else (the registry, published sets, in_use, indexed, profiles) comes from the primary.
    """

    def __init__(
        self, redis: AsyncRedis, keys: Keys, cache: VectorCache, immutable: AsyncRedis | None = None
    ) -> None:
        self.redis = redis
        self.immutable = immutable or redis
        self.keys = keys
        self.cache = cache
        # (type, version) -> its manifest's bucket counts, filled by every manifest read (the catalog
        # poll reads them all), so finding a vector's bucket hash costs no round trip.
        self._buckets: dict[tuple[str, str], Buckets] = {}
        # (type, version) -> why its manifest could not be read, as of the last read of that type's versions.
        self.unreadable: dict[tuple[str, str], str] = {}

    def _remember(self, manifest: Manifest) -> Manifest:
        if len(self._buckets) >= MAX_REMEMBERED_VERSIONS:
            self._buckets.clear()
        self._buckets[(manifest.type_name, manifest.version)] = manifest.buckets
        return manifest

    async def buckets(self, type_name: str, version: str) -> Buckets | None:
        """A published version's bucket counts (from its manifest, read once); None if unpublished."""
        found = self._buckets.get((type_name, version))
        if found is None:
            manifest = await self.manifest(type_name, version)
            found = None if manifest is None else manifest.buckets
        return found

    async def types(self) -> dict[str, EmbeddingType]:
        """The type registry."""
        raw = await self.redis.hgetall(self.keys.types())
        return {text(k): parse_type(text(k), v) for k, v in raw.items()}

    async def one_type(self, name: str) -> EmbeddingType | None:
        """One registered type, or None."""
        raw = await self.redis.hget(self.keys.types(), name)
        return None if raw is None else parse_type(name, raw)

    async def published(self, type_names: Sequence[str]) -> dict[str, list[Manifest]]:
        """Published manifests per type, oldest first (two round trips for any number of types).

        A version counts only if its manifest exists: the sorted set and the manifest are written by
        one script, and a member whose manifest has gone (unpublished) is skipped.
        """
        pipe = self.redis.pipeline(transaction=False)
        for name in type_names:
            pipe.zrange(self.keys.published(name), 0, -1)
        members: list[list[bytes]] = await pipe.execute()
        wanted: list[tuple[str, list[str]]] = []
        for name, versions in zip(type_names, members, strict=True):
            wanted.append((name, [v.decode() for v in versions]))
        raws = await self._immutable_values(
            [[self.keys.manifest(name, v) for v in ids] for name, ids in wanted if ids]
        )
        out: dict[str, list[Manifest]] = {}
        cursor = iter(raws)
        for name, ids in wanted:
            gone = [key for key in self.unreadable if key[0] == name and key[1] not in ids]
            for key in gone:  # unpublished since: nothing left to repair
                del self.unreadable[key]
            found = zip(ids, next(cursor), strict=True) if ids else ()
            manifests = [self._readable(name, version, raw) for version, raw in found if raw is not None]
            out[name] = sorted((m for m in manifests if m is not None), key=lambda m: m.order)
        return out

    def _readable(self, type_name: str, version: str, raw: bytes) -> Manifest | None:
        """The manifest, or None: one unreadable version must not hide every other one of every type.

        Like a version whose manifest is missing, it does not exist for anyone; it is logged and counted
        (lockstep_orchestrator_unreadable_manifests) until it is repaired or unpublished.
        """
        try:
            manifest = self._remember(parse_manifest(raw))
        except CorruptData as exc:
            if (type_name, version) not in self.unreadable:
                log.warning("skipping version %s of %s: %s", version, type_name, exc)
            self.unreadable[(type_name, version)] = str(exc)
            return None
        self.unreadable.pop((type_name, version), None)
        return manifest

    async def _immutable_values(self, groups: Sequence[Sequence[str]]) -> list[list[bytes | None]]:
        """Immutable strings, one MGET per group (of one slot), pipelined; misses again from the primary."""
        if not groups:
            return []
        pipe = self.immutable.pipeline(transaction=False)
        for names in groups:
            pipe.execute_command("MGET", *names)  # a cluster pipeline refuses .mget(), not one slot's MGET
        found: list[list[bytes | None]] = await pipe.execute()
        if self.immutable is self.redis:
            return found
        missing = [
            (g, i) for g, values in enumerate(found) for i, value in enumerate(values) if value is None
        ]
        if missing:
            pipe = self.redis.pipeline(transaction=False)
            for g, i in missing:
                pipe.get(groups[g][i])
            for (g, i), value in zip(missing, await pipe.execute(), strict=True):
                found[g][i] = value
        return found

    async def manifest(self, type_name: str, version: str) -> Manifest | None:
        """A version's manifest if it is published."""
        key = self.keys.manifest(type_name, version)
        raw = await self.immutable.get(key)
        if raw is None and self.immutable is not self.redis:
            raw = await self.redis.get(key)
        return None if raw is None else self._remember(parse_manifest(raw))

    async def is_published(self, type_name: str, version: str) -> bool:
        """Whether the version's manifest exists now."""
        return bool(await self.redis.exists(self.keys.manifest(type_name, version)))

    async def in_use(self, type_name: str) -> str | None:
        """The version serving uses."""
        return _text(await self.redis.get(self.keys.in_use(type_name)))

    async def states(self, type_names: Sequence[str]) -> dict[str, TypeState]:
        """in_use and indexed versions per type, each type's pair read atomically (one round trip)."""
        if not type_names:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for name in type_names:
            # Through execute_command: a cluster pipeline routes EVAL by its keys' slot.
            pipe.execute_command("EVAL", _STATE, 2, self.keys.in_use(name), self.keys.indexed(name))
        replies = await pipe.execute()
        return {name: _state(reply) for name, reply in zip(type_names, replies, strict=True)}

    async def in_use_and_profile(self, type_name: str, user_id: str) -> tuple[str | None, Profile | None]:
        """in_use and the user's stored profile in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.in_use(type_name))
        pipe.get(self.keys.profile(user_id))
        version, raw_profile = await pipe.execute()
        if raw_profile is None:
            return _text(version), None
        try:
            profile = Profile.model_validate_json(raw_profile)
        except pydantic.ValidationError as exc:
            raise CorruptData(f"stored profile of user {user_id!r} does not match the contract") from exc
        return _text(version), profile

    async def vectors(
        self, type_name: str, version: str, kind: Kind, ids: Sequence[str], dim: int
    ) -> dict[str, Matrix]:
        """Vectors of `ids` that exist in the published version: cache first, the rest in one round trip.

        One id is one HGET on its bucket hash; more are grouped by bucket, one HMGET per bucket, pipelined.
        """
        found = self.cache.get_many(type_name, version, kind, ids)
        misses = [i for i in ids if i not in found]
        if not misses:
            return found
        buckets = await self.buckets(type_name, version)
        if buckets is None:
            return found  # not published (or deleted): none of its vectors may be served
        fetched = await self._fetch(self.immutable, type_name, version, kind, buckets.of(kind), misses, dim)
        if self.immutable is not self.redis and len(fetched) < len(misses):
            # A replica that lags lacks them for now; only the primary's answer counts as absent.
            rest = [i for i in misses if i not in fetched]
            fetched.update(
                await self._fetch(self.redis, type_name, version, kind, buckets.of(kind), rest, dim)
            )
        self.cache.put_many(type_name, version, kind, fetched)
        found.update(fetched)
        return found

    async def sample(
        self, type_name: str, version: str, kind: Kind, count: int, dim: int
    ) -> dict[str, Matrix]:
        """Up to `count` random vectors of a kind of a published version (none if unpublished).

        Spread over up to `count` random buckets, HRANDFIELD on each, pipelined: one round trip, and
        no bucket's ids dominate the sample.
        """
        buckets = await self.buckets(type_name, version)
        if buckets is None or count < 1:
            return {}
        total = buckets.of(kind)
        chosen = random.sample(range(total), min(total, count))
        each = -(-count // len(chosen))
        pipe = self.redis.pipeline(transaction=False)
        for bucket in chosen:
            pipe.hrandfield(self.keys.vectors(type_name, version, kind, bucket), each, withvalues=True)
        out: dict[str, Matrix] = {}
        for reply in await pipe.execute():
            ids = [text(raw) for raw in reply[0::2]]
            out.update(_decode_rows(ids, reply[1::2], dim))
        return dict(list(out.items())[:count])

    async def _fetch(
        self,
        redis: AsyncRedis,
        type_name: str,
        version: str,
        kind: Kind,
        count: int,
        ids: Sequence[str],
        dim: int,
    ) -> dict[str, Matrix]:
        """Stored vectors of `ids`: one HGET for one id, else one HMGET per bucket, pipelined."""
        if len(ids) == 1:
            key = self.keys.vectors(type_name, version, kind, bucket_of(ids[0], count))
            return _decode_rows(ids, [await redis.hget(key, ids[0])], dim)
        pipe = redis.pipeline(transaction=False)
        groups = self._queue(pipe, type_name, version, kind, count, ids)
        return _decode_groups(groups, await pipe.execute(), dim)

    def _queue(
        self, pipe: Any, type_name: str, version: str, kind: Kind, count: int, ids: Sequence[str]
    ) -> list[list[str]]:
        """Queue one HMGET per bucket on `pipe`; returns the ids of each, in queue order."""
        groups = by_bucket(ids, count)
        for bucket, members in groups.items():
            pipe.hmget(self.keys.vectors(type_name, version, kind, bucket), members)
        return list(groups.values())

    async def attribute_vectors(
        self, type_name: str, version: str, attribute_ids: Sequence[str], dim: int
    ) -> dict[str, Matrix]:
        """Attribute vectors; an `item:X` without one uses the version's item vector of X.

        The fallback lets a direct type aggregate a user from the items they read, and lets a
        profile (item ids) feed an indirect type that stores item vectors. Both kinds in one round trip.
        """
        unique = list(dict.fromkeys(attribute_ids))
        found = self.cache.get_many(type_name, version, Kind.ATTRIBUTE, unique)
        misses = [a for a in unique if a not in found]
        if not misses:
            return found
        buckets = await self.buckets(type_name, version)
        if buckets is None:
            return found
        item_misses = [a for a in misses if a.startswith(ITEM_NAMESPACE)]
        item_cached = self.cache.get_many(
            type_name, version, Kind.ITEM, [a[len(ITEM_NAMESPACE) :] for a in item_misses]
        )
        item_fetch = [
            a[len(ITEM_NAMESPACE) :] for a in item_misses if a[len(ITEM_NAMESPACE) :] not in item_cached
        ]
        attrs, fetched = await self._both(
            self.immutable, type_name, version, buckets, misses, item_fetch, dim
        )
        if self.immutable is not self.redis:
            # A replica that lags lacks them for now; only the primary's answer counts as absent.
            attr_rest = [a for a in misses if a not in attrs]
            item_rest = [i for i in item_fetch if i not in fetched]
            if attr_rest or item_rest:
                more = await self._both(self.redis, type_name, version, buckets, attr_rest, item_rest, dim)
                attrs.update(more[0])
                fetched.update(more[1])
        self.cache.put_many(type_name, version, Kind.ATTRIBUTE, attrs)
        found.update(attrs)
        self.cache.put_many(type_name, version, Kind.ITEM, fetched)
        items: dict[str, Matrix] = {**item_cached, **fetched}
        for attribute in item_misses:
            if attribute not in found and attribute[len(ITEM_NAMESPACE) :] in items:
                found[attribute] = items[attribute[len(ITEM_NAMESPACE) :]]
        return found

    async def _both(
        self,
        redis: AsyncRedis,
        type_name: str,
        version: str,
        buckets: Buckets,
        attribute_ids: Sequence[str],
        item_ids: Sequence[str],
        dim: int,
    ) -> tuple[dict[str, Matrix], dict[str, Matrix]]:
        """Stored attribute and item vectors of the ids, in one pipelined round trip."""
        pipe = redis.pipeline(transaction=False)
        attr_groups = self._queue(pipe, type_name, version, Kind.ATTRIBUTE, buckets.attr, attribute_ids)
        item_groups = self._queue(pipe, type_name, version, Kind.ITEM, buckets.item, item_ids)
        replies = await pipe.execute() if attr_groups or item_groups else []
        attrs = _decode_groups(attr_groups, replies[: len(attr_groups)], dim)
        return attrs, _decode_groups(item_groups, replies[len(attr_groups) :], dim)


def _decode_groups(
    groups: Sequence[Sequence[str]], replies: Sequence[Sequence[bytes | str | None]], dim: int
) -> dict[str, Matrix]:
    out: dict[str, Matrix] = {}
    for ids, raw in zip(groups, replies, strict=True):
        out.update(_decode_rows(ids, raw, dim))
    return out


def _decode_rows(ids: Sequence[str], raw: Sequence[bytes | str | None], dim: int) -> dict[str, Matrix]:
    out: dict[str, Matrix] = {}
    width = 4 * dim
    for entity, data in zip(ids, raw, strict=True):
        if data is None:
            continue
        if not isinstance(data, bytes) or len(data) != width:
            raise CorruptData(f"stored vector of {entity!r} has {len(data)} bytes, not {width} (dim {dim})")
        out[entity] = np.frombuffer(data, dtype=DTYPE)
    return out
