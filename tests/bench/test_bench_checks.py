"""`make bench` ends with one line per target, and fails when any target is missed."""

from __future__ import annotations

from bench.checks import at_least, at_most, summary


def test_checks_compare_in_their_direction_and_the_summary_fails_on_any_miss() -> None:
    assert at_least("bulk", 0.93, 0.9)["pass"] and not at_least("bulk", 0.85, 0.9)["pass"]
    assert at_most("p50", 1.2, 1.2)["pass"] and not at_most("p50", 1.375, 1.2)["pass"]
    assert at_most("bytes", 296, 356, unit=" B")["target"] == "<= 356 B"
    results = {
        "publish": {"checks": [at_least("throughput", 1.31, 0.8)]},
        "serving": {"checks": [at_most("c1 p50 vs raw", 1.375, 1.2), at_least("c1 throughput", 0.9, 0.8)]},
        "other": {"figures": 1},  # a result without checks adds no line
    }
    lines, passed = summary(results)
    assert not passed and len(lines) == 3
    assert lines[1].startswith("serving: c1 p50 vs raw") and lines[1].endswith("FAIL")
    assert "1.375" in lines[1] and "<= 1.2x" in lines[1]
    assert lines[0].endswith("pass") and lines[2].endswith("pass")
    assert summary({"publish": results["publish"]})[1] is True
