"""Tasks no request awaits (popular-list warmers, a user-vector fetch its request no longer needs)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Background:
    """The app's unawaited tasks: kept alive until done, their outcome consumed, cancelled on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` on the app's loop without awaiting it."""
        self.adopt(asyncio.get_running_loop().create_task(coro))

    def adopt(self, task: asyncio.Task[Any]) -> None:
        """Keep a started task until it finishes; its error, if any, is consumed (it only warms a cache)."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def aclose(self) -> None:
        """Cancel what still runs and wait for it to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
