"""Checks a crash history: the invariants that must hold whatever was killed, and the time to recover.

Violations: a response mixing versions; a 5xx other than a documented 503; an acknowledged publish or in_use
change missing from the final state; in_use moving other than forward by an indexer or back by a rollback
the crasher asked for (or to a value no recorded change explains); a kill the process never recovered from.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from contract.versions import Frame
from crash import history as h
from crash.kinds import DOCUMENTED_503, PROCESSES, RECOMMEND, SERVICE_OF, success_of
from demo.verify import mixed

# Violation kinds.
MIXED_VERSIONS: Final = "mixed-versions"
SERVER_ERROR: Final = "server-error"
LOST_PUBLISH: Final = "lost-publish"
LOST_IN_USE_CHANGE: Final = "lost-in-use-change"
UNRECORDED_MOVE: Final = "in-use-unrecorded-move"
FORWARD_NOT_BY_INDEXER: Final = "in-use-forward-not-by-indexer"
BACK_WITHOUT_ROLLBACK: Final = "in-use-back-without-rollback"
NOT_RECOVERED: Final = "not-recovered"
NO_FINAL_STATE: Final = "no-final-state"

Event = dict[str, Any]


@dataclass(frozen=True)
class Violation:
    """One broken invariant, with what shows it."""

    kind: str
    detail: str
    t: float | None = None


@dataclass(frozen=True)
class Recovery:
    """Kills of one process kind and how long each took to recover (None: it did not)."""

    process: str
    seconds: tuple[float | None, ...]

    @property
    def kills(self) -> int:
        """Times the process was killed."""
        return len(self.seconds)

    @property
    def recovered(self) -> list[float]:
        """Recovery times of the kills it recovered from."""
        return [s for s in self.seconds if s is not None]

    @property
    def median(self) -> float | None:
        """Median recovery time."""
        return statistics.median(self.recovered) if self.recovered else None

    @property
    def max(self) -> float | None:
        """Longest recovery time."""
        return max(self.recovered) if self.recovered else None


@dataclass
class Report:
    """What the checker found: counts, recoveries and violations."""

    requests: Counter[str] = field(default_factory=Counter)  # by outcome, e.g. "recommend 200 degraded"
    changes: Counter[str] = field(default_factory=Counter)  # state changes by kind
    recoveries: list[Recovery] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No violation."""
        return not self.violations

    def violated(self, kind: str) -> list[Violation]:
        """The violations of one kind."""
        return [v for v in self.violations if v.kind == kind]

    def recovery_of(self, process: str) -> Recovery:
        """The recoveries of one process kind (no kill: empty)."""
        return next((r for r in self.recoveries if r.process == process), Recovery(process, ()))

    def as_json(self) -> dict[str, Any]:
        """Plain data (the crash command's --json, and tests)."""
        return {
            "ok": self.ok,
            "requests": dict(self.requests),
            "changes": dict(self.changes),
            "recoveries": {
                r.process: {"kills": r.kills, "recovered": len(r.recovered), "median": r.median, "max": r.max}
                for r in self.recoveries
            },
            "violations": [{"kind": v.kind, "detail": v.detail, "t": v.t} for v in self.violations],
        }


def check(events: Sequence[Event]) -> Report:
    """Every check over a whole history."""
    ordered = sorted(events, key=lambda e: float(e["t"]))
    report = Report()
    for event in ordered:
        if event["kind"] == h.REQUEST:
            report.requests[_outcome(event)] += 1
            _check_request(event, report)
        elif event["kind"] != h.FINAL:
            report.changes[event["kind"]] += 1
    final = next((e for e in reversed(ordered) if e["kind"] == h.FINAL), None)
    if final is None:
        report.violations.append(Violation(NO_FINAL_STATE, "the history has no final state to check against"))
    else:
        _check_publishes(ordered, final["types"], report)
        _check_in_use(ordered, final["types"], report)
    report.recoveries = recoveries(ordered)
    for recovery in report.recoveries:
        for number, seconds in enumerate(recovery.seconds, start=1):
            if seconds is None:
                report.violations.append(
                    Violation(NOT_RECOVERED, f"{recovery.process}: kill {number} was never recovered from")
                )
    return report


def _outcome(event: Event) -> str:
    status = int(event["status"])
    if status == 0:
        return f"{event['route']} no response"
    if status == 200:
        return f"{event['route']} 200" + (" degraded" if event.get("degraded") else "")
    if status >= 500 and _documented(event):
        return f"{event['route']} {status} documented"
    return f"{event['route']} {status}"


def _documented(event: Event) -> bool:
    expected = DOCUMENTED_503.get(SERVICE_OF.get(str(event["route"]), ""))
    return (
        int(event["status"]) == 503
        and bool(event.get("retry_after"))
        and expected is not None
        and event.get("error") in {name.value for name in expected}
    )


def _check_request(event: Event, report: Report) -> None:
    status = int(event["status"])
    if status >= 500 and not _documented(event):
        report.violations.append(
            Violation(
                SERVER_ERROR,
                f"{event['route']} answered {status} {event.get('error')!r} "
                f"(Retry-After: {bool(event.get('retry_after'))}): {event.get('detail', '')}".strip(),
                float(event["t"]),
            )
        )
    if event["route"] == RECOMMEND and status == 200 and mixed(event.get("version"), event["item_versions"]):
        report.violations.append(
            Violation(
                MIXED_VERSIONS,
                f"response of version {event.get('version')} scored items of "
                f"{sorted(set(map(str, event['item_versions'])))}",
                float(event["t"]),
            )
        )


