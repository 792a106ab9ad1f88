"""The publish benchmark on a small payload: sane figures, bench.checks' verdicts, no keys left behind."""

from __future__ import annotations

import redis

from bench.checks import at_least, at_most
from bench.publish import TARGET_BYTES, TARGET_RATIO, run
from contract.settings import Settings


def test_the_publish_benchmark_runs_and_cleans_up(redis_client: redis.Redis, settings: Settings) -> None:
    figures = run(settings, users=2000, items=500, rounds=1)
    assert figures["vectors"] == 2500 and figures["throughput_ratio"] > 0
    assert 4 * 64 < figures["memory_bytes_per_vector"] < 4 * 64 + 200
    # The verdicts are bench.checks' own, on the figures the benchmark reports and its declared targets.
    assert figures["checks"] == [
        at_least("throughput vs raw pipeline", figures["throughput_ratio"], TARGET_RATIO),
        at_most("Redis bytes per vector", figures["memory_bytes_per_vector"], TARGET_BYTES, unit=" B"),
    ]
    assert not list(redis_client.scan_iter(match=f"{settings.key_prefix}-bench-*"))
