"""Everything one serving app holds: clients, caches, breakers, background tasks, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contract.keys import Keys
from contract.redis_clients import AsyncRedis, async_client
from contract.settings import ServingSettings
from contract.wire import UserVector
from orchestrator_client import OrchestratorClient
from search.client import build_client
from search.port import SearchEngine
from search.results import ScoredItem
from service.breaker import Breaker
from serving.background import Background
from serving.caches import LastGood, TtlCache
from serving.directory import TypeDirectory
from serving.metrics import Metrics
from serving.upstream import Orchestrator


@dataclass
class AppState:
    """Per-app state, built by the lifespan (routes reach it through serving.api.deps) and closed with it."""

    settings: ServingSettings
    keys: Keys
    orchestrator: Orchestrator
    search: SearchEngine
    redis: AsyncRedis
    directory: TypeDirectory
    metrics: Metrics
    user_vectors: TtlCache[UserVector]
    results: TtlCache[list[dict[str, Any]]]
    popular: LastGood[list[ScoredItem]]
    orchestrator_breaker: Breaker
    search_breaker: Breaker
    background: Background

    @classmethod
    def build(cls, settings: ServingSettings) -> AppState:
        """Build clients, caches and breakers (no I/O yet)."""
        metrics = Metrics()
        client = OrchestratorClient(
            settings.orchestrator_url,
            settings.reader_key.get_secret_value(),
            timeout=settings.serving_orchestrator_timeout_seconds,
        )
        orchestrator_breaker = Breaker("orchestrator")
        orchestrator = Orchestrator(client, orchestrator_breaker, metrics)
        background = Background()
        return cls(
            settings=settings,
            keys=Keys(settings.key_prefix),
            orchestrator=orchestrator,
            search=build_client(settings, timeout=settings.serving_opensearch_timeout_seconds, pool_size=64),
            redis=async_client(settings, timeout=settings.serving_opensearch_timeout_seconds),
            directory=TypeDirectory(
                orchestrator, settings.serving_staleness_seconds, settings.index_prefix, background
            ),
            metrics=metrics,
            user_vectors=TtlCache("user_vector", settings.serving_user_cache_seconds, 100_000, metrics.cache),
            results=TtlCache("result", settings.serving_result_cache_seconds, 20_000, metrics.cache),
            popular=LastGood(1_000),
            orchestrator_breaker=orchestrator_breaker,
            search_breaker=Breaker("opensearch"),
            background=background,
        )

    async def aclose(self) -> None:
        """Stop the background tasks, then close every client."""
        await self.background.aclose()
        await self.orchestrator.aclose()
        await self.search.aclose()
        await self.redis.aclose()
