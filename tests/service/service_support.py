"""A small app on the shared factory (routes that parse, read raw, refuse, fail) and raw ASGI calls of it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import uvicorn
from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import BaseModel, Field

from contract.wire import ENTITY_ID, WeightedAttribute
from service.admission import remaining
from service.app import create_service_app
from service.errors import Forbidden
from service.server import ServerConfig


@dataclass
class Observed:
    """A RequestObserver keeping (route, method, status)."""

    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Keep the request."""
        assert seconds >= 0
        self.requests.append((route, method, status))


class Payload(BaseModel):
    """A body FastAPI parses and validates."""

    attributes: list[WeightedAttribute] = Field(max_length=10)


router = APIRouter()


@router.post("/parsed")
async def parsed(body: Payload) -> dict[str, int]:
    """FastAPI reads and validates the body."""
    return {"attributes": len(body.attributes)}


@router.post("/raw")
async def raw(request: Request) -> dict[str, int]:
    """The route reads the body itself, as serving's read_json does."""
    return {"bytes": len(await request.body())}


@router.get("/items/{item_id}")
async def item(item_id: Annotated[str, Path(pattern=ENTITY_ID.pattern)]) -> dict[str, str]:
    """A path parameter with a pattern."""
    return {"item_id": item_id}


@router.get("/held")
async def held(request: Request) -> dict[str, float | None]:
    """Signals the state's `entered` semaphore, waits for its `release` event; answers the budget left."""
    left = remaining()
    state: dict[str, Any] = request.app.state.probe
    state["entered"].release()
    await asyncio.to_thread(state["release"].wait)
    return {"remaining": left}


@router.get("/peer")
async def peer(request: Request) -> dict[str, int]:
    """The client's port: which connection a request came on."""
    assert request.client is not None
    return {"port": request.client.port}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Never counted against the in-flight bound."""
    return {"status": "ok"}


@router.get("/refused")
async def refused() -> None:
    """A ServiceError."""
    raise Forbidden("authorization: not for you")


@router.get("/broken")
async def broken() -> None:
    """A bug."""
    raise RuntimeError("a bug")


def build_app(observed: Observed, max_in_flight: int = 100, budget: float | None = None) -> FastAPI:
    """The app, its state an empty dict."""

    @asynccontextmanager
    async def open_state() -> AsyncIterator[dict[str, Any]]:
        yield {}

    return create_service_app(
        title="probe",
        version="1",
        description="The shared skeleton with a few routes.",
        routers=[router],
        state_name="probe",
        open_state=open_state,
        observer=observed,
        max_in_flight=max_in_flight,
        budget=budget,
        security_schemes={"BearerKey": {"type": "http", "scheme": "bearer"}},
    )


async def call_asgi(
    app: FastAPI, method: str, path: str, chunks: Sequence[bytes], *, then_disconnect: bool
) -> list[dict[str, Any]]:
    """Send `chunks` as a chunked body (ending it, or hanging up after them); the messages the app sent."""
    incoming: list[dict[str, Any]] = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    incoming.append(
        {"type": "http.disconnect"}
        if then_disconnect
        else {"type": "http.request", "body": b"", "more_body": False}
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"probe"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("probe", 80),
    }
    await app(scope, receive, send)
    return sent


@contextmanager
def served(app: FastAPI, read_timeout: float = 10.0) -> Iterator[str]:
    """`app` under uvicorn with service.server's config on a free port, on a thread: its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(
        ServerConfig(app, read_timeout=read_timeout, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.01)  # polls a condition
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
