"""POST /v1/recommend."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from search.errors import QueryRejected
from service.auth import GuardedRoute, Role, role_doc, role_line
from service.errors import BodyTooLarge
from service.openapi import documented
from serving.api.body import read_json
from serving.context import Timer
from serving.errors import (
    BadRequest,
    Forbidden,
    InvalidField,
    NotServable,
    Unauthorized,
    Unavailable,
    UnknownType,
    describe_validation,
    refused_filters,
)
from serving.models import RecommendRequest, RecommendResponse
from serving.recommender import recommend
from serving.rendering import render, render_items
from serving.state import AppState

router = APIRouter(tags=["recommend"], route_class=GuardedRoute)

_ERRORS = documented(
    BadRequest, BodyTooLarge, UnknownType, NotServable, InvalidField, Unavailable, Unauthorized, Forbidden
)


@router.post(
    "/v1/recommend",
    response_model=RecommendResponse,
    summary="Recommend items for a user or a set of weighted attributes",
    description=role_line(Role.READER),
    openapi_extra={
        **role_doc(Role.READER),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": RecommendRequest.model_json_schema()}},
        },
    },
    responses=_ERRORS,
)
async def post_recommend(request: Request) -> Response:
    """Versioned k-NN for the user's vector, fallback-filled, degraded rather than failed."""
    started = time.perf_counter()
    # Not StateDep: FastAPI's dependency solving costs ~0.1 ms a request on the hottest route.
    state: AppState = request.app.state.serving
    raw = await read_json(request)
    try:
        body = RecommendRequest.model_validate(raw)
    except ValidationError as exc:
        raise InvalidField(describe_validation(list(exc.errors()))) from exc
    timer = Timer(state, started=started)
    try:
        outcome = await recommend(state, body, timer)
    except QueryRejected as exc:
        raise refused_filters(exc, body.filters) from exc
    items = render_items(outcome, body.filters, body.explain)
    if outcome.cache_key is not None:
        state.results.put(outcome.cache_key, items)
    metrics = state.metrics
    counts: dict[str, int] = {}
    for item in items:
        counts[item["scorer"]] = counts.get(item["scorer"], 0) + 1
    for scorer, count in counts.items():
        metrics.items.labels(scorer).inc(count)
    if outcome.assignment is not None:
        metrics.assignments.labels(outcome.type_name, outcome.assignment.source).inc()
    return Response(render(outcome, items, timer), media_type="application/json")
