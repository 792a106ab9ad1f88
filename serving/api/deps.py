"""Dependencies of the serving routes (Annotated aliases)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from serving.state import AppState


async def get_state(request: Request) -> AppState:
    """The app's state, built by the lifespan (async: FastAPI runs sync dependencies in a thread pool)."""
    state: AppState = request.app.state.serving
    return state


StateDep = Annotated[AppState, Depends(get_state)]
