"""The publish benchmark runs on a small payload, reports sane figures, and leaves no keys behind."""

from __future__ import annotations

import redis

from bench.publish import run
from contract.settings import Settings


def test_the_publish_benchmark_runs_and_cleans_up(redis_client: redis.Redis, settings: Settings) -> None:
    figures = run(settings, users=2000, items=500, rounds=1)
    assert figures["vectors"] == 2500 and figures["throughput_ratio"] > 0
    assert 4 * 64 < figures["memory_bytes_per_vector"] < 4 * 64 + 200
    names = [check["check"] for check in figures["checks"]]
    assert names == ["throughput vs raw pipeline", "Redis bytes per vector"]
    assert figures["checks"][1]["pass"] == (figures["memory_bytes_per_vector"] <= 4 * 64 + 100)
    assert not list(redis_client.scan_iter(match=f"{settings.key_prefix}-bench-*"))
