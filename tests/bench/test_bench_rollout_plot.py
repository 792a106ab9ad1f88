"""The rollout benchmark's plot: p99 over time with each build's span shaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import rollout


def test_the_plot_is_written_for_a_run_and_skipped_without_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollout, "PLOT", tmp_path / "p99.png")
    rollout._plot([], [])
    assert not (tmp_path / "p99.png").exists()
    samples = [(100.0 + i * 0.02, 0.01 + (0.05 if 300 <= i < 600 else 0.0)) for i in range(1000)]
    rollout._plot(samples, [("unthrottled", 106.0, 112.0), ("throttled", 114.0, 118.0)])
    assert (tmp_path / "p99.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
