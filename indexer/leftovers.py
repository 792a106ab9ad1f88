"""What a mode switch leaves behind, removed once nobody can be routed to it any more.

Switching a type between modes re-indexes its in_use version in the new mode and re-records it there; the
old mode's indices (shadow) or slots (incremental) stay answerable for requests already routed to them.
Once the grace period (slot grace + the longest request) has passed since in_use was recorded in its new
mode, the new mode's cycles withdraw the old mode's records, then delete what those pointed at:
- a type served incrementally: its shadow indices, the alias with them;
- a type served from shadow: its two slots in every document of the live index.
Records are withdrawn first, so from then on no request is routed to what is being deleted.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from contract.indexing import Mode, Slot, live_index, vector_field, version_field
from contract.settings import IndexerSettings
from contract.wire import TypeInfo
from indexer.shadow import shadow_indices
from orchestrator_client import OrchestratorClient
from search.port import SearchEngine
from search.requests import holding_any_body

log = logging.getLogger("lockstep.indexer.leftovers")


def grace_left(settings: IndexerSettings, info: TypeInfo, now: datetime) -> float:
    """Seconds until the grace since in_use was recorded where it is is over (0 when over or no in_use)."""
    location = info.in_use_location()
    if location is None:
        return 0.0
    grace = timedelta(seconds=settings.slot_grace_seconds + settings.request_timeout_seconds)
    return max(0.0, (location.indexed_at + grace - now).total_seconds())


def _settled_in(settings: IndexerSettings, info: TypeInfo, mode: Mode, now: datetime) -> bool:
    """Whether in_use is served from `mode` and was recorded there longer ago than the grace period."""
    location = info.in_use_location()
    return location is not None and location.mode is mode and grace_left(settings, info, now) == 0


async def _forget(orchestrator: OrchestratorClient, info: TypeInfo, mode: Mode) -> None:
    for location in info.indexed:
        if location.mode is mode and location.version != info.in_use:
            await orchestrator.forget_indexed(info.type.name, location.version)
            log.info("record withdrawn", extra={"type": info.type.name, "version": location.version})


async def shadow_leftovers(
    settings: IndexerSettings, search: SearchEngine, info: TypeInfo, now: datetime
) -> list[str]:
    """The type's shadow indices, if it is settled in incremental mode (else none: nothing to retire)."""
    if not _settled_in(settings, info, Mode.INCREMENTAL, now):
        return []
    return await shadow_indices(search, settings.index_prefix, info.type.name)


async def retire_shadow_indices(
    settings: IndexerSettings,
    search: SearchEngine,
    orchestrator: OrchestratorClient,
    info: TypeInfo,
    now: datetime,
) -> list[str]:
    """Withdraw the shadow records of a type settled in incremental mode, then delete its shadow indices."""
    removed = await shadow_leftovers(settings, search, info, now)
    if not removed:
        return []
    await _forget(orchestrator, info, Mode.SHADOW)
    for index in removed:
        await search.delete_index(index)
        log.info("shadow index of a switched type deleted", extra={"type": info.type.name, "index": index})
    return removed


def _slot_fields(type_name: str) -> list[str]:
    return [field(type_name, slot) for slot in Slot for field in (vector_field, version_field)]


async def live_leftovers(
    settings: IndexerSettings, search: SearchEngine, info: TypeInfo, now: datetime
) -> int:
    """Live documents holding a slot of the type, if it is settled in shadow mode (else 0)."""
    live = live_index(settings.index_prefix)
    if not _settled_in(settings, info, Mode.SHADOW, now) or not await search.index_exists(live):
        return 0
    return await search.count(live, holding_any_body(_slot_fields(info.type.name)))


async def clear_live_slots(
    settings: IndexerSettings,
    search: SearchEngine,
    orchestrator: OrchestratorClient,
    info: TypeInfo,
    now: datetime,
) -> int:
    """Withdraw the live-index records of a type settled in shadow mode, then clear its slots there.

    Returns how many documents changed.
    """
    if not await live_leftovers(settings, search, info, now):
        return 0
    await _forget(orchestrator, info, Mode.INCREMENTAL)
    name = info.type.name
    cleared = await search.clear_fields(live_index(settings.index_prefix), _slot_fields(name))
    log.info("live slots of a switched type cleared", extra={"type": name, "documents": cleared})
    return cleared
