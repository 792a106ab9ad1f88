"""Serving's in-use staleness across its replicas: after in_use moves, how long each replica still answers
the previous version.

Each serving process caches a type's TypeInfo (in_use, where each version is indexed) for at most
`LOCKSTEP_SERVING_STALENESS_SECONDS`, and a refresh takes at most
`LOCKSTEP_SERVING_ORCHESTRATOR_TIMEOUT_SECONDS`; so a request a replica receives later than their sum
after the change must get the new version (degraded answers, from the last known TypeInfo while the
orchestrator is down, are labelled as such and excluded).
The figure per replica is the latest a request was sent after the change and still answered with the
previous version: a lower bound of that replica's real staleness, and a request sent past the bound with
the old version is a real violation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from demo.load import LoadStats


@dataclass(frozen=True)
class Change:
    """in_use of a type moving from one version to another, at a wall-clock time (the audit entry's)."""

    type_name: str
    before: str | None
    after: str
    at: float


@dataclass(frozen=True)
class ReplicaStaleness:
    """One serving replica and one change."""

    server: str
    type_name: str
    stale_seconds: float  # latest send (after the change) answered with the previous version; 0: none
    old_after_change: int  # requests sent after the change answered with the previous version
    new_answers: int  # answers with the new version (the replica did switch)
    first_new_seconds: float | None  # change -> the first request answered with the new version (sent)

    def as_json(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)


def staleness(stats: LoadStats, changes: Sequence[Change], servers: Sequence[str]) -> list[ReplicaStaleness]:
    """Per replica and change, from the load's full answers of that type."""
    found: list[ReplicaStaleness] = []
    for change in changes:
        at = stats.since_start(change.at)
        by_server: Mapping[int, list[tuple[float, str | None]]] = {
            n: [
                (o.at, o.version)
                for o in stats.outcomes
                if o.ok and o.server == n and o.embedding_type == change.type_name
            ]
            for n in range(len(servers))
        }
        for number, server in enumerate(servers):
            answers = by_server[number]
            old = [sent - at for sent, version in answers if sent >= at and version == change.before]
            new = [sent - at for sent, version in answers if version == change.after]
            found.append(
                ReplicaStaleness(
                    server=server,
                    type_name=change.type_name,
                    stale_seconds=round(max(old, default=0.0), 3),
                    old_after_change=len(old),
                    new_answers=len(new),
                    first_new_seconds=round(min(new), 3) if new else None,
                )
            )
    return found
