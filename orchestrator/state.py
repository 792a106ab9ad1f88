"""What the lifespan builds and every route reads: clients, caches, the polled catalog."""

from __future__ import annotations

from dataclasses import dataclass

from catalog.store import CatalogStore
from contract.keys import Keys
from contract.redis_clients import AsyncRedis
from contract.redis_setup import SetupGate
from contract.replication import Replication
from contract.settings import OrchestratorSettings
from orchestrator.cache import VectorCache
from orchestrator.catalog import Catalog
from orchestrator.metrics import Metrics
from orchestrator.store import Store


@dataclass(frozen=True)
class AppState:
    """One app instance's collaborators."""

    settings: OrchestratorSettings
    keys: Keys
    redis: AsyncRedis  # the primary (reads of immutable data go through store.immutable)
    redis_setup: SetupGate
    replication: Replication  # what an in_use change must reach before it counts
    store: Store
    catalog: Catalog  # the registered types and their versions (polled)
    items: CatalogStore  # the item catalog's store of record
    cache: VectorCache
    metrics: Metrics