def _check_publishes(events: Sequence[Event], final: dict[str, Any], report: Report) -> None:
    for event in events:
        if event["kind"] == h.PUBLISH_ACKED:
            published = final.get(event["type"], {}).get("published", [])
            if event["version"] not in published:
                report.violations.append(
                    Violation(
                        LOST_PUBLISH,
                        f"{event['type']} {event['version']}: acknowledged, not published at the end",
                        float(event["t"]),
                    )
                )


def _order(version: str | None) -> tuple[datetime, datetime, str] | None:
    if version is None:
        return None
    frame = Frame.from_version_id(version)
    return frame.end, frame.start, version


def _check_in_use(events: Sequence[Event], final: dict[str, Any], report: Report) -> None:
    rollbacks: dict[str, set[str | None]] = defaultdict(
        set
    )  # type -> in_use values a rollback was asked from
    for event in events:
        if event["kind"] == h.ROLLBACK_SENT:
            rollbacks[event["type"]].add(event.get("expected"))
    names = sorted({str(e["type"]) for e in events if "type" in e} | set(final))
    for name in names:
        state = final.get(name, {"audit": [], "in_use": None})
        audit: list[dict[str, Any]] = state.get("audit", [])
        _check_acks(name, events, audit, report)
        _check_moves(name, audit, rollbacks[name], report)
        chain = [audit[0]["from_version"], *(entry["to_version"] for entry in audit)] if audit else [None]
        observed = [e for e in events if e["kind"] == h.IN_USE_OBSERVED and e["type"] == name]
        position = 0
        for event in observed:
            found = next((j for j in range(position, len(chain)) if chain[j] == event["version"]), None)
            if found is None:
                report.violations.append(
                    Violation(
                        UNRECORDED_MOVE,
                        f"{name}: in_use read as {event['version']}, which no recorded change leads to from "
                        f"{chain[position]}",
                        float(event["t"]),
                    )
                )
                continue
            position = found
        if state.get("in_use") != chain[-1]:
            report.violations.append(
                Violation(
                    UNRECORDED_MOVE,
                    f"{name}: in_use is {state.get('in_use')} at the end, the last recorded change left "
                    f"{chain[-1]}",
                )
            )


def _check_acks(name: str, events: Sequence[Event], audit: list[dict[str, Any]], report: Report) -> None:
    for event in events:
        if event.get("type") != name:
            continue
        if event["kind"] == h.IN_USE_ACKED and event["from_version"] != event["to_version"]:
            # An indexer whose compare-and-set lost to another writer setting the same version logs the
            # move too: any recorded move to that version acknowledges it.
            if not any(entry["to_version"] == event["to_version"] for entry in audit):
                report.violations.append(
                    Violation(
                        LOST_IN_USE_CHANGE,
                        f"{name}: {event['by']} was acknowledged moving in_use {event['from_version']} -> "
                        f"{event['to_version']}, which the audit trail does not hold",
                        float(event["t"]),
                    )
                )
        elif event["kind"] == h.ROLLBACK_ACKED and not any(
            entry["from_version"] == event["from_version"] and entry["to_version"] == event["to_version"]
            for entry in audit
        ):
            report.violations.append(
                Violation(
                    LOST_IN_USE_CHANGE,
                    f"{name}: rollback {event['from_version']} -> {event['to_version']} was acknowledged, "
                    "the audit trail does not hold it",
                    float(event["t"]),
                )
            )


def _check_moves(name: str, audit: list[dict[str, Any]], asked: set[str | None], report: Report) -> None:
    previous: str | None = None
    for number, entry in enumerate(audit):
        if number > 0 and entry["from_version"] != previous:
            report.violations.append(
                Violation(
                    UNRECORDED_MOVE,
                    f"{name}: a recorded change moves in_use from {entry['from_version']}, "
                    f"the one before left {previous}",
                )
            )
        before, after = _order(entry["from_version"]), _order(entry["to_version"])
        forward = before is None or (after is not None and after > before)
        if forward and entry["role"] != "indexer":
            report.violations.append(
                Violation(
                    FORWARD_NOT_BY_INDEXER,
                    f"{name}: {entry['from_version']} -> {entry['to_version']} "
                    f"by {entry['role']} {entry['actor']}",
                )
            )
        if not forward and (entry["role"] != "admin" or entry["from_version"] not in asked):
            report.violations.append(
                Violation(
                    BACK_WITHOUT_ROLLBACK,
                    f"{name}: {entry['from_version']} -> {entry['to_version']} "
                    f"by {entry['role']} {entry['actor']}, "
                    "and the crasher asked for no rollback from there",
                )
            )
        previous = entry["to_version"]


def recoveries(events: Sequence[Event]) -> list[Recovery]:
    """Per process kind: for each kill, seconds until the first success of its kind after it (None: none
    before the next kill of the same process or the end)."""
    found: list[Recovery] = []
    for process in PROCESSES:
        kills = [float(e["t"]) for e in events if e["kind"] == h.KILL and e["process"] == process]
        seconds: list[float | None] = []
        for number, at in enumerate(kills):
            until = kills[number + 1] if number + 1 < len(kills) else float("inf")
            first = next(
                (float(e["t"]) for e in events if at < float(e["t"]) < until and success_of(process, e)), None
            )
            seconds.append(None if first is None else round(first - at, 3))
        if seconds:
            found.append(Recovery(process, tuple(seconds)))
    return found
