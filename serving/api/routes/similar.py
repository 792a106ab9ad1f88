"""GET /v1/items/{item_id}/similar."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import ValidationError

from contract.filters import MAX_PARTITIONS, filter_schema
from contract.types import TYPE_NAME_PATTERN
from contract.wire import ENTITY_ID
from search.errors import QueryRejected
from service.auth import GuardedRoute, Role, role_doc, role_line
from service.errors import ServiceError
from service.json_body import parse_json
from service.openapi import documented
from service.validation import DIGITS_ONLY
from serving.api.deps import StateDep
from serving.context import Timer
from serving.errors import (
    Forbidden,
    InvalidField,
    NotServable,
    Unauthorized,
    Unavailable,
    UnknownItem,
    UnknownType,
    describe_validation,
    refused_filters,
)
from serving.models import MAX_K, RecommendResponse, SimilarQuery
from serving.rendering import render, render_items
from serving.similar_items import similar

router = APIRouter(tags=["similar"], route_class=GuardedRoute)


@router.get(
    "/v1/items/{item_id}/similar",
    response_model=RecommendResponse,
    summary="Items nearest to an item's vector of the in-use version",
    description=role_line(Role.READER),
    responses=documented(
        UnknownType, UnknownItem, NotServable, InvalidField, Unavailable, Unauthorized, Forbidden
    ),
    openapi_extra={
        **role_doc(Role.READER),
        "parameters": [
            {
                "name": "filters",
                "in": "query",
                "required": False,
                "description": "A filter tree, as JSON (at most 65,536 characters).",
                "content": {"application/json": {"schema": filter_schema()}},
            }
        ],
    },
)
async def get_similar(
    state: StateDep,
    item_id: Annotated[str, Path(max_length=128, pattern=ENTITY_ID.pattern)],
    k: Annotated[int, Query(ge=1, le=MAX_K), DIGITS_ONLY] = 10,
    embedding_type: Annotated[str | None, Query(max_length=64, pattern=TYPE_NAME_PATTERN)] = None,
    # Documented below as JSON content: a schema of a plain string would not say it must be a filter tree.
    filters: Annotated[str | None, Query(max_length=65536, include_in_schema=False)] = None,
    partitions: Annotated[
        list[str] | None,
        Query(
            max_length=MAX_PARTITIONS,
            description="Answer from these partitions only (repeat the parameter for several).",
        ),
    ] = None,
    explain: bool = False,
) -> Response:
    """k-NN around the item's own vector, the item itself excluded."""
    started = time.perf_counter()
    tree = None
    if filters is not None:
        try:
            tree = parse_json(filters.encode())
        except ServiceError as exc:  # as strict as a body: each key once, no lone surrogates
            raise InvalidField(f"filters: {exc.detail.removeprefix('body: ')}") from exc
    try:
        query = SimilarQuery(
            item_id=item_id, k=k, embedding_type=embedding_type, filters=tree, partitions=partitions
        )
    except ValidationError as exc:
        raise InvalidField(describe_validation(list(exc.errors()))) from exc
    timer = Timer(state, started=started)
    try:
        outcome = await similar(state, query, timer)
    except QueryRejected as exc:
        raise refused_filters(exc, query.filters) from exc
    items = render_items(outcome, query.filters, explain)
    return Response(render(outcome, items, timer), media_type="application/json")
