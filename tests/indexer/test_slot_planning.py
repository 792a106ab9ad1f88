"""Slot planning of the live index: latest never lands in the slot serving in_use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from contract.indexing import IndexedLocation, Mode, Slot, vector_field, version_field
from indexer.slots import plan

LIVE = "p-items-live"
TYPE = "als-d8"
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
GRACE = timedelta(seconds=30)


def _rec(version: str, slot: Slot, at: datetime = NOW - timedelta(hours=1)) -> IndexedLocation:
    return IndexedLocation(
        version=version,
        mode=Mode.INCREMENTAL,
        index=LIVE,
        vector_field=vector_field(TYPE, slot),
        version_field=version_field(TYPE, slot),
        indexed_at=at,
        item_count=10,
    )


def test_first_version_goes_to_a_free_slot_and_promotes() -> None:
    p = plan(TYPE, LIVE, None, "v1", [], NOW, GRACE)
    assert p.target is Slot.A and p.full_pass and p.promote and p.writes == {Slot.A: "v1"}


def test_steady_state_writes_only_in_use() -> None:
    p = plan(TYPE, LIVE, "v1", "v1", [_rec("v1", Slot.B)], NOW, GRACE)
    assert p.writes == {Slot.B: "v1"} and not p.promote and not p.full_pass


def test_latest_goes_to_the_other_slot_than_in_use_regardless_of_parity() -> None:
    # v1 in slot A, v2 (previous) in slot B past grace: v3 must go to B, not A.
    records = [_rec("v1", Slot.A, NOW - timedelta(minutes=5)), _rec("v2", Slot.B, NOW - timedelta(hours=2))]
    p = plan(TYPE, LIVE, "v1", "v3", records, NOW, GRACE)
    assert p.target is Slot.B and p.evict == "v2" and p.writes == {Slot.A: "v1", Slot.B: "v3"}


def test_previous_in_use_slot_waits_for_grace() -> None:
    records = [_rec("v2", Slot.B, NOW - timedelta(seconds=5)), _rec("v1", Slot.A, NOW - timedelta(hours=1))]
    p = plan(TYPE, LIVE, "v2", "v3", records, NOW, GRACE)
    assert not p.promote and p.target is None and p.writes == {Slot.B: "v2"}
    assert p.wait_until == NOW - timedelta(seconds=5) + GRACE
    later = plan(TYPE, LIVE, "v2", "v3", records, NOW + GRACE, GRACE)
    assert later.promote and later.target is Slot.A and later.evict == "v1"


def test_recorded_latest_after_crash_finishes_promotion_without_rewrite() -> None:
    records = [_rec("v1", Slot.A), _rec("v2", Slot.B)]
    p = plan(TYPE, LIVE, "v1", "v2", records, NOW, GRACE)
    assert p.promote and not p.full_pass and p.writes == {Slot.A: "v1", Slot.B: "v2"}


@given(
    versions=st.lists(st.sampled_from(["v1", "v2", "v3", "v4"]), min_size=0, max_size=2, unique=True),
    slots=st.permutations([Slot.A, Slot.B]),
    in_use=st.sampled_from([None, "v1", "v2", "v3", "v4"]),
    latest=st.sampled_from([None, "v1", "v2", "v3", "v4"]),
    age=st.integers(0, 120),
)
def test_never_overwrites_in_use_or_a_slot_within_grace(
    versions: list[str], slots: list[Slot], in_use: str | None, latest: str | None, age: int
) -> None:
    records = [_rec(v, s, NOW - timedelta(seconds=age)) for v, s in zip(versions, slots, strict=False)]
    p = plan(TYPE, LIVE, in_use, latest, records, NOW, GRACE)
    held = {r.version: s for r, s in zip(records, slots, strict=False)}
    if in_use in held:
        assert p.writes.get(held[in_use]) == in_use  # the serving slot keeps its version
    if p.target is not None and p.full_pass:
        occupant = next((v for v, s in held.items() if s is p.target), None)
        assert occupant != in_use or occupant is None
        if occupant is not None and in_use in held:
            assert age >= GRACE.total_seconds()
    if p.promote:
        assert latest is not None and latest in p.writes.values()
