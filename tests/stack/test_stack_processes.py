"""alive(pid), in stack and in demo (which may not import stack): one behaviour, a zombie is not alive."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import psutil
import pytest

from demo import processes as demo_processes
from stack import processes as stack_processes

ALIVES = [stack_processes.alive, demo_processes.alive]


@pytest.mark.parametrize("alive", ALIVES, ids=["stack", "demo"])
def test_alive_is_false_for_zombies_gone_and_impossible_pids(alive: Callable[[int], bool]) -> None:
    assert alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped: a zombie
        assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
        assert not alive(child.pid)
    finally:
        child.wait()
    assert not alive(child.pid)  # reaped: gone
    assert not alive(0) and not alive(-1)


def test_cmdline_names_the_process_or_is_empty_when_gone() -> None:
    code = "import sys; print('up', flush=True); sys.stdin.read()"
    sleeper = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert sleeper.stdout is not None and sleeper.stdout.readline() == b"up\n"  # past exec: argv is set
        assert code in stack_processes.cmdline(sleeper.pid)
    finally:
        sleeper.communicate()
    assert stack_processes.cmdline(sleeper.pid) == ""
