"""The serving benchmark on a small world: the sides agree, the verdicts are bench.checks', it cleans up."""

from __future__ import annotations

import pytest
import redis
from opensearchpy import OpenSearch

from bench import serving as bench
from bench.checks import at_least, at_most
from contract.settings import Settings

SMALL = {"ITEMS": 400, "USERS": 40, "ROUNDS": 2, "ROUND_REQUESTS": 100, "CHECKED_USERS": 5}


def _leftovers(client: redis.Redis, search: OpenSearch) -> set[str]:
    """Keys and indices of benchmark runs (their prefixes start with b; the tests' with t)."""
    keys = {key.decode() for key in client.scan_iter(match=f"b*:{bench.TYPE}:*", count=1000)}
    return keys | set(search.indices.get(index="b*-items-*", expand_wildcards="all"))


def test_the_serving_benchmark_runs_every_side_and_cleans_up(
    settings: Settings,
    redis_client: redis.Redis,
    opensearch_client: OpenSearch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in SMALL.items():
        monkeypatch.setattr(bench, name, value)
    before = _leftovers(redis_client, opensearch_client)
    figures = bench.run(settings)  # raises if the sides ever disagree on a user's items
    for level in ("c1", "c8"):
        result = figures[level]
        for side in ("raw", "raw_keepalive", "floor", "serving", "serving_routed"):
            assert result[side]["p50_ms"] > 0 and result[side]["throughput_rps"] > 0
        for server in ("floor", "serving", "serving_routed"):
            assert result[server]["server_cpu_ms_per_request"] > 0  # 200 requests: tens of clock ticks
        assert set(result["ratio"]) == {"p50", "p99", "throughput"}
        assert set(result["added_p50_ms"]) == {"vs_raw", "vs_floor"}
        assert len(result["serving_p50_vs_raw_per_round"]) == SMALL["ROUNDS"]
        assert set(result["serving_vs_floor_median"]) == {"p50", "p99", "throughput"}
        assert set(result["routed_vs_floor_median"]) == {"p50", "p99", "throughput"}
        routed_cpu = result["serving_routed"]["server_cpu_ms_per_request"]
        assert result["direct_dispatch_cpu_saved_ms"] == round(
            routed_cpu - result["serving"]["server_cpu_ms_per_request"], 3
        )
    # The verdicts are bench.checks' own, on the figures the benchmark reports and its declared targets.
    expected = []
    for level in ("c1", "c8"):
        result = figures[level]
        median = result["serving_vs_floor_median"]
        added = result["server_cpu_over_floor_ms"]
        expected += [
            at_most(f"{level} p50 vs floor", median["p50"], bench.TARGETS["p50"]),
            at_most(f"{level} p99 vs floor", median["p99"], bench.TARGETS["p99"]),
            at_most(f"{level} server CPU per request over floor", added, bench.TARGETS["cpu_ms"], " ms"),
        ]
    expected.append(
        at_least(
            "c8 throughput vs floor",
            figures["c8"]["serving_vs_floor_median"]["throughput"],
            bench.TARGETS["throughput"],
        )
    )
    assert figures["checks"] == expected
    # Nothing of this run is left (another run on the shared stack may clean up its own meanwhile).
    assert _leftovers(redis_client, opensearch_client) <= before
