"""`lockstep demo` end to end: real processes on their own ports, prefixes and state dir; run twice."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis
from opensearchpy import OpenSearch

from contract.settings import Settings
from demo import processes
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


def test_demo_rolls_out_under_load_twice_then_stops(
    settings: Settings,
    redis_client: redis.Redis,
    opensearch_client: OpenSearch,
    tmp_path: Path,
) -> None:
    orchestrator_url = f"http://127.0.0.1:{_free_port()}"
    serving_url = f"http://127.0.0.1:{_free_port()}"
    env = {
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
    layout = Layout(tmp_path / "demo" / settings.key_prefix)
    # Fewer clients than the demo's 8 leave the 2 cores to training, and a quick indexer cadence.
    quick = (
        "--every 2s --concurrency 3 --limit 1500 --users 1 --ready-timeout 150 --rollout-timeout 120"
        " --quality-users 40"
    )
    try:
        first = _demo(env, "--duration", "8", *quick.split(), timeout=300)
        _assert_verified(first, json.loads(layout.summary_file().read_text()))
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
