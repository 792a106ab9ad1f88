"""Helpers of the topology tests: a type published as producers do, the orchestrator app over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import numpy as np

from contract.indexing import IndexedLocation, Mode
from contract.keys import Keys
from contract.redis_clients import SyncRedis
from contract.replication import Replication
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from orchestrator.main import create_app
from training.publish import VectorSet, publish
from training.registry import register_type

DIM = 8
TYPE = EmbeddingType(name="als-d8", family=Family.DIRECT_DIRECT, dim=DIM, similarity=Similarity.DOT)


def frame(month: int) -> Frame:
    """A one-month 2017 frame; later months make later versions."""
    return Frame(datetime(2017, month, 1, tzinfo=UTC), datetime(2017, month + 1, 1, tzinfo=UTC))


def vector_set(prefix: str, count: int, seed: int) -> VectorSet:
    """`count` random vectors named prefix0..prefixN."""
    rng = np.random.default_rng(seed)
    return VectorSet(
        tuple(f"{prefix}{i}" for i in range(count)), rng.standard_normal((count, DIM)).astype("<f4")
    )


def publish_versions(client: SyncRedis, settings: Settings, users: int, months: int = 2) -> list[str]:
    """Register TYPE and publish `months` versions (`users` users, 50 items) as `lockstep publish` does."""
    keys = Keys(settings.key_prefix)
    register_type(client, keys, TYPE)
    return [
        publish(
            client,
            keys,
            TYPE,
            frame(month),
            users=vector_set("u", users, month),
            items=vector_set("", 50, 100 + month),
            replication=Replication.of(settings),
        ).manifest.version
        for month in range(1, months + 1)
    ]


def location(version: str) -> dict[str, object]:
    """An IndexedLocation body, as the indexer records one."""
    return IndexedLocation(
        version=version,
        mode=Mode.SHADOW,
        index=f"idx-{version.lower()}",
        vector_field="emb",
        version_field="emb_version",
        indexed_at=datetime.now(UTC),
        item_count=50,
    ).model_dump(mode="json")


def auth(settings: Settings, role: str) -> dict[str, str]:
    """Bearer header with the first key of `role`."""
    secrets = {"reader": settings.reader_keys, "indexer": settings.indexer_keys, "admin": settings.admin_keys}
    return {"Authorization": f"Bearer {secrets[role][0].get_secret_value()}"}


@asynccontextmanager
async def orchestrator(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The orchestrator app with its lifespan running, over ASGI."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://orchestrator") as client:
            yield client
