"""What the lifespan builds and every route reads: clients, caches, the polled catalog."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from contract.keys import Keys
from contract.settings import OrchestratorSettings
from orchestrator.auth import KeyRing
from orchestrator.cache import VectorCache
from orchestrator.catalog import Catalog
from orchestrator.metrics import Metrics
from orchestrator.store import Store


@dataclass(frozen=True)
class AppState:
    """One app instance's collaborators."""

    settings: OrchestratorSettings
    keys: Keys
    redis: Redis
    store: Store
    catalog: Catalog
    cache: VectorCache
    metrics: Metrics
    keyring: KeyRing
