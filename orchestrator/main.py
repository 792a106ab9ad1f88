"""Builds the orchestrator app: `create_app(settings)`; the lifespan owns the Redis client and the poller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from starlette.responses import Response

from catalog.store import CatalogStore
from contract.items import schema
from contract.keys import Keys
from contract.redis_clients import REDIS_FAILURES, AsyncRedis, async_client
from contract.redis_setup import SetupGate, explain
from contract.replication import Replication
from contract.settings import OrchestratorSettings
from contract.wire import MAX_BODY_BYTES
from orchestrator.api.deps import SECURITY_SCHEMES
from orchestrator.api.routes import catalog_items, in_use, items, ops, types, users
from orchestrator.cache import VectorCache
from orchestrator.catalog import Catalog
from orchestrator.errors import RedisUnavailable
from orchestrator.metrics import Metrics
from orchestrator.state import AppState
from orchestrator.store import Store
from service.app import create_service_app
from service.auth import KeyRing
from service.rendering import render

log = logging.getLogger(__name__)

DESCRIPTION = f"""\
The Embeddings Orchestrator: the only component that knows which version of each embedding type each
side may use. `latest` is the newest published version (polled from Redis); `in_use` is what serving
uses, moved only by the indexer's compare-and-set or an admin rollback, with an audit trail.

**Authentication:** every `/v1` route needs an API key, as `Authorization: Bearer <key>` or `X-API-Key`.
Roles: `reader` (reads), `indexer` (reads, in_use compare-and-set, indexed-version records), `admin`
(everything, including rollback). Each route names the roles it admits. Probes and `/metrics` need none.

**Errors:** every error is `{{"error": "<Name>", "detail": "<what and which field>"}}`: 400 BadRequest (body
not JSON), 401 Unauthorized, 403 Forbidden, 404 Unknown*, 409 conflicts, 413 BodyTooLarge (bodies over
{MAX_BODY_BYTES >> 20} MiB), 422 InvalidField / NoAttributesFound, 503 RedisUnavailable with `Retry-After`.
"""


def _redis(settings: OrchestratorSettings, replica_reads: bool = False) -> AsyncRedis:
    return async_client(
        settings,
        timeout=settings.request_timeout_seconds,
        replica_reads=replica_reads,
        # One quick retry re-dials a connection that died while Redis restarted; more would hold a
        # request past its timeout budget when Redis is really down.
        retry=Retry(ConstantBackoff(0.01), 1),
        health_check_interval=1,
        max_connections=256,
    )


def create_app(settings: OrchestratorSettings) -> FastAPI:
    """The orchestrator app for `settings`."""
    cache = VectorCache(settings.orchestrator_cache_entries)
    metrics = Metrics(cache)

    @asynccontextmanager
    async def running() -> AsyncIterator[AppState]:
        redis = _redis(settings)
        immutable = _redis(settings, replica_reads=True) if settings.redis_replica_reads else redis
        keys = Keys(settings.key_prefix)
        # A Redis of the wrong topology or set up wrongly refuses the start (RedisSetupError names it).
        setup = SetupGate(redis, settings, keys)
        await setup.startup()
        store = Store(redis, keys, cache, immutable)
        catalog = Catalog(store)
        metrics.catalog = catalog
        # The first poll is inside the loop: startup does not wait on (or fail without) Redis.
        stop = asyncio.Event()
        poller = asyncio.create_task(catalog.poll_until(stop, settings.orchestrator_poll_seconds))
        try:
            yield AppState(
                settings=settings,
                keys=keys,
                redis=redis,
                redis_setup=setup,
                replication=Replication.of(settings),
                store=store,
                catalog=catalog,
                items=CatalogStore(redis, keys, schema(), Replication.of(settings)),
                cache=cache,
                metrics=metrics,
            )
        finally:
            stop.set()
            await poller
            await redis.aclose()
            if immutable is not redis:
                await immutable.aclose()

    app = create_service_app(
        title="Lockstep orchestrator",
        version="1",
        description=DESCRIPTION,
        routers=[module.router for module in (types, users, items, catalog_items, in_use, ops)],
        state_name="orchestrator",
        open_state=running,
        observer=metrics,
        max_in_flight=settings.orchestrator_max_in_flight,
        # Routes authenticate in one plain dependency (see api/deps.py), so the schemes are declared here.
        security_schemes=SECURITY_SCHEMES,
    )

    async def redis_down(_request: Request, exc: Exception) -> Response:
        metrics.redis_errors.inc()
        log.warning("redis call failed: %s", type(exc).__name__)
        # A failure that points at the setup (MOVED, CLUSTERDOWN, too few replicas) says so; an outage
        # says only its kind (connection details stay in the log).
        why = explain(exc)
        return render(RedisUnavailable(f"redis: {why or type(exc).__name__}; retry shortly"))

    for failure in REDIS_FAILURES:
        app.add_exception_handler(failure, redis_down)
    # Read by GuardedRoute before the body (and before the lifespan state is needed).
    app.state.keyring = KeyRing.of(settings)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from the environment."""
    return create_app(OrchestratorSettings())
