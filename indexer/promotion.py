"""Whether a cycle may advance in_use to latest: only forward, and never back to a rolled-back version."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from contract.versions import Frame, order_key
from contract.wire import InUseChange, TypeInfo

# An unpublished version sorts after every published one with the same frame end (as the orchestrator's
# rollback orders it), so a withdrawn in_use is never "older" than a version that replaced it.
_UNPUBLISHED_SEQ = 2**62
HISTORY_LIMIT = 1000  # in_use changes read per decision: the orchestrator's maximum


@dataclass(frozen=True)
class Promotion:
    """What a cycle may do with latest.

    `promote`: advance in_use to latest (once it is indexed and verified). `held_back`: why latest is
    deliberately not promoted (an admin rolled back from it, or it is not newer than in_use); None when
    there is nothing to hold back. `in_use_since`: when in_use last became in_use according to the audit
    trail (None when unknown): the grace of the version it replaced runs from then.
    """

    promote: bool
    held_back: str | None = None
    in_use_since: datetime | None = None


def version_order(info: TypeInfo) -> Callable[[str], tuple[datetime, int]]:
    """Sort key of a type's versions: frame end, then publish sequence."""
    known = {v.version: order_key(v.frame_end, v.seq) for v in info.published}

    def key(version: str) -> tuple[datetime, int]:
        found = known.get(version)
        return found if found is not None else order_key(Frame.from_version_id(version).end, _UNPUBLISHED_SEQ)

    return key


def rolled_back_from(
    version: str, history: Sequence[InUseChange], key: Callable[[str], tuple[datetime, int]]
) -> InUseChange | None:
    """The newest audit entry that moved in_use from `version` back to an older one, if any."""
    backwards = [c for c in history if c.from_version == version and key(c.to_version) < key(version)]
    return max(backwards, key=lambda c: c.at) if backwards else None


async def decide(info: TypeInfo, history: Callable[[], Awaitable[Sequence[InUseChange]]]) -> Promotion:
    """Promote latest only if it is newer than in_use and nobody has rolled in_use back from it.

    `history` (the in_use audit trail) is only asked for when latest would otherwise be promoted: an
    admin rollback away from latest is final for that version; a newer version resumes promotion.
    """
    latest, in_use = info.latest, info.in_use
    if latest is None or latest == in_use:
        return Promotion(False)
    if in_use is None:
        return Promotion(True)
    key = version_order(info)
    if key(latest) <= key(in_use):
        return Promotion(False, f"latest {latest} is not newer than in_use {in_use}")
    trail = await history()
    since = max((c.at for c in trail if c.to_version == in_use), default=None)
    rollback = rolled_back_from(latest, trail, key)
    if rollback is not None:
        return Promotion(
            False,
            f"in_use was rolled back from {latest} to {rollback.to_version} by {rollback.actor} "
            f"({rollback.role}) at {rollback.at.isoformat()}: not re-promoting it; a newer version will be",
            since,
        )
    return Promotion(True, None, since)
