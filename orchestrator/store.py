"""Reads from Redis through the contract's key schema; vectors go through the in-process cache."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pydantic
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from contract.indexing import IndexedLocation
from contract.keys import Keys, Kind
from contract.manifest import Buckets, Manifest, UnreadableManifestError, read_manifest
from contract.profiles import Profile
from contract.types import EmbeddingType
from contract.vectors import DTYPE, Matrix, bucket_of, by_bucket
from orchestrator.cache import VectorCache
from orchestrator.errors import CorruptData

log = logging.getLogger(__name__)

ITEM_NAMESPACE = "item:"

TypeState = tuple[str | None, dict[str, IndexedLocation]]  # (in_use, indexed versions)

# Bucket counts of this many versions are remembered; a version's never change once published.
MAX_REMEMBERED_VERSIONS = 10_000


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


def parse_indexed(raw: Mapping[bytes | str, bytes | str]) -> dict[str, IndexedLocation]:
    """The indexed-versions hash as version -> location."""
    try:
        return {text(k): IndexedLocation.model_validate_json(v) for k, v in raw.items()}
    except pydantic.ValidationError as exc:
        raise CorruptData("a stored IndexedLocation does not match the contract") from exc


class Store:
    """Thin async reads; one round trip each unless noted."""

    def __init__(self, redis: Redis, keys: Keys, cache: VectorCache) -> None:
        self.redis = redis
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

        A version counts only if its manifest exists: the sorted set and the manifest are written in
        one MULTI, and a member whose manifest has gone (unpublished) is skipped.
        """
        pipe = self.redis.pipeline(transaction=False)
        for name in type_names:
            pipe.zrange(self.keys.published(name), 0, -1)
        members: list[list[bytes]] = await pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        wanted: list[tuple[str, list[str]]] = []
        for name, versions in zip(type_names, members, strict=True):
            ids = [v.decode() for v in versions]
            wanted.append((name, ids))
            if ids:
                pipe.mget([self.keys.manifest(name, v) for v in ids])
        raws: list[list[bytes | None]] = await pipe.execute() if any(ids for _, ids in wanted) else []
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

    async def manifest(self, type_name: str, version: str) -> Manifest | None:
        """A version's manifest if it is published."""
        raw = await self.redis.get(self.keys.manifest(type_name, version))
        return None if raw is None else self._remember(parse_manifest(raw))

    async def is_published(self, type_name: str, version: str) -> bool:
        """Whether the version's manifest exists now."""
        return bool(await self.redis.exists(self.keys.manifest(type_name, version)))

    async def in_use(self, type_name: str) -> str | None:
        """The version serving uses."""
        return _text(await self.redis.get(self.keys.in_use(type_name)))

    async def states(self, type_names: Sequence[str]) -> dict[str, TypeState]:
        """in_use and indexed versions per type, read together."""
        pipe = self.redis.pipeline(transaction=True)
        for name in type_names:
            pipe.get(self.keys.in_use(name))
            pipe.hgetall(self.keys.indexed(name))
        raw = await pipe.execute() if type_names else []
        return {name: (_text(raw[2 * i]), parse_indexed(raw[2 * i + 1])) for i, name in enumerate(type_names)}

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
        count = buckets.of(kind)
        if len(misses) == 1:
            entity = misses[0]
            key = self.keys.vectors(type_name, version, kind, bucket_of(entity, count))
            fetched = _decode_rows(misses, [await self.redis.hget(key, entity)], dim)
        else:
            pipe = self.redis.pipeline(transaction=False)
            groups = self._queue(pipe, type_name, version, kind, count, misses)
            fetched = _decode_groups(groups, await pipe.execute(), dim)
        self.cache.put_many(type_name, version, kind, fetched)
        found.update(fetched)
        return found

    def _queue(
        self, pipe: Pipeline, type_name: str, version: str, kind: Kind, count: int, ids: Sequence[str]
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
        pipe = self.redis.pipeline(transaction=False)
        attr_groups = self._queue(pipe, type_name, version, Kind.ATTRIBUTE, buckets.attr, misses)
        item_groups = self._queue(pipe, type_name, version, Kind.ITEM, buckets.item, item_fetch)
        replies = await pipe.execute()
        attrs = _decode_groups(attr_groups, replies[: len(attr_groups)], dim)
        self.cache.put_many(type_name, version, Kind.ATTRIBUTE, attrs)
        found.update(attrs)
        items: dict[str, Matrix] = dict(item_cached)
        if item_fetch:
            fetched = _decode_groups(item_groups, replies[len(attr_groups) :], dim)
            self.cache.put_many(type_name, version, Kind.ITEM, fetched)
            items.update(fetched)
        for attribute in item_misses:
            if attribute not in found and attribute[len(ITEM_NAMESPACE) :] in items:
                found[attribute] = items[attribute[len(ITEM_NAMESPACE) :]]
        return found


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
