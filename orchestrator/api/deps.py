"""Annotated dependencies: the app state, the authenticated caller per role level, path parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from contract.types import TYPE_NAME
from contract.versions import VERSION_ID
from contract.wire import ENTITY_ID
from orchestrator.auth import ADMITTED, Caller, Role, admit
from orchestrator.errors import Forbidden, Unauthorized
from orchestrator.state import AppState

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`; keys are per role.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same keys as the Bearer scheme.")


def get_state(request: Request) -> AppState:
    """The state the lifespan built."""
    state: AppState = request.app.state.orchestrator
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def _authenticated(
    state: StateDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Caller:
    presented = bearer.credentials if bearer is not None else api_key
    return state.keyring.identify(presented)


def _require(level: Role) -> Any:
    def dependency(caller: Annotated[Caller, Depends(_authenticated)]) -> Caller:
        return admit(caller, level)

    dependency.__name__ = f"require_{level.value}"
    return dependency


ReaderDep = Annotated[Caller, Depends(_require(Role.READER))]
IndexerDep = Annotated[Caller, Depends(_require(Role.INDEXER))]
AdminDep = Annotated[Caller, Depends(_require(Role.ADMIN))]


def role_doc(level: Role) -> dict[str, Any]:
    """OpenAPI extras naming the roles a route admits (also in the route description)."""
    return {"x-roles": sorted(r.value for r in ADMITTED[level])}


def role_line(level: Role) -> str:
    """The first line of a route description: who may call it."""
    return f"**Roles:** {', '.join(sorted(r.value for r in ADMITTED[level]))}."


AUTH_ERRORS = (Unauthorized, Forbidden)

TypeName = Annotated[str, Path(pattern=TYPE_NAME.pattern, description="Embedding type name.")]
UserId = Annotated[str, Path(pattern=ENTITY_ID.pattern, description="User id.")]
VersionId = Annotated[str, Path(pattern=VERSION_ID.pattern, description="Version id (frame start-end).")]
