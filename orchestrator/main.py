"""Builds the orchestrator app: `create_app(settings)`; the lifespan owns the Redis client and the poller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from contract.keys import Keys
from contract.settings import Settings
from orchestrator.api.deps import SECURITY_SCHEMES
from orchestrator.api.routes import in_use, items, ops, types, users
from orchestrator.auth import KeyRing
from orchestrator.body_limit import BodyLimitMiddleware
from orchestrator.cache import VectorCache
from orchestrator.catalog import Catalog
from orchestrator.errors import InvalidRequest, OrchestratorError, RedisUnavailable, error_body
from orchestrator.metrics import Metrics, MetricsMiddleware
from orchestrator.state import AppState
from orchestrator.store import Store
from orchestrator.validation import describe_validation_error

log = logging.getLogger(__name__)

DESCRIPTION = """\
The Embeddings Orchestrator: the only component that knows which version of each embedding type each
side may use. `latest` is the newest published version (polled from Redis); `in_use` is what serving
uses, moved only by the indexer's compare-and-set or an admin rollback, with an audit trail.

**Authentication:** every `/v1` route needs an API key, as `Authorization: Bearer <key>` or `X-API-Key`.
Roles: `reader` (reads), `indexer` (reads, in_use compare-and-set, indexed-version records), `admin`
(everything, including rollback). Each route names the roles it admits. Probes and `/metrics` need none.

**Errors:** every error is `{"error": "<Name>", "detail": "<what and which field>"}`: 401 Unauthorized,
403 Forbidden, 404 Unknown*, 409 conflicts, 413 BodyTooLarge (bodies over 1 MiB), 422 InvalidRequest /
NoAttributesFound, 503 RedisUnavailable with `Retry-After`.
"""


def _redis(settings: Settings) -> Redis:
    timeout = settings.request_timeout_seconds
    return Redis.from_url(
        settings.redis_endpoint,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # One quick retry re-dials a connection that died while Redis restarted; more would hold a
        # request past its timeout budget when Redis is really down.
        retry=Retry(ConstantBackoff(0.01), 1),
        health_check_interval=1,
        max_connections=256,
    )


def create_app(settings: Settings) -> FastAPI:
    """The orchestrator app for `settings`."""
    cache = VectorCache(settings.orchestrator_cache_entries)
    metrics = Metrics(cache)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = _redis(settings)
        keys = Keys(settings.key_prefix)
        store = Store(redis, keys, cache)
        catalog = Catalog(store)
        metrics.catalog = catalog
        app.state.orchestrator = AppState(
            settings=settings,
            keys=keys,
            redis=redis,
            store=store,
            catalog=catalog,
            cache=cache,
            metrics=metrics,
            keyring=KeyRing.of(settings),
        )
        # The first poll is inside the loop: startup does not wait on (or fail without) Redis.
        stop = asyncio.Event()
        poller = asyncio.create_task(catalog.poll_until(stop, settings.orchestrator_poll_seconds))
        try:
            yield
        finally:
            stop.set()
            await poller
            await redis.aclose()

    app = FastAPI(
        title="Lockstep orchestrator",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    for module in (types, users, items, in_use, ops):
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        # Routes authenticate in one plain dependency (see api/deps.py), so the schemes are declared here.
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(OrchestratorError)
    async def _ours(_request: Request, exc: OrchestratorError) -> JSONResponse:
        if isinstance(exc, RedisUnavailable):
            metrics.redis_errors.inc()
        return JSONResponse(error_body(exc.name, exc.detail), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body(InvalidRequest.__name__, describe_validation_error(exc.errors())),
            status_code=InvalidRequest.status,
        )

    @app.exception_handler(RedisError)
    async def _redis_down(_request: Request, exc: RedisError) -> JSONResponse:
        metrics.redis_errors.inc()
        log.warning("redis call failed: %s", type(exc).__name__)
        error = RedisUnavailable(f"redis: {type(exc).__name__}; retry shortly")
        return JSONResponse(
            error_body(error.name, error.detail), status_code=error.status, headers=error.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {404: "NotFound", 405: "MethodNotAllowed"}
        return JSONResponse(
            error_body(names.get(exc.status_code, "HTTPError"), f"path: {exc.detail}"),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers: settings from the environment."""
    return create_app(Settings())
