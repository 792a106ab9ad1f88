"""The polled snapshot of registered types and their published versions; `latest` comes from here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from contract.manifest import Manifest
from contract.redis_clients import REDIS_FAILURES
from contract.types import EmbeddingType
from orchestrator.errors import OrchestratorError
from orchestrator.store import Store

# A failed poll keeps the previous snapshot; nothing that Redis or a slow answer raises stops the poller.
_POLL_FAILURES: tuple[type[Exception], ...] = (*REDIS_FAILURES, OrchestratorError, TimeoutError)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TypeVersions:
    """A type with its published versions, oldest first."""

    type: EmbeddingType
    published: tuple[Manifest, ...]

    @property
    def latest(self) -> Manifest | None:
        """The newest published version (by frame end, then publish sequence)."""
        return self.published[-1] if self.published else None

    def find(self, version: str) -> Manifest | None:
        """A published version's manifest as of the snapshot."""
        return next((m for m in self.published if m.version == version), None)


class Catalog:
    """What the last poll saw. Replaced whole on each poll, so readers never see a half-updated view."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.types: dict[str, TypeVersions] = {}
        self.polled_at: datetime | None = None

    async def refresh(self) -> None:
        """Re-read every type and its published versions (two round trips)."""
        registry = await self.store.types()
        names = sorted(registry)
        published = await self.store.published(names)
        self.types = {n: TypeVersions(registry[n], tuple(published[n])) for n in names}
        self.polled_at = datetime.now(UTC)

    async def refresh_type(self, name: str) -> TypeVersions | None:
        """Re-read one type now (on demand, or when a request names a type the last poll missed)."""
        registered = await self.store.one_type(name)
        if registered is None:
            self.types = {n: t for n, t in self.types.items() if n != name}
            return None
        published = await self.store.published([name])
        entry = TypeVersions(registered, tuple(published[name]))
        self.types = {**self.types, name: entry}
        return entry

    async def get(self, name: str) -> TypeVersions | None:
        """A type from the snapshot, re-read on a miss so a just-registered type is found."""
        return self.types.get(name) or await self.refresh_type(name)

    async def poll_until(self, stop: asyncio.Event, interval: float) -> None:
        """Refresh every `interval` seconds until `stop` is set; a failed poll keeps the previous snapshot.

        Stopped by an event rather than task cancellation, so shutdown never depends on where a
        Redis call happens to be when it is cancelled.
        """
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.refresh(), timeout=max(interval, 1.0) * 5)
            except _POLL_FAILURES as exc:
                log.warning("catalog poll failed, keeping the previous snapshot: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
