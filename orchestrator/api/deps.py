"""Annotated dependencies: the app state, the authenticated caller per role level, path parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from contract.types import TYPE_NAME_PATTERN
from contract.versions import VERSION_ID_PATTERN
from contract.wire import ENTITY_ID
from orchestrator.errors import Forbidden, Unauthorized
from orchestrator.state import AppState
from service.auth import SECURITY_SCHEMES as SECURITY_SCHEMES
from service.auth import Caller, Role, authenticate
from service.auth import role_doc as role_doc
from service.auth import role_line as role_line


async def get_state(request: Request) -> AppState:
    """The state the lifespan built (async: FastAPI runs sync dependencies in a thread pool)."""
    state: AppState = request.app.state.orchestrator
    return state


StateDep = Annotated[AppState, Depends(get_state)]


@dataclass(frozen=True)
class Context:
    """What an authenticated route gets: the app state and who is calling."""

    state: AppState
    caller: Caller


def authorize(request: Request, level: Role) -> Context:
    """The caller admitted at `level` (GuardedRoute checked the key before the body) and the state."""
    state: AppState = request.app.state.orchestrator
    return Context(state, authenticate(request, level))


def _require(level: Role) -> Any:
    # One dependency reading the caller itself: every extra FastAPI dependency costs tens of
    # microseconds per request.
    async def dependency(request: Request) -> Context:
        return authorize(request, level)

    dependency.__name__ = f"require_{level.value}"
    return dependency


ReaderDep = Annotated[Context, Depends(_require(Role.READER))]
IndexerDep = Annotated[Context, Depends(_require(Role.INDEXER))]
AdminDep = Annotated[Context, Depends(_require(Role.ADMIN))]
CatalogDep = Annotated[Context, Depends(_require(Role.CATALOG))]

AUTH_ERRORS = (Unauthorized, Forbidden)

TypeName = Annotated[str, Path(pattern=TYPE_NAME_PATTERN, description="Embedding type name.")]
UserId = Annotated[str, Path(pattern=ENTITY_ID.pattern, description="User id.")]
VersionId = Annotated[str, Path(pattern=VERSION_ID_PATTERN, description="Version id (frame start-end).")]
