"""Probes and metrics: open to the scraper and the orchestrator's supervisor (no key; no data exposed)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contract import routes
from contract.redis_setup import RedisSetupError, unready
from orchestrator.api.deps import StateDep
from orchestrator.errors import RedisUnavailable, documented
from service.auth import GuardedRoute

router = APIRouter(tags=["ops"], route_class=GuardedRoute)


@router.get(
    routes.HEALTHZ, summary="Process liveness", description="**Roles:** none. 200 while the process is up."
)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    routes.READYZ,
    summary="Readiness: Redis reachable and set up as Lockstep needs",
    description="**Roles:** none. 200 when Redis answers PING (a cluster: every primary says cluster_state "
    "ok) and has passed the setup check (topology, noeviction, AOF, listpack sizes), else 503 "
    "RedisUnavailable with Retry-After naming what is wrong.",
    responses=documented(RedisUnavailable),
)
async def readyz(state: StateDep) -> dict[str, str]:
    """Redis answers and is set up right."""
    try:
        await state.redis_setup.ensure()
    except RedisSetupError as exc:
        raise RedisUnavailable(f"redis setup: {exc}") from exc
    problem = await unready(state.redis, state.settings)
    if problem is not None:
        raise RedisUnavailable(f"redis: {problem}; retry shortly")
    return {"status": "ready"}


@router.get(
    routes.METRICS,
    summary="Prometheus metrics",
    description="**Roles:** none. Request counts and latency by route and status, cache hits/misses, "
    "Redis errors, latest/in_use version info.",
    response_class=Response,
)
async def metrics(state: StateDep) -> Response:
    """Prometheus text exposition."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
