"""What the cluster tests publish and index: a type over goodbooks books, users with profiles, runners."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import redis
from catalog_loading import load_goodbooks

from contract.keys import Keys
from contract.profiles import Interaction, Profile
from contract.redis_clients import login_options
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from indexer.metrics import IndexerMetrics
from indexer.scheduler import Runner
from training.profiles import write_profiles
from training.publish import VectorSet, publish
from training.registry import register_type

COLD = 20  # catalog items without a vector of the version (the fallback scorer's)
USERS = 300
SEEN = 5  # items in each user's profile, excluded from their recommendations


def free_url() -> str:
    """An http URL on a port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@dataclass(frozen=True)
class Published:
    """A type with one published version, users with profiles, on prefixes of its own."""

    settings: Settings
    etype: EmbeddingType
    version: str
    items: int
    users: list[str]


def own_prefixes(settings: Settings, **update: object) -> Settings:
    """The settings with a key and index prefix of their own (and any other change)."""
    token = f"c{uuid.uuid4().hex[:10]}"
    return settings.model_copy(update={"key_prefix": token, "index_prefix": token, **update})


def publish_type(settings: Settings, name: str, dim: int, items: int, seed: int) -> Published:
    """Publish a version of a DOT type over the first `items` goodbooks books, with users and profiles."""
    client = redis.Redis.from_url(settings.redis_endpoint, **login_options(settings))
    keys = Keys(settings.key_prefix)
    etype = EmbeddingType(name=name, family=Family.DIRECT_DIRECT, dim=dim, similarity=Similarity.DOT)
    register_type(client, keys, etype)
    rng = np.random.default_rng(seed)
    catalog = [item.item_id for item in load_goodbooks(settings, items)]
    warm = tuple(catalog[COLD:])
    users = [f"u{j}" for j in range(USERS)]
    start = datetime(2017, 1, 1, tzinfo=UTC)
    frame = Frame(start, start + timedelta(days=30))
    result = publish(
        client,
        keys,
        etype,
        frame,
        users=VectorSet(tuple(users), rng.normal(size=(len(users), dim)).astype(np.float32)),
        items=VectorSet(warm, rng.normal(size=(len(warm), dim)).astype(np.float32)),
    )
    profiles = [
        Profile(
            user_id=user,
            interactions=tuple(
                Interaction(item_id=str(item), weight=1.0) for item in rng.choice(warm, SEEN, replace=False)
            ),
        )
        for user in users
    ]
    write_profiles(client, keys, profiles)
    client.close()
    return Published(settings, etype, result.manifest.version, items, users)


def drop_keys(settings: Settings) -> None:
    """Delete every Redis key of the settings' prefix (the cluster's indices go with the cluster)."""
    client = redis.Redis.from_url(settings.redis_endpoint, **login_options(settings))
    batch = list(client.scan_iter(match=f"{settings.key_prefix}:*", count=1000))
    for start in range(0, len(batch), 1000):
        client.delete(*batch[start : start + 1000])
    client.close()


def runner(
    settings: Settings, made: list[Runner], step: Callable[[str], Awaitable[None]] | None = None
) -> Runner:
    """An indexer runner (batches of 500) over the catalog publish_type loaded, kept in `made`."""
    made.append(Runner(settings, IndexerMetrics.create(), batch_size=500, step=step))
    return made[-1]
