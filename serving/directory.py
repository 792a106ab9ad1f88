"""Where each type's versions live: TypeInfo from the orchestrator, cached for at most the staleness bound.

Requests are routed to the IndexedLocation of the version their user vector came with. A version missing
from the cached list (the indexer just advanced in_use, or a shadow swap registered a new index) triggers
one refresh, shared by every request that needs it, so a version change costs one orchestrator call.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from contract.indexing import IndexedLocation
from contract.wire import TypeInfo
from serving.upstream import Orchestrator, OrchestratorDown


@dataclass(frozen=True)
class Known:
    """A TypeInfo and when it was fetched."""

    info: TypeInfo
    fetched_at: float

    def location(self, version: str) -> IndexedLocation | None:
        """Where `version` is indexed, if it is."""
        for loc in self.info.indexed:
            if loc.version == version:
                return loc
        return None


class TypeDirectory:
    """TypeInfo per type, fresh within `staleness` seconds; the last known one survives an outage."""

    def __init__(self, orchestrator: Orchestrator, staleness: float) -> None:
        self._orchestrator = orchestrator
        self.staleness = staleness
        self._known: dict[str, Known] = {}
        self._inflight: dict[str, asyncio.Future[Known]] = {}
        self._servable: tuple[float, tuple[str, ...]] | None = None

    def last_known(self, type_name: str) -> Known | None:
        """The newest TypeInfo seen, however old (for degraded answers)."""
        return self._known.get(type_name)

    async def get(self, type_name: str) -> Known:
        """A TypeInfo no older than the staleness bound (raises OrchestratorDown, UnknownType, ...)."""
        known = self._known.get(type_name)
        if known is not None and time.monotonic() - known.fetched_at < self.staleness:
            return known
        return await self.refresh(type_name)

    async def refresh(self, type_name: str) -> Known:
        """Fetch now; concurrent callers share one request."""
        pending = self._inflight.get(type_name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Known] = asyncio.get_running_loop().create_future()
        self._inflight[type_name] = future
        try:
            info = await self._orchestrator.type_info(type_name)
            known = Known(info, time.monotonic())
            self._known[type_name] = known
            future.set_result(known)
            return known
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            del self._inflight[type_name]

    async def location(self, type_name: str, version: str) -> IndexedLocation | None:
        """The location of `version`, refreshing once when the cached list does not have it."""
        known = await self.get(type_name)
        loc = known.location(version)
        if loc is None and time.monotonic() - known.fetched_at > 0.05:
            loc = (await self.refresh(type_name)).location(version)
        return loc

    async def servable(self) -> tuple[str, ...]:
        """Names of types that have an in-use version (for the default A/B split), cached like TypeInfo."""
        now = time.monotonic()
        if self._servable is not None and now - self._servable[0] < self.staleness:
            return self._servable[1]
        try:
            infos = await self._orchestrator.list_types()
        except OrchestratorDown:
            if self._servable is not None:
                return self._servable[1]
            raise
        for info in infos:
            self._known[info.type.name] = Known(info, now)
        names = tuple(sorted(i.type.name for i in infos if i.in_use is not None))
        self._servable = (now, names)
        return names
