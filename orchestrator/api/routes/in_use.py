"""Moving in_use (indexer CAS, admin rollback), its audit trail, and the indexer's indexed-version records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from contract import routes
from contract.indexing import IndexedLocation
from contract.versions import is_version_id
from contract.wire import InUseChange, InUseUpdate, RollbackRequest
from orchestrator import in_use
from orchestrator.api.deps import (
    AUTH_ERRORS,
    AdminDep,
    IndexerDep,
    ReaderDep,
    TypeName,
    VersionId,
    role_doc,
    role_line,
)
from orchestrator.api.routes.types import type_entry
from orchestrator.errors import (
    InUseConflict,
    InvalidField,
    NoRollbackTarget,
    NotIndexed,
    NotPublished,
    UnknownType,
    VersionInUse,
    documented,
)
from service.auth import GuardedRoute, Role
from service.validation import DIGITS_ONLY

router = APIRouter(tags=["in-use"], route_class=GuardedRoute)


@router.put(
    routes.IN_USE,
    response_model=InUseChange,
    summary="Compare-and-set in_use",
    description=f"{role_line(Role.INDEXER)} Sets in_use to `version` only if it is `expected` now (null: "
    "no version yet) and `version` is published and recorded as indexed; the check, the write and the "
    "audit entry happen in one Redis transaction. Setting the current value again is a no-op with no "
    "audit entry (the response then has from_version == to_version).",
    responses=documented(UnknownType, InUseConflict, NotPublished, NotIndexed, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.INDEXER),
)
async def set_in_use(type_name: TypeName, body: InUseUpdate, ctx: IndexerDep) -> InUseChange:
    """Advance (or move) in_use by compare-and-set."""
    state = ctx.state
    if not is_version_id(body.version):
        raise InvalidField(f"version: {body.version!r} is not a version id")
    if body.expected is not None and not is_version_id(body.expected):
        raise InvalidField(f"expected: {body.expected!r} is not a version id")
    await type_entry(state, type_name)
    change = await in_use.compare_and_set(
        state.redis,
        state.keys,
        type_name,
        body.expected,
        body.version,
        body.reason,
        ctx.caller,
        state.replication,
    )
    state.metrics.in_use[type_name] = change.to_version
    return change


@router.post(
    routes.ROLLBACK,
    response_model=InUseChange,
    summary="Roll in_use back",
    description=f"{role_line(Role.ADMIN)} Moves in_use to the newest version earlier than the current one "
    "that is still published and still indexed; otherwise 409 NoRollbackTarget with the reason. With "
    "`expected`, only from that version (409 InUseConflict otherwise), so a retry never rolls back twice.",
    responses=documented(UnknownType, NoRollbackTarget, InUseConflict, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.ADMIN),
)
async def rollback(
    type_name: TypeName,
    ctx: AdminDep,
    body: Annotated[RollbackRequest | None, Body()] = None,
) -> InUseChange:
    """Admin rollback."""
    state = ctx.state
    await type_entry(state, type_name)
    body = body or RollbackRequest()
    change = await in_use.rollback(
        state.redis, state.keys, type_name, body.reason, ctx.caller, state.replication, body.expected
    )
    state.metrics.in_use[type_name] = change.to_version
    return change


@router.get(
    routes.IN_USE_HISTORY,
    response_model=list[InUseChange],
    summary="The in_use audit trail",
    description=f"{role_line(Role.READER)} Every in_use change (who, when, from, to, why), newest first.",
    responses=documented(UnknownType, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.READER),
)
async def in_use_history(
    type_name: TypeName,
    ctx: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Newest entries to return."), DIGITS_ONLY] = 100,
) -> list[InUseChange]:
    """Audit trail."""
    state = ctx.state
    await type_entry(state, type_name)
    return await in_use.history(state.redis, state.keys, type_name, limit)


@router.put(
    routes.INDEXED,
    status_code=204,
    summary="Record a version as fully indexed and visible",
    description=f"{role_line(Role.INDEXER)} Called by the indexer once every item of `version` is indexed "
    "and visible to search; only such versions may become in_use. The version must be published and "
    "the body's `version` must equal the path's.",
    responses=documented(UnknownType, NotPublished, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.INDEXER),
)
async def put_indexed(
    type_name: TypeName, version: VersionId, body: IndexedLocation, ctx: IndexerDep
) -> Response:
    """Record an indexed version."""
    state = ctx.state
    if body.version != version:
        raise InvalidField(f"version: body says {body.version!r} but the path says {version!r}")
    await type_entry(state, type_name)
    await in_use.record_indexed(state.redis, state.keys, type_name, body, state.replication)
    return Response(status_code=204)


@router.delete(
    routes.INDEXED,
    status_code=204,
    summary="Forget an indexed version (its index was dropped)",
    description=f"{role_line(Role.INDEXER)} Idempotent; refused with 409 VersionInUse while the version is "
    "in_use.",
    responses=documented(UnknownType, VersionInUse, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.INDEXER),
)
async def delete_indexed(type_name: TypeName, version: VersionId, ctx: IndexerDep) -> Response:
    """Drop an indexed-version record."""
    state = ctx.state
    await type_entry(state, type_name)
    await in_use.drop_indexed(state.redis, state.keys, type_name, version, state.replication)
    return Response(status_code=204)
