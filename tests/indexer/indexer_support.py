"""Helpers of the indexer tests: types, a clock tests move, waiting for the orchestrator's poller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from contract.settings import IndexerSettings
from contract.types import EmbeddingType, Family, IndexParams, Similarity
from contract.wire import TypeInfo
from indexer.scheduler import Runner, connect_orchestrator
from orchestrator_client import OrchestratorClient
from orchestrator_client.errors import UnknownType

CATALOG_SIZE = 300
USERS = 40

RunnerFactory = Callable[[IndexerSettings], Runner]


def make_type(
    name: str = "als-d8",
    dim: int = 8,
    similarity: Similarity = Similarity.COSINE,
    index: IndexParams | None = None,
) -> EmbeddingType:
    """A direct-direct type for tests (index parameters: the settings' unless given)."""
    return EmbeddingType(
        name=name,
        family=Family.DIRECT_DIRECT,
        dim=dim,
        similarity=similarity,
        index=index or IndexParams(),
    )


def grace_of(settings: IndexerSettings) -> float:
    """A little more than the grace of a version that stops being in use (slot grace + longest request)."""
    return settings.slot_grace_seconds + settings.request_timeout_seconds + 1


class MovableClock:
    """Wall-clock time plus however far the test has moved it: a grace period passes without sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def shift(self, seconds: float) -> None:
        """Move the clock forward (or back, with a negative `seconds`)."""
        self.offset += timedelta(seconds=seconds)


async def wait_latest(settings: IndexerSettings, type_name: str, version: str) -> None:
    """Wait (up to 10 s) until the orchestrator's poller has seen `version` as latest."""
    async with connect_orchestrator(settings) as orchestrator:
        try:
            async with asyncio.timeout(10):
                while True:  # polling another process: there is no event to wait on
                    if await _is_latest(orchestrator, type_name, version):
                        return
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise AssertionError(f"orchestrator never saw {version} as latest of {type_name}") from None


async def _is_latest(orchestrator: OrchestratorClient, type_name: str, version: str) -> bool:
    try:
        return (await orchestrator.type_info(type_name)).latest == version
    except UnknownType:
        return False  # the poller has not seen the type yet


def type_info(settings: IndexerSettings, type_name: str) -> TypeInfo:
    """One type's state, for tests that run the indexer as a subprocess (no event loop of their own)."""

    async def read() -> TypeInfo:
        async with connect_orchestrator(settings) as orchestrator:
            return await orchestrator.type_info(type_name)

    return asyncio.run(read())
