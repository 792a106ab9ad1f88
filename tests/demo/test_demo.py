"""`lockstep demo` end to end: real processes on their own ports, prefixes and state dir; run twice."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from opensearchpy import OpenSearch

from contract.keys import Keys
from contract.settings import Settings
from demo import processes
from demo.examples import NEWS, own_prefix
from demo.layout import Layout
from demo.plan import process_names

LOCKSTEP = str(Path(sys.executable).with_name("lockstep"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _demo(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOCKSTEP, "demo", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _summary(result: subprocess.CompletedProcess[str], layout: Layout) -> dict[str, Any]:
    """The run's summary.json; a run that wrote none fails with its own output."""
    path = layout.summary_file()
    assert path.exists(), f"exit {result.returncode}: " + result.stdout[-4000:] + result.stderr[-4000:]
    summary: dict[str, Any] = json.loads(path.read_text())
    return summary


def _assert_verified(result: subprocess.CompletedProcess[str], summary: dict[str, Any]) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert summary["ok"] is True
    assert summary["served"] > 0 and summary["served"] == summary["requests"]
    assert summary["mixed"] == 0
    assert summary["server_errors"] == 0 and summary["transport_errors"] == 0
    assert summary["client_errors"] == 0
    assert summary["similarity_items"] > 0 and summary["similarity_mismatches"] == []
    assert len(summary["quality"]) == len(summary["types"])
    for quality in summary["quality"]:
        assert quality["failed_requests"] == 0 and quality["exact_top10_share"] >= 0.95, quality
    for rollout in summary["types"]:
        assert rollout["advanced"], rollout
        assert rollout["after"] == rollout["target"] != rollout["before"]
        assert rollout["freshness_seconds"] is not None and rollout["freshness_seconds"] > 0
        # Requests were served by the old version and by the new one during the rollout.
        assert rollout["target"] in rollout["served"], rollout


def _environment(settings: Settings, tmp_path: Path) -> dict[str, str]:
    orchestrator_url = f"http://127.0.0.1:{_free_port()}"
    serving_url = f"http://127.0.0.1:{_free_port()}"
    return {
        **os.environ,
        "LOCKSTEP_KEY_PREFIX": settings.key_prefix,
        "LOCKSTEP_INDEX_PREFIX": settings.index_prefix,
        "LOCKSTEP_ORCHESTRATOR_URL": orchestrator_url,
        "LOCKSTEP_SERVING_URL": serving_url,
        "LOCKSTEP_STATE_DIR": str(tmp_path),
        # The stack the fixtures brought up; with these set `services up` starts nothing.
        "LOCKSTEP_OPENSEARCH_URL": settings.opensearch_endpoint,
        "LOCKSTEP_REDIS_URL": settings.redis_endpoint,
        # The second rollout overwrites the incremental slot the first one retired seconds earlier.
        "LOCKSTEP_SLOT_GRACE_SECONDS": "2",
        "LOCKSTEP_ORCHESTRATOR_POLL_SECONDS": "1",
        "COLUMNS": "200",
    }


