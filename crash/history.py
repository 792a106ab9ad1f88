"""The crash run's history: one JSON object per line, one per request and one per state change.

Every line has `t` (wall-clock seconds) and `kind`; the other fields depend on the kind (the EVENT_FIELDS
table). The checker reads nothing else, so a history can be checked again, or written by hand in a test.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

# The kinds of line, and the fields each carries besides `t` and `kind`.
REQUEST: Final = "request"  # route, status, version, item_versions, degraded, error, retry_after
PUBLISH_ACKED: Final = "publish_acked"  # type, version: `lockstep publish` exited 0
PUBLISH_FAILED: Final = "publish_failed"  # type, version, code: it did not (nothing was acknowledged)
IN_USE_ACKED: Final = (
    "in_use_acked"  # type, from_version, to_version, by: an indexer's log says its change was acknowledged
)
IN_USE_OBSERVED: Final = "in_use_observed"  # type, version: the orchestrator answered a new in_use
ROLLBACK_SENT: Final = "rollback_sent"  # type, expected: the crasher asked for a rollback
ROLLBACK_ACKED: Final = (
    "rollback_acked"  # type, from_version, to_version: the orchestrator answered it with 200
)
KILL: Final = "kill"  # process, pid: SIGKILL sent
RESTART: Final = "restart"  # process, pid: started again and answering
EXITED: Final = "exited"  # process: found not running, not killed (it exited): started again
RECOVERED: Final = "recovered"  # process, seconds: the first successful request of its kind since the kill
INDEXER_CYCLE: Final = "indexer_cycle"  # process, cycles: the indexer's count of completed cycles rose
FINAL: Final = (
    "final"  # types: {name: {published, in_use, audit: [{from_version, to_version, role, actor, at}]}}
)
RUN: Final = "run"  # phase (started, ended), and the run's settings

EVENT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    REQUEST: ("route", "status", "version", "item_versions", "degraded", "error", "retry_after"),
    PUBLISH_ACKED: ("type", "version"),
    PUBLISH_FAILED: ("type", "version", "code"),
    IN_USE_ACKED: ("type", "from_version", "to_version", "by"),
    IN_USE_OBSERVED: ("type", "version"),
    ROLLBACK_SENT: ("type", "expected"),
    ROLLBACK_ACKED: ("type", "from_version", "to_version"),
    KILL: ("process", "pid"),
    RESTART: ("process", "pid"),
    EXITED: ("process",),
    RECOVERED: ("process", "seconds"),
    INDEXER_CYCLE: ("process", "cycles"),
    FINAL: ("types",),
    RUN: ("phase",),
}

Event = dict[str, Any]


class History:
    """Appends events to the history file as they happen (flushed per line: a killed crasher keeps them)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("w")
        self.events: list[Event] = []  # what was written, for the run's own live decisions

    def write(self, kind: str, t: float | None = None, **fields: Any) -> Event:
        """One line of `kind` at `t` (default: now)."""
        event: Event = {"t": round(time.time() if t is None else t, 4), "kind": kind, **fields}
        self._file.write(json.dumps(event, default=str) + "\n")
        self._file.flush()
        self.events.append(event)
        return event

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def read(path: Path) -> list[Event]:
    """Every event of a history file, in file order."""
    return list(_lines(path))


def _lines(path: Path) -> Iterator[Event]:
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
            if not isinstance(event, dict) or "t" not in event or event.get("kind") not in EVENT_FIELDS:
                raise ValueError(f"{path}:{number}: not a history event: {line.strip()[:200]}")
            yield event
