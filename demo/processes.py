"""Detached background processes: start once (pid file + log), recognise on the next run, stop by pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from demo.layout import Layout


@dataclass(frozen=True)
class Spec:
    """A process the demo keeps running: its name (pid/log file stem) and command line."""

    name: str
    argv: tuple[str, ...]
    health_url: str | None = None  # GET it until 200 before the process counts as up
    port: int | None = None  # a port it serves on besides health_url (indexer metrics)
    # LOCKSTEP_* variables of this process alone (a replica's own URL, the orchestrator it talks to).
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Record:
    """What the pid file of a started process holds."""

    pid: int
    argv: tuple[str, ...]
    started_at: float
    port: int | None = None


def read_record(layout: Layout, name: str) -> Record | None:
    """The pid file's record, or None when there is none (or it is unreadable)."""
    path = layout.pid_file(name)
    try:
        data = json.loads(path.read_text())
        return Record(int(data["pid"]), tuple(data["argv"]), float(data["started_at"]), data.get("port"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (stack.processes.alive says the same)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError):  # gone, or no pid at all (0, negative)
        return False


def _cmdline(pid: int) -> list[str] | None:
    try:
        return psutil.Process(pid).cmdline()
    except (psutil.Error, ValueError):
        return None


def running(layout: Layout, name: str) -> Record | None:
    """The record of `name` if that process still runs and is still ours (not a recycled pid)."""
    record = read_record(layout, name)
    if record is None or not alive(record.pid):
        return None
    cmdline = _cmdline(record.pid)
    # A script started through its shebang shows the interpreter first, so compare the arguments' tail.
    tail = list(record.argv[1:])
    if cmdline is not None and tail and cmdline[-len(tail) :] != tail:
        return None
    return record


# Where the installed Lockstep packages live (a source checkout or site-packages alike), and the ones the
# demo's background processes run.
CODE_ROOT = Path(__file__).resolve().parents[1]
PROCESS_PACKAGES = ("cli", "contract", "search", "orchestrator_client", "orchestrator", "indexer", "serving")


def newest_code_mtime(root: Path = CODE_ROOT) -> float:
    """When the code of the demo's processes last changed: the newest .py file of PROCESS_PACKAGES."""
    files = (f for name in PROCESS_PACKAGES for f in (root / name).rglob("*.py"))
    return max((f.stat().st_mtime for f in files), default=0.0)


def runs_old_code(record: Record, root: Path = CODE_ROOT) -> bool:
    """Whether the process started before the code last changed (a pull or an edit since): restart it."""
    return record.started_at < newest_code_mtime(root)


def start(layout: Layout, spec: Spec, env: Mapping[str, str]) -> Record:
    """Start `spec` detached (own session, output to its log) and write its pid file."""
    layout.root.mkdir(parents=True, exist_ok=True)
    log_path = layout.log_file(spec.name)
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(spec.argv)}\n".encode())
        log.flush()
        # A new session: the process outlives the demo and ignores the terminal's Ctrl-C and hangup.
        process = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**env, **dict(spec.env)},
            start_new_session=True,
            close_fds=True,
        )
    record = Record(process.pid, spec.argv, time.time(), spec.port)
    layout.pid_file(spec.name).write_text(json.dumps(asdict(record)))
    return record


def stop(layout: Layout, name: str, timeout: float = 20.0) -> bool:
    """SIGTERM the process's group, SIGKILL after `timeout`; True when something was stopped."""
    record = running(layout, name)
    layout.pid_file(name).unlink(missing_ok=True)
    if record is None:
        return False
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(record.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(record.pid):
        _signal_group(record.pid, signal.SIGKILL)
        while alive(record.pid) and time.monotonic() < deadline + 5:
            time.sleep(0.1)
    return True


def kill(pid: int) -> None:
    """SIGKILL a process started here, with its group (no chance to clean up: the crasher's fault)."""
    _signal_group(pid, signal.SIGKILL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # The process leads its own session (start_new_session), so its group id is its pid: uvicorn
    # workers and the like go with it.
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def log_tail(layout: Layout, name: str, lines: int = 25) -> str:
    """The last lines of a process's log."""
    path = layout.log_file(name)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def stop_all(layout: Layout, names: Sequence[str]) -> list[str]:
    """Stop each named process (in the order given); the names of those that were running."""
    return [name for name in names if stop(layout, name)]
