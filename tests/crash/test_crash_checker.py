"""The crash checker on histories written by hand: a clean one passes, each kind of violation is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crash import checker
from crash import history as h
from crash.data import frame
from crash.kinds import OPENSEARCH, RECOMMEND, REDIS, ROLLBACK, SERVING, TYPE_STATE

TYPE = "crash-shadow-d16"
V1, V2, V3 = (frame(n).version_id for n in (1, 2, 3))


def event(kind: str, t: float, **fields: Any) -> dict[str, Any]:
    return {"t": t, "kind": kind, **fields}


def request(t: float, route: str = RECOMMEND, status: int = 200, **fields: Any) -> dict[str, Any]:
    base = {"version": V1, "item_versions": [V1, V1], "degraded": False, "error": None, "retry_after": False}
    return event(h.REQUEST, t, route=route, status=status, **(base | fields))


def audit(frm: str | None, to: str, role: str = "indexer") -> dict[str, Any]:
    return {
        "at": "2026-01-01T00:00:00+00:00",
        "actor": role,
        "role": role,
        "from_version": frm,
        "to_version": to,
    }


def final(published: list[str], in_use: str | None, trail: list[dict[str, Any]]) -> dict[str, Any]:
    return event(h.FINAL, 100.0, types={TYPE: {"published": published, "in_use": in_use, "audit": trail}})


def clean() -> list[dict[str, Any]]:
    """Two versions published, the indexer moves in_use forward, a rollback moves it back, serving is
    killed and answers again, a documented 503 and a degraded answer on the way."""
    return [
        event(h.PUBLISH_ACKED, 1.0, type=TYPE, version=V1),
        event(h.IN_USE_OBSERVED, 2.0, type=TYPE, version=V1),
        request(3.0),
        event(h.PUBLISH_ACKED, 4.0, type=TYPE, version=V2),
        event(h.IN_USE_ACKED, 5.0, type=TYPE, from_version=V1, to_version=V2, by="indexer-shadow"),
        event(h.IN_USE_OBSERVED, 5.5, type=TYPE, version=V2),
        request(6.0, version=V2, item_versions=[V2]),
        event(h.KILL, 7.0, process=SERVING, pid=1),
        request(7.5, status=0),
        request(8.0, status=503, error="Unavailable", retry_after=True),
        request(8.5, degraded=True, version=None, item_versions=[]),
        event(h.RESTART, 9.0, process=SERVING, pid=2),
        event(h.ROLLBACK_SENT, 10.0, type=TYPE, expected=V2),
        request(10.1, route=TYPE_STATE, status=503, error="RedisUnavailable", retry_after=True),
        event(h.ROLLBACK_ACKED, 10.2, type=TYPE, from_version=V2, to_version=V1),
        event(h.IN_USE_OBSERVED, 11.0, type=TYPE, version=V1),
        final([V1, V2], V1, [audit(None, V1), audit(V1, V2), audit(V2, V1, "admin")]),
    ]


def kinds(report: checker.Report) -> set[str]:
    return {v.kind for v in report.violations}


def test_a_clean_history_passes_and_counts_what_happened() -> None:
    report = checker.check(clean())
    assert report.ok, report.violations
    assert report.requests["recommend 200 degraded"] == 1
    assert report.requests["recommend 503 documented"] == 1
    assert report.requests["recommend no response"] == 1
    assert report.changes[h.PUBLISH_ACKED] == 2
    # serving's first success after its kill at 7.0 is the degraded 200 at 8.5 (a 503 is no success).
    assert report.recovery_of(SERVING).seconds == (1.5,)


def test_a_response_mixing_versions_is_a_violation() -> None:
    events = [*clean(), request(12.0, version=V1, item_versions=[V1, V2])]
    report = checker.check(events)
    assert kinds(report) == {checker.MIXED_VERSIONS}
    # Embedding-scored items without a response version mix too.
    assert kinds(checker.check([*clean(), request(12.0, version=None, item_versions=[V1])])) == {
        checker.MIXED_VERSIONS
    }


@pytest.mark.parametrize(
    "bad",
    [
        request(12.0, status=500, error="InternalError"),
        request(12.0, status=503, error="Unavailable", retry_after=False),  # no Retry-After
        request(12.0, status=502, error=None),  # not the error shape
        request(12.0, route=TYPE_STATE, status=503, error="Unavailable", retry_after=True),  # serving's name
        request(12.0, route=ROLLBACK, status=504, error="RedisUnavailable", retry_after=True),
    ],
)
def test_a_5xx_other_than_a_documented_503_is_a_violation(bad: dict[str, Any]) -> None:
    assert kinds(checker.check([*clean(), bad])) == {checker.SERVER_ERROR}


def test_an_acknowledged_publish_missing_at_the_end_is_lost() -> None:
    events = [*clean()[:-1], event(h.PUBLISH_ACKED, 12.0, type=TYPE, version=V3), clean()[-1]]
    report = checker.check(events)
    assert kinds(report) == {checker.LOST_PUBLISH}
    assert V3 in report.violations[0].detail


def test_an_acknowledged_in_use_change_missing_from_the_audit_is_lost() -> None:
    acked = event(h.IN_USE_ACKED, 12.0, type=TYPE, from_version=V1, to_version=V3, by="indexer-incremental")
    assert checker.LOST_IN_USE_CHANGE in kinds(checker.check([*clean(), acked]))
    rollback = event(h.ROLLBACK_ACKED, 12.0, type=TYPE, from_version=V2, to_version=V3)
    assert checker.LOST_IN_USE_CHANGE in kinds(checker.check([*clean(), rollback]))


def test_in_use_read_back_at_a_value_no_recorded_change_leads_to_is_a_violation() -> None:
    # The audit says V1 -> V2 only, yet in_use is read as V1 again (a write lost with its audit entry).
    events = [
        event(h.IN_USE_OBSERVED, 1.0, type=TYPE, version=V1),
        event(h.IN_USE_OBSERVED, 2.0, type=TYPE, version=V2),
        event(h.IN_USE_OBSERVED, 3.0, type=TYPE, version=V1),
        final([V1, V2], V2, [audit(None, V1), audit(V1, V2)]),
    ]
    assert kinds(checker.check(events)) == {checker.UNRECORDED_MOVE}
    # The final in_use differs from where the audit trail leads.
    assert kinds(checker.check([final([V1, V2], V1, [audit(None, V1), audit(V1, V2)])])) == {
        checker.UNRECORDED_MOVE
    }
    # An audit trail with a gap: a move that no entry records.
    gap = [audit(None, V1), audit(V2, V3)]
    assert checker.UNRECORDED_MOVE in kinds(checker.check([final([V1, V2, V3], V3, gap)]))


def test_in_use_moves_forward_only_by_an_indexer_and_back_only_by_a_rollback_asked_for() -> None:
    forward_by_admin = [audit(None, V1), audit(V1, V2, "admin")]
    assert kinds(checker.check([final([V1, V2], V2, forward_by_admin)])) == {checker.FORWARD_NOT_BY_INDEXER}
    back_by_indexer = [audit(None, V2), audit(V2, V1)]
    assert kinds(checker.check([final([V1, V2], V1, back_by_indexer)])) == {checker.BACK_WITHOUT_ROLLBACK}
    back_unasked = [audit(None, V2), audit(V2, V1, "admin")]
    assert kinds(checker.check([final([V1, V2], V1, back_unasked)])) == {checker.BACK_WITHOUT_ROLLBACK}
    asked = event(h.ROLLBACK_SENT, 1.0, type=TYPE, expected=V2)
    assert checker.check([asked, final([V1, V2], V1, back_unasked)]).ok


def test_a_kill_never_recovered_from_is_a_violation_and_recovery_is_timed_per_kind() -> None:
    events = [
        *clean(),
        event(h.KILL, 20.0, process=OPENSEARCH, pid=3),
        request(21.0, degraded=True),  # degraded: OpenSearch is not back yet
        request(23.5),  # a full answer: it is
        event(h.KILL, 30.0, process=REDIS, pid=4),
        request(31.0, route=TYPE_STATE, status=503, error="RedisUnavailable", retry_after=True),
    ]
    report = checker.check(events)
    assert kinds(report) == {checker.NOT_RECOVERED}
    assert report.recovery_of(OPENSEARCH).seconds == (3.5,)
    assert report.recovery_of(REDIS).seconds == (None,)
    assert "redis" in report.violations[0].detail


def test_a_history_without_a_final_state_fails() -> None:
    assert kinds(checker.check(clean()[:-1])) == {checker.NO_FINAL_STATE}


def test_the_history_file_round_trips_and_refuses_what_is_not_an_event(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    written = h.History(path)
    for entry in clean():
        written.write(entry.pop("kind"), entry.pop("t"), **entry)
    written.close()
    assert checker.check(h.read(path)).ok
    path.write_text(path.read_text() + '{"t": 1, "kind": "nonsense"}\n')
    with pytest.raises(ValueError, match="not a history event"):
        h.read(path)
