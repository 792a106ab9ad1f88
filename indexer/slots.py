"""Which version sits in which slot of the live index, and what a cycle may write: pure planning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from contract.indexing import IndexedLocation, Mode, Slot, vector_field


@dataclass(frozen=True)
class SlotPlan:
    """What one incremental cycle does for one type.

    `writes` maps each slot to the version whose vectors this cycle writes into it. `target` is the
    slot receiving `latest` when it is not yet indexed (None when nothing is to be built), `full_pass`
    says every item must be rewritten, `evict` is a version whose record must be withdrawn before its
    slot is overwritten, and `promote` whether the cycle ends by recording `latest` and moving in_use.
    `wait_until` is set when the target slot still holds the previous in-use version within its grace.
    """

    writes: dict[Slot, str]
    target: Slot | None
    full_pass: bool
    evict: str | None
    promote: bool
    wait_until: datetime | None


def live_slots(records: list[IndexedLocation], live: str, type_name: str) -> dict[str, Slot]:
    """version -> slot for the versions recorded as indexed in the live index."""
    by_field = {vector_field(type_name, slot): slot for slot in Slot}
    return {
        r.version: by_field[r.vector_field]
        for r in records
        if r.mode is Mode.INCREMENTAL and r.index == live and r.vector_field in by_field
    }


def plan(
    type_name: str,
    live: str,
    in_use: str | None,
    latest: str | None,
    records: list[IndexedLocation],
    now: datetime,
    grace: timedelta,
    *,
    hold_back: bool = False,
    in_use_since: datetime | None = None,
) -> SlotPlan:
    """Plan a cycle; never puts `latest` into the slot holding `in_use`, whatever the seq parities are.

    `hold_back`: latest must not be promoted (rolled back from): a slot already holding it keeps being
    written for changed items (so a manual re-promotion finds it complete), but nothing new is built.
    `in_use_since`: when in_use became in_use (audit trail), if known; grace of the slot's previous
    occupant runs from the later of it and in_use's record (a rollback makes the record's time stale).
    """
    slots = live_slots(records, live, type_name)
    writes: dict[Slot, str] = {}
    serving = slots.get(in_use) if in_use is not None else None
    if serving is not None and in_use is not None:
        writes[serving] = in_use
    if latest is None or (latest == in_use and serving is not None):
        return SlotPlan(writes, None, False, None, False, None)
    held = slots.get(latest)
    if held is not None and held is not serving:
        # Already fully written and recorded (a crash came before the compare-and-set, or a rollback
        # moved away from it): keep writing it for changed items, and finish the promotion unless held.
        writes[held] = latest
        return SlotPlan(writes, None if hold_back else held, False, None, not hold_back, None)
    if hold_back:
        return SlotPlan(writes, None, False, None, False, None)
    target = _target_slot(slots, serving)
    occupant = next((v for v, s in slots.items() if s is target and v != in_use), None)
    if occupant is not None:
        stamps = [t for t in (_in_use_since(records, in_use), in_use_since) if t is not None]
        retired = max(stamps) if stamps else None
        ready = retired + grace if retired is not None else now
        if now < ready:
            return SlotPlan(writes, None, False, None, False, ready)
    writes[target] = latest
    return SlotPlan(writes, target, True, occupant, True, None)


def _target_slot(slots: dict[str, Slot], serving: Slot | None) -> Slot:
    if serving is not None:
        return serving.other
    used = set(slots.values())
    return next((s for s in Slot if s not in used), Slot.A)


def _in_use_since(records: list[IndexedLocation], in_use: str | None) -> datetime | None:
    # The indexer records a version (fresh indexed_at) immediately before moving in_use to it, so the
    # in-use version's indexed_at bounds from below the moment its predecessor stopped being in use.
    stamps = [r.indexed_at for r in records if r.version == in_use]
    return max(stamps) if stamps else None
