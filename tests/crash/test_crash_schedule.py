"""The kill schedule: which kinds may be down together, and every kind killed once before any twice."""

from __future__ import annotations

import random
from pathlib import Path

from rich.console import Console

from crash.context import Crash, Options, Victim
from crash.history import History
from crash.killer import next_victim
from crash.kinds import (
    INDEXER_INCREMENTAL,
    INDEXER_SHADOW,
    OPENSEARCH,
    ORCHESTRATOR,
    PROCESSES,
    REDIS,
    SERVING,
    compatible,
)
from crash.stack import CrashStack
from demo.layout import Layout


def test_kinds_go_down_together_only_when_neither_recovery_needs_the_other() -> None:
    assert compatible(SERVING, {ORCHESTRATOR}) and compatible(ORCHESTRATOR, {SERVING})
    assert compatible(INDEXER_SHADOW, {INDEXER_INCREMENTAL, SERVING})
    assert not compatible(REDIS, {ORCHESTRATOR}) and not compatible(ORCHESTRATOR, {REDIS})
    assert not compatible(REDIS, {OPENSEARCH}) and not compatible(OPENSEARCH, {REDIS})
    assert not compatible(INDEXER_SHADOW, {OPENSEARCH}) and not compatible(OPENSEARCH, {INDEXER_SHADOW})
    # OpenSearch's recovery (a full recommendation) needs serving, the orchestrator and Redis.
    assert not any(compatible(OPENSEARCH, {other}) for other in (SERVING, ORCHESTRATOR, REDIS))


def _crash(tmp_path: Path, seed: int) -> Crash:
    return Crash(
        options=Options(seconds=1, history=tmp_path / "h.jsonl", stack=CrashStack(tmp_path)),
        console=Console(),
        history=History(tmp_path / "h.jsonl"),
        env={},
        layout=Layout(tmp_path),
        lockstep=[],
        specs={},
        orchestrator_url="",
        serving_url="",
        rng=random.Random(seed),
        victims={name: Victim(name) for name in PROCESSES},
    )


def test_every_kind_is_killed_once_before_any_is_killed_twice(tmp_path: Path) -> None:
    for seed in range(20):
        crash = _crash(tmp_path, seed)
        chosen = []
        for _ in range(len(PROCESSES)):
            name = next_victim(crash)  # each recovers before the next kill here
            assert name is not None
            crash.victims[name].kills += 1
            chosen.append(name)
        assert sorted(chosen) == sorted(PROCESSES)


def test_nothing_is_killed_while_it_would_blur_a_recovery(tmp_path: Path) -> None:
    crash = _crash(tmp_path, 1)
    crash.victims[OPENSEARCH].kills = 1
    crash.victims[OPENSEARCH].killed_at = 1.0  # down, not recovered: every other kind must wait
    assert next_victim(crash) is None
    crash.victims[OPENSEARCH].killed_at = None
    crash.victims[SERVING].restarting = True
    crash.victims[SERVING].kills = 1
    # Serving is coming back: OpenSearch (killed already) aside, only kinds whose recovery needs no
    # serving may go, the least killed first.
    for _ in range(20):
        assert next_victim(crash) in {ORCHESTRATOR, REDIS, INDEXER_SHADOW, INDEXER_INCREMENTAL}
