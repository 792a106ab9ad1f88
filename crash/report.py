"""The crash run's table: requests by outcome, state changes, recovery per process kind, violations."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table

from crash.checker import Report
from crash.kinds import PROCESSES

SHOWN_PER_KIND = 5  # violations listed of each kind (the count says how many there were)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def tables(report: Report) -> Group:
    """Everything the checker found, as tables."""
    requests = Table("request outcome", "count", title="requests", title_justify="left")
    for outcome, count in sorted(report.requests.items()):
        requests.add_row(outcome, str(count))
    changes = Table("state change", "count", title="state changes", title_justify="left")
    for kind, count in sorted(report.changes.items()):
        changes.add_row(kind, str(count))
    recovery = Table(
        "process", "kills", "recovered", "median", "max", title="time to recover", title_justify="left"
    )
    for process in PROCESSES:
        found = report.recovery_of(process)
        recovery.add_row(
            process, str(found.kills), str(len(found.recovered)), _seconds(found.median), _seconds(found.max)
        )
    violations = Table("violation", "count", "examples", title="violations", title_justify="left")
    kinds = sorted({v.kind for v in report.violations})
    for kind in kinds:
        shown = report.violated(kind)
        examples = "\n".join(v.detail for v in shown[:SHOWN_PER_KIND])
        violations.add_row(kind, str(len(shown)), examples)
    if not kinds:
        violations.add_row("none", "0", "")
    return Group(requests, changes, recovery, violations)
