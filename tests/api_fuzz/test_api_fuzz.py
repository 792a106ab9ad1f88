"""Schemathesis, every check enabled, against both services on the real stack: it reports nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from serving_stack import Stack

from contract.settings import DEV_ADMIN_KEYS

ST = Path(sys.executable).parent / "st"
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 30  # per operation and phase: about a minute a service on two cores


@pytest.mark.parametrize("service", ["serving", "orchestrator"])
def test_schemathesis_finds_nothing(stack: Stack, service: str, tmp_path: Path) -> None:
    server = stack.serving if service == "serving" else stack.orchestrator
    # Admin passes every role check of the orchestrator, so the fuzzer reaches every route's input
    # handling; serving has no keys yet and ignores the header.
    key = DEV_ADMIN_KEYS[0]
    command = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "17",
        "--workers",
        "2",
        "--header",
        f"Authorization: Bearer {key}",
        "--report",
        "ndjson",
        "--report-dir",
        str(tmp_path),
        "--output-truncate=true",
    ]
    # In tmp_path: schemathesis keeps a cache of crashes in its working directory.
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path)
    (tmp_path / "schemathesis.out").write_text(result.stdout + result.stderr)
    if result.returncode != 0 and _tool_crash_only(result.stdout):
        # Seen once in 4 runs: CPython 3.11's ast module fails inside hypothesis while the coverage phase
        # describes a lambda. That is the fuzzer crashing, not a finding: run it once more (same seed).
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path
        )
        (tmp_path / "schemathesis-rerun.out").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, _failures(result.stdout) + result.stderr[-5000:]


def _tool_crash_only(output: str) -> bool:
    """Whether the run failed only by schemathesis' own runtime error in CPython's ast (no check failed)."""
    return "AST constructor recursion depth mismatch" in output and "= FAILURES =" not in output


def _failures(output: str) -> str:
    """The report's failures and summary, each line cut short (a failing case's curl can be megabytes)."""
    start = output.find("= FAILURES =")
    lines = output[start if start >= 0 else 0 :].splitlines()
    return "\n".join(line if len(line) <= 400 else line[:400] + " ..." for line in lines)
