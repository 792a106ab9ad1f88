"""The explorer page at `/` and the small read-only JSON endpoints it uses (types, users, a user's history).

The page only ever talks to serving: the orchestrator's reader key stays in this process. The page and its
files are public (no data); the type list needs a reader key, user data (ids, histories) an admin key,
which the page sends from its URL fragment (`/#key=...`, never sent to the server in the URL).
"""

from __future__ import annotations

import asyncio
from pathlib import Path as FilePath
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from contract import routes
from contract.items import schema
from contract.profiles import Profile
from contract.redis_clients import REDIS_FAILURES
from contract.types import TYPE_NAME_PATTERN
from contract.wire import ENTITY_ID, InUseChange, TypeInfo
from search.errors import SearchError
from service.auth import GuardedRoute, Role, role_doc, role_line
from service.openapi import documented
from service.validation import DIGITS_ONLY
from serving.api.deps import StateDep
from serving.errors import Forbidden, NotServable, ServingError, Unauthorized, Unavailable
from serving.state import AppState
from serving.upstream import OrchestratorDown

router = APIRouter(tags=["explorer"], route_class=GuardedRoute)

PAGE_DIR = FilePath(__file__).resolve().parents[2] / "explorer"
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "explorer.js": "text/javascript; charset=utf-8",
    "explorer.css": "text/css; charset=utf-8",
}
# Everything the page loads comes from this origin, and no script is inline.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
HISTORY_TRAIL = 20  # in_use changes shown per type
_AUTH = documented(Unauthorized, Forbidden)

UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=ENTITY_ID.pattern)]
TypeQuery = Annotated[str | None, Query(max_length=64, pattern=TYPE_NAME_PATTERN)]


class UnknownUser(ServingError):  # noqa: N818 - the name is the API's `error` field
    """No profile is stored for the user."""

    status = 404


class UnknownAsset(ServingError):  # noqa: N818 - the name is the API's `error` field
    """The explorer has no such file."""

    status = 404


class TypeOverview(TypeInfo):
    """A type as the orchestrator lists it, with its in_use audit trail (newest first)."""

    history: list[InUseChange] = Field(description=f"The newest {HISTORY_TRAIL} in_use changes.")


class UserList(BaseModel):
    """Some users that have a stored profile (for the page's picker)."""

    users: list[str] = Field(description="Sorted; at most `limit`.")


class HistoryItem(BaseModel):
    """One profile interaction with the item schema's fields (null when the item is not in the index)."""

    model_config = ConfigDict(extra="allow")

    item_id: str
    weight: float
    found: bool = Field(description="Whether the index holds the item.")


class UserHistory(BaseModel):
    """GET /v1/users/{user_id}/history."""

    user_id: str
    total: int = Field(description="Interactions in the profile.")
    index: str = Field(description="The index the metadata was read from.")
    items: list[HistoryItem] = Field(description="Newest first, at most `limit`.")


def _json(payload: object) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


def _asset(name: str) -> Response:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise UnknownAsset(f"name: the explorer has no file {name!r}")
    return Response((PAGE_DIR / name).read_bytes(), media_type=media_type, headers=PAGE_HEADERS)


@router.get("/", include_in_schema=False)
def page() -> Response:
    """The explorer page."""
    return _asset("index.html")


@router.get("/explorer/{name}", include_in_schema=False)
def asset(name: Annotated[str, Path(max_length=64)]) -> Response:
    """The page's script and stylesheet (a fixed list: no path from the request reaches the filesystem)."""
    return _asset(name)


@router.get(
    routes.ITEM_SCHEMA,  # the orchestrator answers the same at its own path
    summary="The item schema in effect: fields, kinds, filterable fields, the explorer's columns",
    description=role_line(Role.READER),
    responses={**_AUTH},
    openapi_extra=role_doc(Role.READER),
)
async def item_schema(state: StateDep) -> Response:
    """The schema this serving process validates filters with and renders items by."""
    return _json({**schema().model_dump(mode="json"), "fingerprint": schema().fingerprint()})


