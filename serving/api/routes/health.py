"""/healthz (process up), /readyz (dependencies reachable), /metrics (Prometheus)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from contract.redis_clients import REDIS_FAILURES
from search.errors import SearchError
from service.auth import GuardedRoute
from serving.api.deps import StateDep
from serving.models import Health
from serving.state import AppState
from serving.upstream import OrchestratorDown

router = APIRouter(tags=["health"], route_class=GuardedRoute)


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Response:
    """Always ok while the event loop runs."""
    return Response(orjson.dumps({"status": "ok", "checks": {}}), media_type="application/json")


@router.get("/readyz", response_model=Health, summary="Dependencies reachable (503 when search is down)")
async def readyz(state: StateDep) -> Response:
    """Ready when OpenSearch answers, k-NN on every data node; a down orchestrator or Redis only degrades."""
    checks: dict[str, bool | str] = {"opensearch": await _opensearch(state)}
    try:
        await state.orchestrator.list_types()
        checks["orchestrator"] = True
    except OrchestratorDown:
        checks["orchestrator"] = False
    try:
        checks["redis"] = bool(await state.redis.ping())
    except REDIS_FAILURES:
        checks["redis"] = False
    if checks["opensearch"] is not True:
        status, code = "unavailable", 503
    elif all(v is True for v in checks.values()):
        status, code = "ok", 200
    else:
        status, code = "degraded", 200
    return Response(
        orjson.dumps({"status": status, "checks": checks}), status_code=code, media_type="application/json"
    )


async def _opensearch(state: AppState) -> bool | str:
    """True when OpenSearch is fit to serve, False when it does not answer, else what is wrong (by node)."""
    try:
        problems = await state.search.cluster_problems()
    except SearchError:
        return False
    return "; ".join(problems) or True


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: StateDep) -> Response:
    """Request, step, cache, degradation and dependency metrics."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
