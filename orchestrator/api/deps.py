"""Annotated dependencies: the app state, the authenticated caller per role level, path parameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from contract.types import TYPE_NAME
from contract.versions import VERSION_ID
from contract.wire import ENTITY_ID
from orchestrator.auth import ADMITTED, Caller, Role, admit, presented_key
from orchestrator.errors import Forbidden, Unauthorized
from orchestrator.state import AppState


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
    """Authenticate the request's key and admit its role at `level`."""
    state: AppState = request.app.state.orchestrator
    headers = request.headers
    presented = presented_key(headers.get("authorization"), headers.get("x-api-key"))
    return Context(state, admit(state.keyring.identify(presented), level))


def _require(level: Role) -> Any:
    # One dependency reading the headers itself: every extra FastAPI dependency costs tens of
    # microseconds per request.
    async def dependency(request: Request) -> Context:
        return authorize(request, level)

    dependency.__name__ = f"require_{level.value}"
    return dependency


ReaderDep = Annotated[Context, Depends(_require(Role.READER))]
IndexerDep = Annotated[Context, Depends(_require(Role.INDEXER))]
AdminDep = Annotated[Context, Depends(_require(Role.ADMIN))]

SECURITY_SCHEMES = {
    "BearerKey": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>`."},
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "Same keys."},
}


def role_doc(level: Role) -> dict[str, Any]:
    """OpenAPI extras naming the roles a route admits (also in the route description)."""
    return {
        "x-roles": sorted(r.value for r in ADMITTED[level]),
        "security": [{name: []} for name in SECURITY_SCHEMES],
    }


def role_line(level: Role) -> str:
    """The first line of a route description: who may call it."""
    return f"**Roles:** {', '.join(sorted(r.value for r in ADMITTED[level]))}."


AUTH_ERRORS = (Unauthorized, Forbidden)

TypeName = Annotated[str, Path(pattern=TYPE_NAME.pattern, description="Embedding type name.")]
UserId = Annotated[str, Path(pattern=ENTITY_ID.pattern, description="User id.")]
VersionId = Annotated[str, Path(pattern=VERSION_ID.pattern, description="Version id (frame start-end).")]
