"""Embedding types: family, dim, similarity, latest, in_use, published and indexed versions."""

from __future__ import annotations

from fastapi import APIRouter

from contract import routes
from contract.indexing import IndexedLocation
from contract.wire import TypeInfo, VersionInfo
from orchestrator.api.deps import AUTH_ERRORS, ReaderDep, TypeName, role_doc, role_line
from orchestrator.catalog import TypeVersions
from orchestrator.errors import UnknownType, documented
from orchestrator.state import AppState
from service.auth import GuardedRoute, Role

router = APIRouter(tags=["types"], route_class=GuardedRoute)


async def type_entry(state: AppState, name: str) -> TypeVersions:
    """A type from the catalog (re-read on a miss), or UnknownType."""
    entry = await state.catalog.get(name)
    if entry is None:
        raise UnknownType(f"type_name: no embedding type {name!r} is registered")
    return entry


def type_info(entry: TypeVersions, in_use: str | None, indexed: dict[str, IndexedLocation]) -> TypeInfo:
    """The wire view of a type."""
    latest = entry.latest
    return TypeInfo(
        type=entry.type,
        latest=latest.version if latest else None,
        in_use=in_use,
        published=[VersionInfo.of(m) for m in entry.published],
        indexed=sorted(indexed.values(), key=lambda loc: loc.indexed_at),
    )


async def _infos(state: AppState, entries: list[TypeVersions]) -> list[TypeInfo]:
    states = await state.store.states([e.type.name for e in entries])
    infos = []
    for entry in entries:
        in_use, indexed = states[entry.type.name]
        if in_use is not None:
            state.metrics.in_use[entry.type.name] = in_use
        infos.append(type_info(entry, in_use, indexed))
    return infos


@router.get(
    routes.TYPES,
    response_model=list[TypeInfo],
    summary="List embedding types",
    description=f"{role_line(Role.READER)} `latest` and `published` are as of the last poll; "
    "`in_use` and `indexed` are read from Redis now.",
    responses=documented(*AUTH_ERRORS),
    openapi_extra=role_doc(Role.READER),
)
async def list_types(ctx: ReaderDep) -> list[TypeInfo]:
    """Every registered type."""
    state = ctx.state
    if state.catalog.polled_at is None:
        # No poll has succeeded yet (a start while Redis was down, or just now): the empty snapshot means
        # "not read yet", not "no types", so read it now (RedisUnavailable while Redis is still down).
        await state.catalog.refresh()
    return await _infos(state, list(state.catalog.types.values()))


@router.get(
    routes.TYPE,
    response_model=TypeInfo,
    summary="One embedding type",
    description=f"{role_line(Role.READER)} `latest` and `published` are as of the last poll "
    "(see `:refresh`); `in_use` and `indexed` are read from Redis now.",
    responses=documented(UnknownType, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.READER),
)
async def get_type(type_name: TypeName, ctx: ReaderDep) -> TypeInfo:
    """One type."""
    state = ctx.state
    (info,) = await _infos(state, [await type_entry(state, type_name)])
    return info


@router.post(
    routes.TYPE_REFRESH,
    response_model=TypeInfo,
    summary="Re-read a type's published versions now",
    description=f"{role_line(Role.READER)} On-demand poll: re-reads the type and its published versions "
    "from Redis instead of waiting for the next poll, and returns the fresh view.",
    responses=documented(UnknownType, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.READER),
)
async def refresh_type(type_name: TypeName, ctx: ReaderDep) -> TypeInfo:
    """Poll one type now."""
    state = ctx.state
    entry = await state.catalog.refresh_type(type_name)
    if entry is None:
        raise UnknownType(f"type_name: no embedding type {type_name!r} is registered")
    (info,) = await _infos(state, [entry])
    return info
