"""A PNG bar chart of an evaluation report (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI

import matplotlib.pyplot as plt
import numpy as np

from training.evaluation import BASELINE_NAME, Report


def write_chart(report: Report, path: Path, title: str = "") -> None:
    """Grouped bars: recall@k, nDCG@k and MAP@k per embedding type and for the popularity baseline."""
    names = [*report.types, BASELINE_NAME]
    rows = [*report.types.values(), report.baseline]
    metrics = {
        f"recall@{report.k}": [m.recall for m in rows],
        f"nDCG@{report.k}": [m.ndcg for m in rows],
        f"MAP@{report.k}": [m.map for m in rows],
    }
    positions = np.arange(len(names))
    width = 0.8 / len(metrics)
    figure, axes = plt.subplots(figsize=(2.2 + 1.6 * len(names), 4.2), dpi=110)
    try:
        for offset, (label, values) in enumerate(metrics.items()):
            bars = axes.bar(positions + (offset - (len(metrics) - 1) / 2) * width, values, width, label=label)
            axes.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
        axes.set_xticks(positions, names)
        axes.set_ylabel("mean over test users")
        axes.set_title(title or f"Offline evaluation at k={report.k}")
        axes.legend(loc="upper right", fontsize=8)
        axes.margins(y=0.15)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="png")
    finally:
        plt.close(figure)
