"""Our own redis-server processes (never the system service): loopback, own dir, AOF, no eviction."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import redis
from rich.console import Console

from contract.vectors import LISTPACK_ENTRIES, LISTPACK_VALUE
from stack import processes
from stack.errors import StackError
from stack.layout import RedisNode
from stack.redis_acl import RedisUser, RedisUsers

_PROCESS_MARKER = "redis-server"
LOAD_TIMEOUT_SECONDS = 1800.0  # a node replaying its AOF at start (it answers LOADING) is waited for so long

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


def write_config(node: RedisNode, users: RedisUsers, extra: tuple[str, ...] = ()) -> None:
    """redis.conf of the node, our base settings, its ACL users, then `extra` lines (rewritten every start).

    Created 0600: in a cluster it holds the replication password.
    """
    lines = [
        "# Written by `lockstep services up` on every start; edit the settings, not this file.",
        f"port {node.port}",
        "bind 127.0.0.1",
        "protected-mode yes",
        f'dir "{node.dir}"',
        # What every process's startup check requires (contract.redis_setup): an acknowledged write
        # survives a restart, and eviction never silently drops vectors of a published version.
        "appendonly yes",
        "appendfsync everysec",
        "maxmemory-policy noeviction",
        *(f"{name} {value}" for name, value in HASH_TUNING.items()),
        "daemonize yes",
        f'pidfile "{node.pid_file}"',
        f'logfile "{node.log}"',
        *users.acl_lines(),
        *extra,
    ]
    node.conf.unlink(missing_ok=True)
    descriptor = os.open(node.conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write("\n".join(lines) + "\n")


def apply_tuning(url: str) -> None:
    """Set HASH_TUNING on a running server (one started before the config had it keeps the old values).

    Only for a server started before it had ACL users: no user of ours may CONFIG SET, and a server with
    users was started from a config that has the tuning.
    """
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        current = client.config_get("hash-max-listpack-*")
        for name, value in HASH_TUNING.items():
            if current.get(name) != value:
                client.config_set(name, value)
    finally:
        client.close()


def running_pid(node: RedisNode) -> int | None:
    """Pid of the node's redis-server, from its pid file."""
    return processes.running_pid(node.pid_file, _PROCESS_MARKER)


def start(
    node: RedisNode,
    console: Console,
    users: RedisUsers,
    system_user: str,
    extra: tuple[str, ...] = (),
    timeout: float = 30,
) -> int:
    """Start the node's redis-server as a daemon, as `system_user` when we are root; wait for PING."""
    binary = ensure_binary(console)
    node.dir.mkdir(parents=True, exist_ok=True)
    write_config(node, users, extra)
    node.pid_file.unlink(missing_ok=True)
    command = [binary, str(node.conf)]
    if processes.is_root():
        # Not root: a client that got past the ACL (or a bug in Redis) must not be able to write files as
        # root. The user owns the node's directory (AOF, nodes.conf, log, pid file) and its config.
        processes.ensure_system_user(system_user)
        processes.chown_tree(node.dir, system_user)
        command = ["runuser", "-u", system_user, "--", *command]
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"redis-server {node.name} exited {result.returncode}: {result.stderr.strip()}; see {node.log}"
        )
    pid = wait_answering(node, timeout, users.login(RedisUser.ADMIN))
    if pid is None:
        raise StackError(
            f"redis-server {node.name} answers PING but its pid file {node.pid_file} names no live process"
        )
    return pid


def wait_answering(node: RedisNode, timeout: float, login: dict[str, Any]) -> int | None:
    """Wait until the node answers PING (logging in with `login`); returns its pid (None: not ours).

    A node still loading its dataset (it answers LOADING) is waited for past `timeout`, up to
    LOAD_TIMEOUT_SECONDS: a gigabyte of AOF takes Redis about half a minute to replay on this machine.
    """
    began = time.monotonic()
    while True:
        if probe(node.url, login) is not None:
            for _ in range(20):  # redis writes its pid file just after it starts listening
                pid = running_pid(node)
                if pid is not None:
                    return pid
                time.sleep(0.05)
            return None
        waited = time.monotonic() - began
        if waited >= timeout and (waited >= LOAD_TIMEOUT_SECONDS or not answers(node.url, login)):
            raise StackError(
                f"redis-server {node.name} did not answer PING on {node.url} within {waited:.0f}s; "
                f"see {node.log}"
            )
        time.sleep(0.1)


def answers(url: str, login: dict[str, Any]) -> bool:
    """Whether the Redis at `url` answers PING, if only with LOADING (still loading its dataset)."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, **login)
        try:
            client.ping()
        finally:
            client.close()
    except redis.BusyLoadingError:
        return True
    except redis.RedisError:
        return False
    return True


def probe(url: str, login: dict[str, Any], timeout: float = 2) -> RedisInfo | None:
    """Version and persistence settings of the Redis at `url`; None when it does not answer (or refuses
    `login`: redis-py keyword arguments of a user and password, TLS)."""
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, **login)
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


def stop(node: RedisNode) -> int | None:
    """Stop the node's redis-server (if its pid file names a live one); returns the pid it stopped."""
    pid = running_pid(node)
    if pid is not None:
        # SIGTERM makes Redis fsync its AOF before exiting.
        processes.terminate(pid, grace_seconds=30)
    node.pid_file.unlink(missing_ok=True)
    return pid
