"""Serving's type directory: a version recorded a moment after a fetch is still found."""

from __future__ import annotations

import asyncio

from serving_stack import Stack
from serving_support import TYPE_A

from orchestrator_client import OrchestratorClient
from serving.state import AppState


def test_a_version_recorded_just_after_the_list_was_fetched_is_found(stack: Stack) -> None:
    """The race behind a rollout's rare 503 "not indexed anywhere yet": the list was fetched a few
    milliseconds before the indexer recorded the version a user vector then came with."""
    settings = stack.settings.model_copy(update={"serving_staleness_seconds": 60.0})
    v2 = stack.world.versions[1].name
    recorded = stack.world.locations[v2]

    async def run() -> None:
        state = AppState.build(settings)
        indexer = OrchestratorClient(
            settings.orchestrator_url, settings.indexer_key.get_secret_value(), timeout=10
        )
        try:
            await indexer.forget_indexed(TYPE_A, v2)
            assert (await state.directory.get(TYPE_A)).location(v2) is None
            await indexer.record_indexed(TYPE_A, recorded)
            assert await state.directory.location(TYPE_A, v2) == recorded
        finally:
            await indexer.aclose()
            await state.aclose()

    asyncio.run(run())
