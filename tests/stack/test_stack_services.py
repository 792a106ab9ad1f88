"""`lockstep services` against the real local stack: idempotent up, status, down, external URLs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import redis

from contract.redis_clients import login_options
from contract.settings import Settings
from stack import processes, redis_acl, services
from stack.errors import StackError
from stack.layout import Layout

LOCKSTEP = str(Path(sys.executable).parent / "lockstep")


def _lockstep(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOCKSTEP, "services", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
        check=False,
    )


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _processes_under(path: Path) -> list[int]:
    """Pids of live processes whose command line mentions `path` (our node and redis do)."""
    # A zombie's command line reads as None: it does not count.
    return [p.pid for p in psutil.process_iter(["cmdline"]) if str(path) in " ".join(p.info["cmdline"] or ())]


def test_up_twice_is_a_noop(stack_settings: Settings) -> None:
    before = services.status(stack_settings)
    result = _lockstep("up")
    after = services.status(stack_settings)
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    assert stack_settings.opensearch_endpoint in result.stdout
    assert stack_settings.redis_endpoint in result.stdout
    assert (after.opensearch.pid, after.redis.pid) == (before.opensearch.pid, before.redis.pid)
    assert services.ensure_running(stack_settings).started == ()


def test_status_json_reports_opensearch_with_knn_and_healthy_redis(stack_settings: Settings) -> None:
    result = _lockstep("status", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {"opensearch_url", "redis_url", "opensearch_version", "knn_plugin", "healthy"} <= document.keys()
    assert document["opensearch_url"] == stack_settings.opensearch_endpoint
    assert document["redis_url"] == stack_settings.redis_endpoint
    assert document["opensearch_version"] == "3.6.0"
    assert document["knn_plugin"] == "opensearch-knn 3.6.0.0"
    assert document["healthy"] is True
    assert document["redis"]["healthy"] is True


def test_status_table_names_versions_pids_and_dirs(stack_settings: Settings) -> None:
    current = services.status(stack_settings)
    result = _lockstep("status", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    for text in ("3.6.0 + opensearch-knn 3.6.0.0", current.redis.version, str(current.opensearch.data_dir)):
        assert text and text in result.stdout


def test_local_redis_runs_with_aof_noeviction_on_loopback(stack_settings: Settings) -> None:
    if stack_settings.redis_url is not None:
        pytest.fail("this test checks the local redis; unset LOCKSTEP_REDIS_URL")
    client = redis.Redis.from_url(stack_settings.redis_endpoint, **login_options(stack_settings))
    try:
        config = client.config_get("*")
    finally:
        client.close()
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["maxmemory-policy"] == "noeviction"
    # Vector bucket hashes of 4*dim-byte values stay listpacks (docs/publishing.md, memory budget).
    assert config["hash-max-listpack-value"] == "4096"
    assert config["hash-max-listpack-entries"] == "128"
    assert config["bind"] == "127.0.0.1"
    assert Path(config["dir"]) == Layout.of(stack_settings).redis_dir


def test_logs_prints_the_tail_of_each_log(stack_settings: Settings) -> None:
    result = _lockstep("logs", "redis", "-n", "3")
    assert result.returncode == 0, result.stderr
    assert str(Layout.of(stack_settings).redis_log) in result.stdout
    assert "opensearch" not in result.stdout.split("redis.log", 1)[-1]


def test_external_urls_are_used_and_nothing_is_started_or_stopped(
    stack_settings: Settings, tmp_path: Path
) -> None:
    external = stack_settings.model_copy(
        update={
            "opensearch_url": stack_settings.opensearch_endpoint,
            "redis_url": stack_settings.redis_endpoint,
            "opensearch_port": 9261,
            "opensearch_transport_port": 9361,
            "redis_port": 6401,
            "state_dir": tmp_path / "state",
        }
    )
    result = services.ensure_running(external)
    assert result.healthy
    assert result.started == ()
    assert not result.opensearch.managed and not result.redis.managed
    assert not (tmp_path / "state").exists()
    assert services.stop(external) == {}
    assert services.status(stack_settings).healthy


def test_unreachable_external_opensearch_is_a_clear_error(stack_settings: Settings, tmp_path: Path) -> None:
    broken = stack_settings.model_copy(
        update={"opensearch_url": "http://127.0.0.1:1", "state_dir": tmp_path / "state"}
    )
    with pytest.raises(StackError, match=r"LOCKSTEP_OPENSEARCH_URL=http://127\.0\.0\.1:1 .*does not answer"):
        services.ensure_running(broken)


def test_down_leaves_no_process_and_up_starts_again(stack_settings: Settings) -> None:
    # A stack of its own (ports, state dir) so the session's shared stack keeps serving other tests;
    # its state dir is kept between runs so only the first run pays for the unzip.
    state_dir = stack_settings.state_dir.parent / "lockstep-test-stack"
    env = {
        "LOCKSTEP_OPENSEARCH_PORT": "9251",
        "LOCKSTEP_OPENSEARCH_TRANSPORT_PORT": "9351",
        "LOCKSTEP_REDIS_PORT": "6391",
        "LOCKSTEP_OPENSEARCH_HEAP": "512m",
        "LOCKSTEP_STATE_DIR": str(state_dir),
    }
    # This test is about processes we start, so servers named by the environment are out of the picture.
    inherited = {
        k: v for k, v in os.environ.items() if k not in ("LOCKSTEP_OPENSEARCH_URL", "LOCKSTEP_REDIS_URL")
    }
    own = Settings(
        opensearch_port=9251,
        opensearch_transport_port=9351,
        redis_port=6391,
        opensearch_heap="512m",
        state_dir=state_dir,
        opensearch_url=None,
        redis_url=None,
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [LOCKSTEP, "services", *args],
            capture_output=True,
            text=True,
            env=inherited | env,
            timeout=600,
            check=False,
        )

    try:
        up = run("up")
        assert up.returncode == 0, up.stderr
        first = services.status(own)
        assert first.healthy and first.opensearch.pid and first.redis.pid
        users = redis_acl.load(state_dir)
        assert users is not None  # made at the first start
        client = redis.Redis.from_url(own.redis_endpoint, **users.login(redis_acl.RedisUser.APP))
        client.set("lockstep-test:survives-restart", b"\x00\x01")
        client.close()

        down = run("down")
        assert down.returncode == 0, down.stderr
        assert f"stopped (pid {first.opensearch.pid})" in down.stdout
        assert f"stopped (pid {first.redis.pid})" in down.stdout
        assert not processes.alive(first.opensearch.pid)
        assert not processes.alive(first.redis.pid)
        assert _processes_under(state_dir) == []
        assert not _port_open(9251) and not _port_open(6391)
        assert run("status", "--json").returncode == 1
        assert run("down").stdout.count("was not running") == 2

        again = run("up")
        assert again.returncode == 0, again.stderr
        assert again.stdout.count("started") == 2
        second = services.status(own)
        assert second.healthy
        assert second.opensearch.pid != first.opensearch.pid
        client = redis.Redis.from_url(own.redis_endpoint, **users.login(redis_acl.RedisUser.APP))
        assert client.get("lockstep-test:survives-restart") == b"\x00\x01"  # the AOF was replayed
        client.delete("lockstep-test:survives-restart")
        client.close()
    finally:
        services.stop(own)
    assert _processes_under(state_dir) == []


def test_down_of_one_topology_leaves_the_other_alone(tmp_path: Path) -> None:
    # Both topologies share a state dir; someone else's single node must survive `down --topology cluster`.
    own = Settings(state_dir=tmp_path / "state", opensearch_url=None, redis_url=None)
    Layout.of(own).cluster_dir.mkdir(parents=True)
    cluster_only = services.stop(own, only="cluster")
    assert cluster_only and not {"opensearch", "redis"} & cluster_only.keys()
    assert all(pid is None for pid in cluster_only.values())  # none of them runs here
    assert set(services.stop(own, only="single")) == {"opensearch", "redis"}
    assert set(services.stop(own)) == {"opensearch", "redis", *cluster_only}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lockstep")), "services", "down", "--topology", "cluster"],
        env={**os.environ, "LOCKSTEP_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "opensearch-1  was not running" in result.stdout
    # No line about the single topology's servers (`opensearch`, `redis`), only the cluster's nodes.
    assert not any(line.startswith(("opensearch ", "redis ")) for line in result.stdout.splitlines())
