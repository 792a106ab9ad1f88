"""The evaluation through serving: holdout metrics, exact-top-10 agreement and fallback share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import Stack
from serving_support import TYPE_A, exact_top

from serving.evaluation import evaluate


@pytest.fixture
def anyio_backend() -> str:
    """serving.evaluation runs on asyncio."""
    return "asyncio"


@pytest.mark.anyio
async def test_eval_via_serving_reports_recall_and_exact_agreement(stack: Stack, tmp_path: Path) -> None:
    world = stack.world
    v1 = world.versions[0].name
    holdout = tmp_path / "holdout.csv"
    rows = ["user_id,book_id"]
    expected_recall = []
    for j in range(10):
        user = f"u{j}"
        top = exact_top(world, v1, user, 10, set(world.profiles[user]))
        rows += [f"{user},{top[0]}", f"{user},{top[5]}", f"{user},99999"]  # 2 of 3 findable
        expected_recall.append(2 / 3)
    holdout.write_text("\n".join(rows) + "\n")
    settings = stack.settings.model_copy(update={"orchestrator_url": stack.orchestrator.url})
    report = await evaluate(settings, stack.serving.url, holdout, users=10)
    figures = report["types"][TYPE_A]
    assert figures["users"] == 10
    assert figures["recall@10"] == round(float(np.mean(expected_recall)), 5)
    assert 0 < figures["ndcg@10"] <= 1
    assert figures["exact_top10_share"] == 1.0
    assert figures["fallback_share"] == 0.0
