"""The app's background tasks end with the app: closing cancels what still runs."""

from __future__ import annotations

import asyncio

import pytest

from serving.background import Background


@pytest.fixture
def anyio_backend() -> str:
    """Serving runs on asyncio."""
    return "asyncio"


@pytest.mark.anyio
async def test_close_cancels_the_tasks_still_running() -> None:
    background = Background()
    running, cancelled = asyncio.Event(), asyncio.Event()

    async def warmer() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    background.spawn(warmer())
    await running.wait()
    await background.aclose()
    assert cancelled.is_set()
