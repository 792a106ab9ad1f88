"""Load shedding: a bound on the requests a process works on at once, and each admitted request's deadline.

Past the bound a request is answered 503 Overloaded with Retry-After before its body is read, so overload
costs the shed client microseconds and the admitted ones nothing: no queue grows behind the event loop.
The bound is per process (uvicorn's own `limit_concurrency` counts idle keep-alive connections too, and
answers in plain text without Retry-After).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Overloaded
from service.rendering import render

# Routes a monitor must reach however busy the process is; they are cheap and read nothing of users'.
UNCOUNTED = frozenset({"/healthz", "/readyz", "/metrics"})

_DEADLINE: ContextVar[float | None] = ContextVar("request_deadline", default=None)


def remaining(clock: Callable[[], float] = time.monotonic) -> float | None:
    """Seconds left of the current request's budget (None outside an admitted request)."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - clock()


class Admission:
    """At most `limit` requests at once, each with `budget` seconds (None: unbounded; see remaining())."""

    def __init__(self, app: ASGIApp, limit: int, budget: float | None) -> None:
        self.app = app
        self.limit = limit
        self.budget = budget
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            overloaded = Overloaded(
                f"request: {self.limit} requests already in progress in this process; retry shortly"
            )
            await render(overloaded)(scope, receive, send)
            return
        self.in_flight += 1
        token = _DEADLINE.set(None if self.budget is None else time.monotonic() + self.budget)
        try:
            await self.app(scope, receive, send)
        finally:
            _DEADLINE.reset(token)
            self.in_flight -= 1
