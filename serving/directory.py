"""Where each type's versions live: TypeInfo from the orchestrator, cached for at most the staleness bound.

Requests are routed to the IndexedLocation of the version their user vector came with. A version missing
from the cached list (the indexer just advanced in_use, or a shadow swap registered a new index) triggers
a refresh (two at most), shared by every request that needs it, so a version change costs an orchestrator
call or two. Past half the bound an entry is refreshed in the background while requests go on using it, so
under steady traffic no request waits for the orchestrator's type list, and none uses one past the bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from contract.indexing import IndexedLocation, foreign_location
from contract.wire import TypeInfo
from serving.background import Background
from serving.upstream import Orchestrator, OrchestratorDown

log = logging.getLogger(__name__)


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


def ours(info: TypeInfo, index_prefix: str) -> TypeInfo:
    """`info` without indexed locations our indexer would not have recorded (an indexer key could record
    any index name, and serving puts it in a search path): such a version counts as not indexed."""
    kept = []
    for location in info.indexed:
        problem = foreign_location(index_prefix, info.type.name, location)
        if problem is None:
            kept.append(location)
        else:
            log.warning("ignoring a recorded location of %s: %s", info.type.name, problem)
    if len(kept) == len(info.indexed):
        return info
    return info.model_copy(update={"indexed": kept})


class TypeDirectory:
    """TypeInfo per type, fresh within `staleness` seconds; the last known one survives an outage."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        staleness: float,
        index_prefix: str,
        background: Background,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._orchestrator = orchestrator
        self._clock = clock
        self.staleness = staleness
        self.index_prefix = index_prefix
        self._background = background
        self._known: dict[str, Known] = {}
        self._inflight: dict[str, asyncio.Future[Known]] = {}
        self._servable: tuple[float, tuple[str, ...]] | None = None
        self._listing = False  # a background refresh of the servable list is running

    def last_known(self, type_name: str) -> Known | None:
        """The newest TypeInfo seen, however old (for degraded answers)."""
        return self._known.get(type_name)

    async def get(self, type_name: str) -> Known:
        """A TypeInfo no older than the staleness bound (raises OrchestratorDown, UnknownType, ...)."""
        known = self._known.get(type_name)
        if known is None:
            return await self.refresh(type_name)
        age = self._clock() - known.fetched_at
        if age >= self.staleness:
            return await self.refresh(type_name)
        if age >= self.staleness / 2 and type_name not in self._inflight:
            self._background.spawn(self.refresh(type_name))
        return known

    async def refresh(self, type_name: str) -> Known:
        """Fetch now; concurrent callers share one request."""
        pending = self._inflight.get(type_name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Known] = asyncio.get_running_loop().create_future()
        self._inflight[type_name] = future
        try:
            info = self._ours(await self._orchestrator.type_info(type_name))
            known = Known(info, self._clock())
            self._known[type_name] = known
            future.set_result(known)
            return known
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            del self._inflight[type_name]

    def _ours(self, info: TypeInfo) -> TypeInfo:
        return ours(info, self.index_prefix)

    async def location(self, type_name: str, version: str) -> IndexedLocation | None:
        """The location of `version`, refreshing when the cached list does not have it: up to twice.

        A vector of `version` means in_use named it, so its record was written before (the indexer records,
        then moves in_use). A list fetched before that, even a moment ago, or a refresh already in flight
        when the vector came, lacks it; the second refresh is sent after the vector came.
        """
        loc = (await self.get(type_name)).location(version)
        for _ in range(2):
            if loc is not None:
                break
            loc = (await self.refresh(type_name)).location(version)
        return loc

    async def servable(self) -> tuple[str, ...]:
        """Names of types that have an in-use version (for the default A/B split), cached like TypeInfo."""
        if self._servable is not None:
            age = self._clock() - self._servable[0]
            if age < self.staleness / 2 or (age < self.staleness and self._listing):
                return self._servable[1]
            if age < self.staleness:
                self._listing = True
                self._background.spawn(self._list_in_background())
                return self._servable[1]
        try:
            return await self._list()
        except OrchestratorDown:
            if self._servable is not None:
                return self._servable[1]
            raise

    async def _list(self) -> tuple[str, ...]:
        now = self._clock()
        infos = [self._ours(info) for info in await self._orchestrator.list_types()]
        for info in infos:
            self._known[info.type.name] = Known(info, now)
        names = tuple(sorted(i.type.name for i in infos if i.in_use is not None))
        self._servable = (now, names)
        return names

    async def _list_in_background(self) -> None:
        try:
            await self._list()
        finally:
            self._listing = False
