"""How the service came through each fault, from what the load generator's clients saw."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from demo.faults import RECOVERY_RUN, Fault
from demo.load import LoadStats, Outcome


@dataclass(frozen=True)
class Recovery:
    """The requests sent from one kill until the next (or the end of the load)."""

    node: str
    requests: int
    first_ok_seconds: float | None  # kill -> the first request sent after it and answered in full
    # kill -> the first of RECOVERY_RUN requests in a row answered in full: a run, because a loaded machine
    # has the odd degraded answer (a dependency past its timeout) with no fault at all.
    recovered_seconds: float | None
    # What the requests from the kill until recovery got (the whole window when it never recovered):
    degraded: int  # 200 with "degraded": true (a popular list, or a partial k-NN answer)
    unavailable: int  # 503 with Retry-After: the documented answer while a dependency is down
    errors: int  # any other non-200, or no response at all

    def as_json(self) -> dict[str, Any]:
        """Plain data."""
        return asdict(self)


def recoveries(stats: LoadStats, faults: Sequence[Fault]) -> list[Recovery]:
    """One Recovery per fault, its window ending where the next fault begins."""
    found: list[Recovery] = []
    starts = [stats.since_start(f.killed_at) for f in faults]
    for number, fault in enumerate(faults):
        start = starts[number]
        end = starts[number + 1] if number + 1 < len(starts) else float("inf")
        window = sorted((o for o in stats.outcomes if start <= o.at < end), key=lambda o: o.at)
        full = [o.at for o in window if o.ok]
        at = _run_start(window)
        impact = window if at is None else window[:at]
        found.append(
            Recovery(
                node=fault.node,
                requests=len(window),
                first_ok_seconds=round(full[0] - start, 3) if full else None,
                recovered_seconds=None if at is None else round(window[at].at - start, 3),
                degraded=sum(1 for o in impact if o.status == 200 and o.degraded),
                unavailable=sum(1 for o in impact if o.status == 503 and o.retry_after),
                errors=sum(1 for o in impact if o.status != 200 and not (o.status == 503 and o.retry_after)),
            )
        )
    return found


def _run_start(window: Sequence[Outcome]) -> int | None:
    """Index of the first of RECOVERY_RUN full answers in a row (a shorter all-full tail counts too)."""
    run = 0
    for index, outcome in enumerate(window):
        run = run + 1 if outcome.ok else 0
        if run == RECOVERY_RUN:
            return index - run + 1
    return len(window) - run if run else None