def test_demo_rolls_out_under_load_twice_then_stops(
    settings: Settings,
    redis_client: redis.Redis,
    opensearch_client: OpenSearch,
    tmp_path: Path,
) -> None:
    env = _environment(settings, tmp_path)
    layout = Layout(tmp_path / "demo" / settings.key_prefix)
    # Fewer clients than the demo's 8 leave the 2 cores to training, and a quick indexer cadence.
    quick = (
        "--every 2s --concurrency 3 --limit 1500 --users 1 --ready-timeout 150 --rollout-timeout 120"
        " --quality-users 40"
    )
    try:
        first = _demo(env, "--duration", "8", *quick.split(), timeout=300)
        _assert_verified(first, _summary(first, layout))
        # The first versions never saw the held-out ratings: recall through serving is measured for each.
        first_quality = json.loads(layout.summary_file().read_text())["quality"]
        assert all(q["recall"] is not None and q["users"] == 40 for q in first_quality), first_quality
        assert "quality through POST /v1/recommend" in first.stdout
        assert "started orchestrator" in first.stdout
        assert "user " in first.stdout and "embedding" in first.stdout  # the recommendations table
        pids = {name: processes.running(layout, name) for name in process_names()}
        assert all(pids.values()), pids

        # A second run reuses the versions, profiles and processes, and rolls out one more version.
        second = _demo(env, "--duration", "3", *quick.split(), timeout=240)
        summary = json.loads(layout.summary_file().read_text())
        _assert_verified(second, summary)
        assert "reusing published versions" in second.stdout and "reusing orchestrator" in second.stdout
        assert {name: processes.running(layout, name) for name in process_names()} == pids
        # Now in use: versions trained on every rating, so nothing is held out; the exact share still counts.
        assert all(q["recall"] is None and q["exact_top10_share"] >= 0.95 for q in summary["quality"])
        first_targets = {t["before"] for t in summary["types"]}
        assert len(first_targets) == 1 and first_targets != {t["target"] for t in summary["types"]}
    finally:
        down = _demo(env, "down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert all(processes.running(layout, name) is None for name in process_names())
    assert not any(processes.alive(record.pid) for record in pids.values() if record is not None)


# In `make soak`, not `make test`: in the CI rehearsal (2 cores, the suite's other servers) one request of
# ~2,100 got a 503 with Retry-After and no fault injected, which the demo's verification counts as a failure;
# the news flow is covered in `make test` by tests/examples/test_news_end_to_end.py. Cause not found.
@pytest.mark.soak
def test_demo_news_rolls_out_with_partitions_on_its_own_prefix_then_stops(
    settings: Settings,
    redis_client: redis.Redis,
    opensearch_client: OpenSearch,
    tmp_path: Path,
) -> None:
    env = _environment(settings, tmp_path)
    prefix = own_prefix("news", settings.key_prefix)
    layout = Layout(tmp_path / "demo" / prefix)
    names = process_names(types=NEWS.types)
    quick = (
        "--example news --limit 3000 --duration 8 --every 2s --concurrency 3 --users 1"
        " --ready-timeout 150 --rollout-timeout 120"
    )
    pids: dict[str, processes.Record | None] = {}
    try:
        result = _demo(env, *quick.split(), timeout=300)
        summary = json.loads(layout.summary_file().read_text())
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        assert summary["ok"] is True and summary["mixed"] == 0
        assert summary["served"] > 0 and summary["served"] == summary["requests"]
        assert summary["client_errors"] == 0 and summary["server_errors"] == 0
        assert summary["similarity_items"] > 0 and summary["similarity_mismatches"] == []
        # Requests named regions, and every item answering them is, in the catalog, of those regions.
        assert summary["partition_responses"] > 0 and summary["partition_items"] > 0
        assert summary["partition_violations"] == 0
        assert summary["quality"] == [] and "skipped for the news example" in result.stdout
        assert {t["type_name"] for t in summary["types"]} == set(NEWS.types)
        for rollout in summary["types"]:
            assert rollout["advanced"] and rollout["target"] in rollout["served"], rollout
        assert "catalog synth" in result.stdout and "region" in result.stdout  # the recommendations table
        pids = {name: processes.running(layout, name) for name in names}
        assert all(pids.values()), pids
        # Its catalog is under its own prefix with the news schema; the configured prefix holds none.
        record = redis_client.get(Keys(prefix).catalog_schema())
        assert record is not None and json.loads(record)["name"] == "news"
        assert redis_client.get(Keys(settings.key_prefix).catalog_schema()) is None
    finally:
        down = _demo(env, "down", "--example", "news", timeout=120)
        for key in redis_client.scan_iter(match=f"{prefix}:*", count=1000):
            redis_client.delete(key)
        opensearch_client.indices.delete(index=f"{prefix}-*", expand_wildcards="all", ignore_unavailable=True)
        for name in opensearch_client.indices.get_index_template(name=f"{prefix}-*", ignore=404).get(
            "index_templates", []
        ):
            opensearch_client.indices.delete_index_template(name=name["name"])
    assert down.returncode == 0, down.stderr
    assert all(processes.running(layout, name) is None for name in names)
    assert not any(processes.alive(record.pid) for record in pids.values() if record is not None)
