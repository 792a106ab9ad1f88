"""Our own redis-server process (never the system service): loopback, own dir, AOF, no eviction."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass

import redis
from rich.console import Console

from contract.settings import Settings
from contract.vectors import LISTPACK_ENTRIES, LISTPACK_VALUE
from stack import processes
from stack.errors import StackError
from stack.layout import Layout

_PROCESS_MARKER = "redis-server"

# Vector bucket hashes (contract.keys.Keys.vectors, ~64 vectors of 4*dim bytes each) stay in the compact
# listpack encoding only below these limits; as a hashtable each vector costs ~100 bytes more. Every
# process refuses a Redis configured below them (contract.redis_setup).
HASH_TUNING = {
    "hash-max-listpack-entries": str(LISTPACK_ENTRIES),
    "hash-max-listpack-value": str(LISTPACK_VALUE),
}


@dataclass(frozen=True)
class RedisInfo:
    """What a reachable Redis says about itself."""

    version: str
    appendonly: bool
    maxmemory_policy: str


def ensure_binary(console: Console) -> str:
    """Path of redis-server, installing Debian's package when missing (root only)."""
    found = shutil.which("redis-server")
    if found:
        return found
    if not processes.is_root():
        raise StackError(
            "redis-server is not installed; run `sudo apt-get install -y redis-server` "
            "(or set LOCKSTEP_REDIS_URL)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with console.status("installing redis-server (apt-get)"):
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "redis-server"]):
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise StackError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
    found = shutil.which("redis-server")
    if not found:
        raise StackError("apt-get installed redis-server, but it is not on PATH")
    return found


def write_config(settings: Settings, layout: Layout) -> None:
    """redis.conf for our process (rewritten every start)."""
    lines = [
        "# Written by `lockstep services up` on every start; edit Settings, not this file.",
        f"port {settings.redis_port}",
        "bind 127.0.0.1",
        "protected-mode yes",
        f'dir "{layout.redis_dir}"',
        # What every process's startup check requires (contract.redis_setup): an acknowledged write
        # survives a restart, and eviction never silently drops vectors of a published version.
        "appendonly yes",
        "appendfsync everysec",
        "maxmemory-policy noeviction",
        *(f"{name} {value}" for name, value in HASH_TUNING.items()),
        "daemonize yes",
        f'pidfile "{layout.redis_pid_file}"',
        f'logfile "{layout.redis_log}"',
    ]
    layout.redis_conf.write_text("\n".join(lines) + "\n")


def apply_tuning(url: str) -> None:
    """Set HASH_TUNING on a running server (one started before the config had it keeps the old values)."""
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        current = client.config_get("hash-max-listpack-*")
        for name, value in HASH_TUNING.items():
            if current.get(name) != value:
                client.config_set(name, value)
    finally:
        client.close()


def running_pid(layout: Layout) -> int | None:
    """Pid of our redis-server, from its pid file."""
    return processes.running_pid(layout.redis_pid_file, _PROCESS_MARKER)


def start(settings: Settings, layout: Layout, console: Console, timeout: float = 30) -> int:
    """Start redis-server as a daemon and wait for PING; returns its pid."""
    binary = ensure_binary(console)
    layout.redis_dir.mkdir(parents=True, exist_ok=True)
    write_config(settings, layout)
    layout.redis_pid_file.unlink(missing_ok=True)
    result = subprocess.run(
        [binary, str(layout.redis_conf)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"redis-server exited {result.returncode}: {result.stderr.strip()}; see {layout.redis_log}"
        )
    pid = wait_answering(f"redis://127.0.0.1:{settings.redis_port}/0", layout, timeout)
    if pid is None:
        raise StackError(
            f"redis-server answers PING but its pid file {layout.redis_pid_file} names no live process"
        )
    return pid


def wait_answering(url: str, layout: Layout, timeout: float) -> int | None:
    """Wait until the Redis at `url` answers PING; returns our process's pid (None if not ours)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe(url) is not None:
            for _ in range(20):  # redis writes its pid file just after it starts listening
                pid = running_pid(layout)
                if pid is not None:
                    return pid
                time.sleep(0.05)
            return None
        time.sleep(0.1)
    raise StackError(
        f"redis-server did not answer PING on {url} within {timeout:.0f}s; see {layout.redis_log}"
    )


def probe(url: str, timeout: float = 2) -> RedisInfo | None:
    """Version and persistence settings of the Redis at `url`; None when it does not answer."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            client.ping()
            server = client.info("server")
            persistence = client.info("persistence")
            memory = client.info("memory")
        finally:
            client.close()
    except redis.RedisError:
        return None
    return RedisInfo(
        version=str(server.get("redis_version")),
        appendonly=bool(persistence.get("aof_enabled")),
        maxmemory_policy=str(memory.get("maxmemory_policy")),
    )


def stop(layout: Layout) -> int | None:
    """Stop our redis-server (if its pid file names a live one); returns the pid it stopped."""
    pid = running_pid(layout)
    if pid is not None:
        # SIGTERM makes Redis fsync its AOF before exiting.
        processes.terminate(pid, grace_seconds=30)
    layout.redis_pid_file.unlink(missing_ok=True)
    return pid
