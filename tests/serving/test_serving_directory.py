"""Serving's type directory: a version recorded a moment after a fetch is still found; refresh-ahead."""

from __future__ import annotations

import asyncio
import time

from serving_stack import Stack
from serving_support import TYPE_A

from contract.wire import TypeInfo
from orchestrator_client import OrchestratorClient
from serving.directory import TypeDirectory
from serving.state import AppState
from serving.upstream import Orchestrator


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


class CountingOrchestrator(Orchestrator):
    """Counts the type-info and type-list calls the directory makes."""

    calls = 0
    lists = 0

    async def type_info(self, type_name: str) -> TypeInfo:
        self.calls += 1
        return await super().type_info(type_name)

    async def list_types(self) -> list[TypeInfo]:
        self.lists += 1
        return await super().list_types()


BOUND = 10.0  # the staleness bound of the directories under test


def counted_directory(
    state: AppState, bound: float, now: list[float]
) -> tuple[CountingOrchestrator, TypeDirectory]:
    """A directory on the app's orchestrator client, counting its calls, on the clock `now[0]`."""
    counting = CountingOrchestrator(state.orchestrator.client, state.orchestrator_breaker, state.metrics)
    directory = TypeDirectory(counting, bound, state.settings.index_prefix, state.background, lambda: now[0])
    return counting, directory


def test_past_half_the_bound_the_list_is_refreshed_behind_the_requests_and_never_used_past_it(
    stack: Stack,
) -> None:
    """Refresh-ahead: no request waits for the type list under steady traffic, none reads one older
    than the staleness bound."""
    settings = stack.settings
    v2 = stack.world.versions[1].name
    recorded = stack.world.locations[v2]
    now = [1000.0]

    async def run() -> None:
        state = AppState.build(settings)
        counting, directory = counted_directory(state, BOUND, now)
        indexer = OrchestratorClient(
            settings.orchestrator_url, settings.indexer_key.get_secret_value(), timeout=10
        )
        try:
            first = await directory.get(TYPE_A)
            assert first.location(v2) == recorded
            await indexer.forget_indexed(TYPE_A, v2)

            now[0] += 0.4 * BOUND  # fresh: used as it is, nothing fetched
            assert await directory.get(TYPE_A) is first
            assert counting.calls == 1

            now[0] += 0.2 * BOUND  # past half the bound: still answered from the cache, refreshed behind
            assert await directory.get(TYPE_A) is first
            deadline = time.monotonic() + 30
            while directory.last_known(TYPE_A) is first:
                assert time.monotonic() < deadline, "no refresh behind the request"
                await asyncio.sleep(0.01)
            refreshed = directory.last_known(TYPE_A)
            assert refreshed is not None and refreshed.location(v2) is None
            assert counting.calls == 2

            await indexer.record_indexed(TYPE_A, recorded)
            now[0] += BOUND  # past the bound: this request waits for a fresh list
            assert (await directory.get(TYPE_A)).location(v2) == recorded
        finally:
            await indexer.record_indexed(TYPE_A, recorded)
            await indexer.aclose()
            await state.aclose()

    asyncio.run(run())


def test_the_servable_types_are_refreshed_behind_the_requests_too(stack: Stack) -> None:
    """The A/B split's list of servable types: the same refresh-ahead, one refresh at a time."""
    settings = stack.settings
    now = [1000.0]

    async def run() -> None:
        state = AppState.build(settings)
        counting, directory = counted_directory(state, BOUND, now)
        try:
            names = await directory.servable()
            assert TYPE_A in names and counting.lists == 1
            now[0] += 0.4 * BOUND
            assert await directory.servable() == names and counting.lists == 1

            now[0] += 0.2 * BOUND  # past half: answered at once, listed again behind it, once
            assert await directory.servable() == names
            assert await directory.servable() == names
            deadline = time.monotonic() + 30
            while counting.lists < 2:
                assert time.monotonic() < deadline, "no refresh behind the request"
                await asyncio.sleep(0.01)
            await state.background.aclose()  # whatever is left of that refresh
            assert counting.lists == 2

            now[0] += 1.5 * BOUND  # past the bound since that refresh: listed before answering
            assert await directory.servable() == names and counting.lists == 3
        finally:
            await state.aclose()

    asyncio.run(run())
