"""Orchestrator test helpers: state written by the real producers, apps with their lifespan running."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import numpy as np
import redis

from contract import routes
from contract.indexing import IndexedLocation, Mode
from contract.keys import Keys, Kind
from contract.profiles import Interaction, Profile
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.vectors import buckets_for, by_bucket, encode
from contract.versions import Frame
from orchestrator.main import create_app
from training.profiles import write_profiles
from training.publish import VectorSet, publish, read_manifest
from training.registry import register_type
from training.retention import delete_version
from training.validation import REQUIRED

Vectors = Mapping[Kind, Mapping[str, np.ndarray]]

# A condition a test waits for is given this long before the test fails; it never paces the test.
CONDITION_DEADLINE_SECONDS = 30.0


def frame(month: int) -> Frame:
    """A one-month 2017 frame; later months make later versions."""
    return Frame(datetime(2017, month, 1, tzinfo=UTC), datetime(2017, month + 1, 1, tzinfo=UTC))


@dataclass(frozen=True)
class Fixtures:
    """Test state in Redis, written by the producers themselves; broken states only by name."""

    client: redis.Redis
    keys: Keys

    def register(self, etype: EmbeddingType) -> None:
        """Register a type (training.registry)."""
        register_type(self.client, self.keys, etype)

    def publish(
        self,
        etype: EmbeddingType,
        when: Frame,
        vectors: Vectors,
        *,
        chunk_size: int = 2000,
        progress: Callable[[int, int], None] | None = None,
    ) -> str:
        """Publish a version with training.publish; returns its id.

        A test names the kinds it reads. A kind the type's family requires that it leaves out (or gives
        empty) gets one filler vector, so the publisher accepts the version.
        """
        given = {kind: rows for kind, rows in vectors.items() if rows}
        for kind in REQUIRED[etype.family] - set(given):
            given[kind] = {_filler_id(etype, kind): np.ones(etype.dim, np.float32)}

        def vector_set(kind: Kind) -> VectorSet | None:
            rows = given.get(kind)
            return None if rows is None else VectorSet(tuple(rows), np.stack(list(rows.values())))

        result = publish(
            self.client,
            self.keys,
            etype,
            when,
            users=vector_set(Kind.USER),
            items=vector_set(Kind.ITEM),
            attributes=vector_set(Kind.ATTRIBUTE),
            chunk_size=chunk_size,
            progress=progress,
        )
        return result.manifest.version

    def unpublish(self, etype: EmbeddingType, version: str) -> None:
        """Retire a version (training.retention)."""
        delete_version(self.client, self.keys, etype.name, version)

    def stored_count(self, etype: EmbeddingType, version: str, kind: Kind) -> int:
        """How many vectors of a kind a published version holds, over the buckets its manifest names."""
        manifest = read_manifest(self.client, self.keys, etype.name, version)
        assert manifest is not None, f"{version} is not published"
        return sum(
            int(self.client.hlen(self.keys.vectors(etype.name, version, kind, b)))
            for b in range(manifest.buckets.of(kind))
        )

    def write_vectors_without_manifest(self, etype: EmbeddingType, when: Frame, vectors: Vectors) -> None:
        """Deliberately partial: bucket hashes with no manifest, as a killed publish leaves them."""
        for kind, rows in vectors.items():
            for bucket, ids in by_bucket(rows, buckets_for(len(rows))).items():
                self.client.hset(
                    self.keys.vectors(etype.name, when.version_id, kind, bucket),
                    mapping={k: encode(rows[k]) for k in ids},
                )

    def drop_from_manifest(self, etype: EmbeddingType, version: str, field: str) -> None:
        """Deliberately broken: a published manifest rewritten without `field` (an older contract's)."""
        key = self.keys.manifest(etype.name, version)
        stored = json.loads(self.client.get(key) or b"")
        del stored[field]
        self.client.set(key, json.dumps(stored))

    def mark_indexed(self, etype: EmbeddingType, version: str) -> None:
        """What the indexer records (tests write it directly to set up state)."""
        location = IndexedLocation(
            version=version,
            mode=Mode.SHADOW,
            index=f"idx-{version.lower()}",
            vector_field="emb",
            version_field="emb_version",
            indexed_at=datetime.now(UTC),
            item_count=1,
        )
        self.client.hset(self.keys.indexed(etype.name), version, location.model_dump_json())

    def set_in_use(self, etype: EmbeddingType, version: str) -> None:
        """Put a starting in_use in place."""
        self.client.set(self.keys.in_use(etype.name), version)

    def set_profile(self, user_id: str, items: Mapping[str, float]) -> None:
        """A user's stored profile (training.profiles)."""
        interactions = tuple(Interaction(item_id=i, weight=w) for i, w in items.items())
        write_profiles(self.client, self.keys, [Profile(user_id=user_id, interactions=interactions)])

    def snapshot(self) -> dict[bytes, bytes | None]:
        """Every key of the test's prefix with its serialized value (to prove nothing was written)."""
        # KEYS, not SCAN: one call even when the shared Redis holds 100k keys of other tests.
        names = sorted(self.client.keys(self.keys.all_keys_pattern()))
        return {k: self.client.dump(k) for k in names}


def _filler_id(etype: EmbeddingType, kind: Kind) -> str:
    return f"{etype.attribute_namespaces[0]}:filler" if kind is Kind.ATTRIBUTE else "filler"


def direct_type(name: str = "als-d8", dim: int = 8) -> EmbeddingType:
    """A direct-direct type."""
    return EmbeddingType(name=name, family=Family.DIRECT_DIRECT, dim=dim, similarity=Similarity.DOT)


def indirect_type(name: str = "tags-d8", dim: int = 8) -> EmbeddingType:
    """An indirect-indirect type over tags and items."""
    return EmbeddingType(
        name=name,
        family=Family.INDIRECT_INDIRECT,
        dim=dim,
        similarity=Similarity.COSINE,
        attribute_namespaces=("tag", "item"),
    )


def rows(prefix: str, count: int, dim: int, seed: int) -> dict[str, np.ndarray]:
    """`count` random float32 vectors keyed prefix0..prefixN."""
    rng = np.random.default_rng(seed)
    return {f"{prefix}{i}": rng.standard_normal(dim).astype(np.float32) for i in range(count)}


AppFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def open_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app with its lifespan running, reached over ASGI."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orchestrator") as client:
            yield client


def auth(settings: Settings, role: str, position: int = 0) -> dict[str, str]:
    """Bearer header with a key of `role`."""
    secrets = {
        "reader": settings.reader_keys,
        "indexer": settings.indexer_keys,
        "admin": settings.admin_keys,
        "catalog": settings.catalog_keys,
    }
    return {"Authorization": f"Bearer {secrets[role][position].get_secret_value()}"}


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until `check()` holds; fail naming `what` when it still does not after a generous deadline."""
    deadline = time.monotonic() + CONDITION_DEADLINE_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {CONDITION_DEADLINE_SECONDS:.0f} s")
        await asyncio.sleep(0.01)


async def polled_once(client: httpx.AsyncClient, settings: Settings) -> None:
    """Wait for the app's first poll: its listing is empty until then (call before requests naming a type)."""

    async def listed() -> bool:
        response = await client.get(routes.types_path(), headers=auth(settings, "reader"))
        return response.status_code == 200 and bool(response.json())

    await eventually(listed, "the app's first poll listed the registered types")
