"""The promotion rule, pure: only forward, never back to a version an admin rolled back from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from indexer_support import make_type

from contract.versions import Frame
from contract.wire import InUseChange, TypeInfo, VersionInfo
from indexer.promotion import decide

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _version(n: int) -> str:
    start = datetime(2017, 1, 1, tzinfo=UTC) + timedelta(days=n)
    return Frame(start, start + timedelta(days=30)).version_id


V1, V2, V3 = _version(1), _version(2), _version(3)


def _info(latest: str | None, in_use: str | None, published: Sequence[str] = (V1, V2, V3)) -> TypeInfo:
    rows = [
        VersionInfo(
            version=v,
            seq=i + 1,
            frame_start=Frame.from_version_id(v).start,
            frame_end=Frame.from_version_id(v).end,
            counts={},
            created_at=T0,
        )
        for i, v in enumerate(published)
    ]
    return TypeInfo(type=make_type(), latest=latest, in_use=in_use, published=rows, indexed=[])


def _change(frm: str | None, to: str, minutes: int, role: str = "indexer") -> InUseChange:
    return InUseChange(
        at=T0 + timedelta(minutes=minutes), actor=role, role=role, from_version=frm, to_version=to, reason=""
    )


async def _never() -> list[InUseChange]:
    raise AssertionError("history must not be read when latest cannot be promoted anyway")


def _trail(history: list[InUseChange]) -> Callable[[], Awaitable[list[InUseChange]]]:
    async def read() -> list[InUseChange]:
        return history

    return read


async def test_first_version_and_a_newer_one_are_promoted() -> None:
    assert (await decide(_info(V1, None), _never)).promote
    history = [_change(None, V1, 0)]
    decision = await decide(_info(V2, V1), _trail(history))
    assert decision.promote and decision.held_back is None and decision.in_use_since == T0


async def test_nothing_to_do_when_latest_is_in_use_or_absent() -> None:
    for info in (_info(V2, V2), _info(None, None)):
        decision = await decide(info, _never)
        assert not decision.promote and decision.held_back is None


async def test_rolled_back_latest_is_held_until_a_newer_version() -> None:
    history = [_change(V2, V1, 10, role="admin"), _change(V1, V2, 5), _change(None, V1, 0)]
    held = await decide(_info(V2, V1, (V1, V2)), _trail(history))
    assert not held.promote and held.held_back is not None and V2 in held.held_back
    # The rollback is when v1 became in_use again: the grace of v2's slot runs from then.
    assert held.in_use_since == T0 + timedelta(minutes=10)
    newer = await decide(_info(V3, V1), _trail(history))
    assert newer.promote and newer.held_back is None


async def test_rollback_from_another_version_does_not_hold_latest() -> None:
    # v2 was rolled back from (to v1) and later re-promoted by hand; v3 was never rolled back from.
    history = [_change(V1, V2, 20, role="admin"), _change(V2, V1, 10, role="admin"), _change(V1, V2, 5)]
    assert (await decide(_info(V3, V2), _trail(history))).promote


async def test_latest_older_than_in_use_is_not_promoted() -> None:
    # The newest version was unpublished while in use: latest is now older, so the indexer stays put.
    decision = await decide(_info(V2, V3, (V1, V2)), _never)
    assert not decision.promote and decision.held_back is not None and "not newer" in decision.held_back
