"""Each benchmark's verdicts: a measured figure against its target, for the summary `make bench` ends with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Check = dict[str, Any]  # {"check", "measured", "target", "pass"}: JSON as it is saved in out/bench.json


def at_least(name: str, measured: float, target: float, unit: str = "x") -> Check:
    """A figure that must reach `target` (a ratio by default)."""
    return {"check": name, "measured": measured, "target": f">= {target}{unit}", "pass": measured >= target}


def at_most(name: str, measured: float, target: float, unit: str = "x") -> Check:
    """A figure that must stay within `target` (a ratio by default)."""
    return {"check": name, "measured": measured, "target": f"<= {target}{unit}", "pass": measured <= target}


def summary(results: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], bool]:
    """One line per check of every benchmark, and whether all passed."""
    rows = [
        (f"{name}: {check['check']}", check)
        for name, result in results.items()
        for check in result.get("checks", [])
    ]
    width = max((len(label) for label, _ in rows), default=0)
    lines = [
        f"{label:<{width}}  {c['measured']:>8}  target {c['target']:<8}  {'pass' if c['pass'] else 'FAIL'}"
        for label, c in rows
    ]
    return lines, all(c["pass"] for _, c in rows)
