"""Pid files, graceful-then-forceful stops, and the system user OpenSearch runs as when we are root."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import psutil

from stack.errors import StackError


def is_root() -> bool:
    """Whether we run as root (then OpenSearch needs its own user)."""
    return os.geteuid() == 0


def read_pid(pid_file: Path) -> int | None:
    """The pid in `pid_file`, or None when the file is missing or garbled."""
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def cmdline(pid: int) -> str:
    """The process's command line ('' when it is gone)."""
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except (psutil.Error, ValueError):
        return ""


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (demo.processes.alive says the same)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError):  # gone, or no pid at all (0, negative)
        return False


def running_pid(pid_file: Path, marker: str) -> int | None:
    """The live pid from `pid_file` whose command line contains `marker` (guards against pid reuse)."""
    pid = read_pid(pid_file)
    if pid is None or not alive(pid) or marker not in cmdline(pid):
        return None
    return pid


def terminate(pid: int, grace_seconds: float) -> None:
    """SIGTERM, wait up to `grace_seconds`, then SIGKILL and wait until the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_gone(pid, grace_seconds):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_gone(pid, 10):
        raise StackError(f"process {pid} survived SIGKILL")


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return not alive(pid)


def ensure_system_user(name: str) -> None:
    """Create a system account without home or login shell, unless it exists."""
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    # Another process may have created it between our check and useradd (exit 9: already exists).
    if result.returncode not in (0, 9):
        raise StackError(f"useradd {name} failed ({result.returncode}): {result.stderr.strip()}")


def chown_tree(path: Path, user: str) -> None:
    """Give `path` and everything under it to `user` (and its primary group)."""
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(Path(root) / name, entry.pw_uid, entry.pw_gid)