@router.get(
    routes.TYPES,  # the orchestrator's list, relayed at its own path
    response_model=list[TypeOverview],
    summary="Every embedding type with latest / in_use / indexed versions and its in_use audit trail",
    description=role_line(Role.READER),
    responses={**_AUTH, 503: {"description": "Unavailable: the orchestrator is down"}},
    openapi_extra=role_doc(Role.READER),
)
async def embedding_types(state: StateDep) -> Response:
    """The orchestrator's type list and each type's in_use history, relayed with serving's reader key."""
    try:
        infos = await state.orchestrator.list_types()
        trails = await asyncio.gather(
            *(state.orchestrator.in_use_history(info.type.name, HISTORY_TRAIL) for info in infos)
        )
    except OrchestratorDown as exc:
        raise Unavailable(f"orchestrator: {exc}") from exc
    overviews = [
        {**info.model_dump(mode="json"), "history": [c.model_dump(mode="json") for c in trail]}
        for info, trail in zip(infos, trails, strict=True)
    ]
    return _json(sorted(overviews, key=lambda o: str(o["type"]["name"])))


@router.get(
    "/v1/users",
    response_model=UserList,
    summary="Some users that have a stored profile",
    description=f"{role_line(Role.ADMIN)} User ids are user data: deny by default.",
    responses={**_AUTH, 503: {"description": "Unavailable: Redis is down"}},
    openapi_extra=role_doc(Role.ADMIN),
)
async def users(state: StateDep, limit: Annotated[int, Query(ge=1, le=1000), DIGITS_ONLY] = 100) -> Response:
    """The first `limit` user ids of the profile index (Keys.profile_users), in natural order."""
    try:
        found = await state.redis.zrange(state.keys.profile_users(), 0, limit - 1)
    except REDIS_FAILURES as exc:
        raise Unavailable(f"redis: profiles unreadable ({type(exc).__name__})") from exc
    return _json({"users": sorted((_text(user) for user in found), key=_natural)})  # type: ignore[arg-type]


def _text(key: bytes | str) -> str:
    return key.decode() if isinstance(key, bytes) else key


def _natural(user_id: str) -> tuple[str, int, str]:
    """Sort u2 before u10."""
    stem = user_id.rstrip("0123456789")
    digits = user_id[len(stem) :]
    return (stem, int(digits) if digits else -1, user_id)


async def _metadata_index(state: AppState, embedding_type: str | None) -> str:
    """An index holding item metadata: the in-use index of the given type, else of the first servable one."""
    try:
        names = (embedding_type,) if embedding_type else await state.directory.servable()
        for name in names:
            known = await state.directory.get(name)
            in_use = known.info.in_use
            location = known.location(in_use) if in_use else None
            if location is not None:
                return location.index
    except OrchestratorDown as exc:
        raise Unavailable(f"orchestrator: {exc}") from exc
    which = f"type {embedding_type!r}" if embedding_type else "any type"
    raise NotServable(f"embedding_type: {which} has no in-use, indexed version to read item metadata from")


@router.get(
    "/v1/users/{user_id}/history",
    response_model=UserHistory,
    summary="The items in a user's stored profile, newest first, with their metadata",
    description=f"{role_line(Role.ADMIN)} A reading history is user data: deny by default.",
    openapi_extra=role_doc(Role.ADMIN),
    responses={
        **_AUTH,
        404: {"description": "UnknownUser | UnknownType"},
        409: {"description": "NotServable: no indexed version to read metadata from"},
        422: {"description": "InvalidField"},
        503: {"description": "Unavailable"},
    },
)
async def history(
    state: StateDep,
    user_id: UserId,
    embedding_type: TypeQuery = None,
    limit: Annotated[int, Query(ge=1, le=500), DIGITS_ONLY] = 50,
) -> Response:
    """Profile from Redis, metadata from the index of the type's in-use version."""
    try:
        raw = await state.redis.get(state.keys.profile(user_id))
    except REDIS_FAILURES as exc:
        raise Unavailable(f"redis: profile unreadable ({type(exc).__name__})") from exc
    if raw is None:
        raise UnknownUser(f"user_id: no profile is stored for {user_id!r}")
    profile = Profile.model_validate_json(raw)
    index = await _metadata_index(state, embedding_type)
    recent = list(reversed(profile.interactions))[:limit]
    try:
        docs = await state.search.get_items(index, list(dict.fromkeys(i.item_id for i in recent)))
    except SearchError as exc:
        raise Unavailable(f"opensearch: {exc}") from exc
    items = []
    for interaction in recent:
        doc = docs.get(interaction.item_id) or {}
        items.append(
            {
                "item_id": interaction.item_id,
                "weight": interaction.weight,
                "found": interaction.item_id in docs,
                **{name: doc.get(name) for name in schema().columns()},
            }
        )
    return _json({"user_id": user_id, "total": len(profile.interactions), "index": index, "items": items})
