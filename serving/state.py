"""Everything one serving app holds: clients, caches, breakers, metrics (built in the lifespan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from contract.keys import Keys
from contract.settings import Settings
from search.client import build_client
from search.port import SearchEngine
from search.results import ScoredItem
from service.breaker import Breaker
from serving.caches import LastGood, TtlCache
from serving.directory import TypeDirectory
from serving.metrics import Metrics
from serving.orchestrator_client import OrchestratorClient, UserVec


@dataclass
class AppState:
    """Per-app state; routes reach it through serving.api.deps."""

    settings: Settings
    keys: Keys
    orchestrator: OrchestratorClient
    search: SearchEngine
    redis: aioredis.Redis
    directory: TypeDirectory
    metrics: Metrics
    user_vectors: TtlCache[UserVec]
    results: TtlCache[list[dict[str, Any]]]
    popular: LastGood[list[ScoredItem]]
    orchestrator_breaker: Breaker = field(default_factory=lambda: Breaker("orchestrator"))
    search_breaker: Breaker = field(default_factory=lambda: Breaker("opensearch"))

    @classmethod
    def build(cls, settings: Settings) -> AppState:
        """Build clients and caches (no I/O yet)."""
        metrics = Metrics()
        orchestrator = OrchestratorClient(settings)
        return cls(
            settings=settings,
            keys=Keys(settings.key_prefix),
            orchestrator=orchestrator,
            search=build_client(settings, timeout=settings.serving_opensearch_timeout_seconds, pool_size=64),
            redis=aioredis.Redis.from_url(
                settings.redis_endpoint,
                socket_timeout=settings.serving_opensearch_timeout_seconds,
                socket_connect_timeout=settings.serving_opensearch_timeout_seconds,
            ),
            directory=TypeDirectory(orchestrator, settings.serving_staleness_seconds),
            metrics=metrics,
            user_vectors=TtlCache("user_vector", settings.serving_user_cache_seconds, 100_000, metrics.cache),
            results=TtlCache("result", settings.serving_result_cache_seconds, 20_000, metrics.cache),
            popular=LastGood(1_000),
        )

    async def aclose(self) -> None:
        """Close every client."""
        await self.orchestrator.aclose()
        await self.search.aclose()
        await self.redis.aclose()
