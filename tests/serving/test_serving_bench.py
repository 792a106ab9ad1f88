"""The serving benchmark runs on a small world: its four sides agree on every answer, and it cleans up."""

from __future__ import annotations

import pytest
import redis
from opensearchpy import OpenSearch

from bench import serving as bench
from contract.settings import Settings

SMALL = {"ITEMS": 400, "USERS": 40, "BLOCKS": 2, "BLOCK_REQUESTS": 100, "CHECKED_USERS": 5}


def _leftovers(client: redis.Redis, search: OpenSearch) -> set[str]:
    keys = {key.decode() for key in client.scan_iter(match=f"*:{bench.TYPE}:*", count=1000)}
    return keys | set(search.indices.get(index="*-items-*", expand_wildcards="all"))


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
        for side in ("raw", "raw_keepalive", "floor", "serving"):
            assert result[side]["p50_ms"] > 0 and result[side]["throughput_rps"] > 0
        for server in ("floor", "serving"):
            assert result[server]["server_cpu_ms_per_request"] > 0  # 200 requests: tens of clock ticks
        assert set(result["ratio"]) == {"p50", "p99", "throughput"}
        added = result["added_p50_ms"]["vs_floor"]
        assert added == pytest.approx(result["serving"]["p50_ms"] - result["floor"]["p50_ms"], abs=1e-3)
        assert len(result["p50_ratio_per_block"]) == SMALL["BLOCKS"]
    checks = {c["check"]: c for c in figures["checks"]}
    assert set(checks) == {
        f"{level} {what} vs raw" for level in ("c1", "c8") for what in ("p50", "p99", "throughput")
    }
    assert checks["c1 p50 vs raw"]["measured"] == figures["c1"]["ratio"]["p50"]
    assert checks["c8 throughput vs raw"]["pass"] == (figures["c8"]["ratio"]["throughput"] >= 0.8)
    assert _leftovers(redis_client, opensearch_client) == before
