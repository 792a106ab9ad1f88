"""Orchestrator test helpers: contract-exact fixture data in Redis, apps with their lifespan running."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import numpy as np
import redis

from contract.keys import Keys, Kind
from contract.manifest import Buckets, Counts, Manifest
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.vectors import buckets_for, by_bucket, encode
from contract.versions import Frame
from orchestrator.main import create_app

Vectors = Mapping[Kind, Mapping[str, np.ndarray]]


def frame(month: int) -> Frame:
    """A one-month 2017 frame; later months make later versions."""
    return Frame(datetime(2017, month, 1, tzinfo=UTC), datetime(2017, month + 1, 1, tzinfo=UTC))


@dataclass(frozen=True)
class Fixtures:
    """Writes types, versions, profiles and indexed records the way the contract says producers do."""

    client: redis.Redis
    keys: Keys

    def register(self, etype: EmbeddingType) -> None:
        """Add a type to the registry."""
        self.client.hset(self.keys.types(), etype.name, etype.model_dump_json())

    def write_vectors(
        self, etype: EmbeddingType, version: str, vectors: Vectors, total: Mapping[Kind, int] | None = None
    ) -> None:
        """Vectors first (no manifest yet: the version does not exist for readers), in their buckets.

        `total` is the kind's vector count of the whole version when `vectors` is only part of it: the
        bucket count follows the total (contract.vectors.buckets_for), as the manifest will record it.
        """
        for kind, rows in vectors.items():
            buckets = buckets_for(len(rows) if total is None else total[kind])
            for bucket, ids in by_bucket(rows, buckets).items():
                self.client.hset(
                    self.keys.vectors(etype.name, version, kind, bucket),
                    mapping={k: encode(rows[k]) for k in ids},
                )

    def stored_count(self, etype: EmbeddingType, version: str, kind: Kind) -> int:
        """How many vectors of a kind a published version holds, over the buckets its manifest names."""
        raw = self.client.get(self.keys.manifest(etype.name, version))
        assert raw is not None, f"{version} is not published"
        buckets = Manifest.model_validate_json(raw).buckets.of(kind)
        return sum(
            int(self.client.hlen(self.keys.vectors(etype.name, version, kind, b))) for b in range(buckets)
        )

    def commit(self, etype: EmbeddingType, when: Frame, vectors: Vectors) -> Manifest:
        """The last step of publishing: one MULTI with the manifest and the published-set entry."""
        version = when.version_id
        seq = int(self.client.incr(self.keys.publish_seq(etype.name)))
        digest = hashlib.sha256()
        for kind in sorted(vectors, key=lambda k: k.value):
            for entity in sorted(vectors[kind]):
                digest.update(f"{kind.value}\n{entity}\n".encode() + encode(vectors[kind][entity]))
        counts = Counts(**{k.value: len(v) for k, v in vectors.items()})
        manifest = Manifest(
            type_name=etype.name,
            version=version,
            seq=seq,
            frame_start=when.start,
            frame_end=when.end,
            dim=etype.dim,
            counts=counts,
            buckets=Buckets.for_counts(counts),
            checksum=digest.hexdigest(),
            created_at=datetime.now(UTC),
        )
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self.keys.manifest(etype.name, version), manifest.model_dump_json())
            pipe.zadd(self.keys.published(etype.name), {version: seq})
            pipe.execute()
        return manifest

    def publish(self, etype: EmbeddingType, when: Frame, vectors: Vectors) -> str:
        """Vectors, then the manifest; returns the version id."""
        self.write_vectors(etype, when.version_id, vectors)
        return self.commit(etype, when, vectors).version

    def unpublish(self, etype: EmbeddingType, version: str) -> None:
        """Retire a version: manifest and published entry go together."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.manifest(etype.name, version))
            pipe.zrem(self.keys.published(etype.name), version)
            pipe.execute()

    def mark_indexed(self, etype: EmbeddingType, version: str) -> None:
        """What the indexer records (tests write it directly to set up state)."""
        from contract.indexing import IndexedLocation, Mode

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
        """A user's stored profile."""
        interactions = [{"item_id": i, "weight": w} for i, w in items.items()]
        self.client.set(self.keys.profile(user_id), _json({"user_id": user_id, "interactions": interactions}))

    def snapshot(self) -> dict[bytes, bytes | None]:
        """Every key of the test's prefix with its serialized value (to prove nothing was written)."""
        # KEYS, not SCAN: one call even when the shared Redis holds 100k keys of other tests.
        names = sorted(self.client.keys(self.keys.all_keys_pattern()))
        return {k: self.client.dump(k) for k in names}


def _json(payload: object) -> str:
    import json

    return json.dumps(payload)


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
    secrets = {"reader": settings.reader_keys, "indexer": settings.indexer_keys, "admin": settings.admin_keys}
    return {"Authorization": f"Bearer {secrets[role][position].get_secret_value()}"}
