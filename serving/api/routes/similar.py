"""GET /v1/items/{item_id}/similar."""

from __future__ import annotations

import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Response
from pydantic import ValidationError

from service.openapi import documented
from serving.api.deps import StateDep
from serving.context import Timer
from serving.errors import InvalidField, Unavailable, UnknownItem, UnknownType, describe_validation
from serving.models import RecommendResponse, SimilarQuery
from serving.rendering import render, render_items
from serving.similar_items import similar

router = APIRouter(tags=["similar"])


@router.get(
    "/v1/items/{item_id}/similar",
    response_model=RecommendResponse,
    summary="Items nearest to an item's vector of the in-use version",
    responses=documented(UnknownType, UnknownItem, InvalidField, Unavailable),
)
async def get_similar(
    state: StateDep,
    item_id: Annotated[str, Path(max_length=128)],
    k: Annotated[str, Query(max_length=8, description="1..1000")] = "10",
    embedding_type: Annotated[str | None, Query(max_length=64)] = None,
    filters: Annotated[str | None, Query(max_length=65536, description="A filter tree as JSON.")] = None,
    explain: bool = False,
) -> Response:
    """k-NN around the item's own vector, the item itself excluded."""
    started = time.perf_counter()
    try:
        k_value = int(k)
    except ValueError as exc:
        raise InvalidField(f"k: must be an integer, got {k!r}") from exc
    tree = None
    if filters is not None:
        try:
            tree = orjson.loads(filters)
        except orjson.JSONDecodeError as exc:
            raise InvalidField(f"filters: not valid JSON ({exc})") from exc
    try:
        query = SimilarQuery(item_id=item_id, k=k_value, embedding_type=embedding_type, filters=tree)
    except ValidationError as exc:
        raise InvalidField(describe_validation(list(exc.errors()))) from exc
    timer = Timer(state, started=started)
    outcome = await similar(state, query, timer)
    items = render_items(outcome, query.filters, explain)
    return Response(render(outcome, items, timer), media_type="application/json")
