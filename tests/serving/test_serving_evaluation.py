"""The evaluation through serving: holdout metrics, exact-top-10 agreement and fallback share."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
from serving_stack import Stack
from serving_support import TYPE_A, exact_top
from typer.testing import CliRunner

from cli.main import app
from contract.holdout import HoldoutError
from search.engine import ScoredItem
from serving.evaluation import equals_exact, evaluate, read_holdout


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
    assert figures["holdout_in_profile"] == 0.0  # held-out items chosen outside the profiles


@pytest.mark.anyio
async def test_eval_holdout_items_from_the_profile_are_not_excluded(stack: Stack, tmp_path: Path) -> None:
    # A leave-last-out holdout: the held-out items are in the stored profile too; only the rest is "seen".
    world = stack.world
    v1 = world.versions[0].name
    holdout = tmp_path / "holdout.csv"
    rows = ["user_id,book_id"]
    expected = []
    for j in range(10):
        user = f"u{j}"
        held = world.profiles[user][-2:]
        rows += [f"{user},{item}" for item in held]
        top = exact_top(world, v1, user, 10, set(world.profiles[user][:-2]))
        expected.append(len(set(top) & set(held)) / 2)
    holdout.write_text("\n".join(rows) + "\n")
    assert max(expected) > 0  # some held-out item is findable once it is not excluded as seen
    settings = stack.settings.model_copy(update={"orchestrator_url": stack.orchestrator.url})
    report = await evaluate(settings, stack.serving.url, holdout, users=10)
    figures = report["types"][TYPE_A]
    assert figures["recall@10"] == round(float(np.mean(expected)), 5)
    assert figures["exact_top10_share"] == figures["exact_top10_share_strict"] == 1.0
    assert figures["holdout_in_profile"] == 1.0  # every user's held-out items are in their profile


def test_lockstep_eval_via_serving_prints_the_report_and_refuses_bad_input(
    stack: Stack, tmp_path: Path
) -> None:
    world = stack.world
    holdout = tmp_path / "holdout.csv"
    top = {
        f"u{j}": exact_top(world, world.versions[0].name, f"u{j}", 10, set(world.profiles[f"u{j}"]))
        for j in range(5)
    }
    holdout.write_text("user_id,book_id\n" + "".join(f"{user},{ids[0]}\n" for user, ids in top.items()))
    env = {
        "LOCKSTEP_REDIS_URL": stack.settings.redis_endpoint,
        "LOCKSTEP_OPENSEARCH_URL": stack.settings.opensearch_endpoint,
        "LOCKSTEP_ORCHESTRATOR_URL": stack.orchestrator.url,
        "LOCKSTEP_KEY_PREFIX": stack.settings.key_prefix,
        "LOCKSTEP_INDEX_PREFIX": stack.settings.index_prefix,
    }
    runner = CliRunner()
    args = ["eval", "--via-serving", stack.serving.url, "--holdout", str(holdout), "--users", "5"]
    result = runner.invoke(app, [*args, "--type", TYPE_A], env=env)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["types"][TYPE_A]
    assert figures["users"] == 5 and figures["failed_requests"] == 0
    assert figures["recall@10"] == 1.0 and figures["exact_top10_share"] == 1.0
    assert "warning" not in result.stderr

    # Held-out items that are also in the stored profiles: reported, and warned about on stderr.
    leaky = tmp_path / "leaky.csv"
    leaky.write_text("user_id,book_id\n" + "".join(f"u{j},{world.profiles[f'u{j}'][-1]}\n" for j in range(5)))
    warned = runner.invoke(app, [*args[:4], str(leaky), "--users", "5", "--type", TYPE_A], env=env)
    assert warned.exit_code == 0, warned.output
    assert json.loads(warned.stdout)["types"][TYPE_A]["holdout_in_profile"] == 1.0
    assert f"stored profile holds held-out items ({TYPE_A} 100.0%)" in warned.stderr

    unknown = runner.invoke(app, [*args, "--type", "nope"], env=env)
    assert unknown.exit_code == 2 and "--type: nope not servable" in unknown.output
    bad_url = runner.invoke(app, ["eval", "--via-serving", "localhost:8702"], env=env)
    assert bad_url.exit_code == 2 and "--via-serving: expected http(s)://host[:port]" in bad_url.output
    no_file = runner.invoke(
        app, ["eval", "--via-serving", stack.serving.url, "--holdout", "/nonexistent.csv"], env=env
    )
    assert no_file.exit_code == 2 and "--holdout: no such file" in no_file.output


def _hits(*scores: tuple[str, float]) -> list[ScoredItem]:
    return [ScoredItem(item, score, score, "v", {}) for item, score in scores]


def test_equals_exact_treats_tied_items_as_interchangeable() -> None:
    exact = _hits(("a", 0.9), ("b", 0.5), ("c", 0.5), ("d", 0.1))
    assert equals_exact(["a", "b", "c", "d"], exact)
    assert equals_exact(["a", "c", "b", "d"], exact)  # b and c tie
    assert not equals_exact(["b", "a", "c", "d"], exact)  # order of unequal scores matters
    assert not equals_exact(["a", "b", "c"], exact)  # too short
    assert not equals_exact(["a", "b", "b", "d"], exact)  # a duplicate is no top-k
    assert not equals_exact(["a", "b", "c", "x"], exact)  # x is not among the exact hits


def test_equals_exact_allows_float32_rounding_only() -> None:
    exact = _hits(("a", 0.9), ("b", 0.5))
    assert equals_exact(["a", "b"], exact)
    near = _hits(("a", 0.9), ("b", 0.5), ("c", 0.5 - 1e-7))
    assert equals_exact(["a", "c", "b"], near)
    far = _hits(("a", 0.9), ("b", 0.5), ("c", 0.499))
    assert not equals_exact(["a", "c", "b"], far)


def test_holdout_gzip_is_told_by_content_and_a_bad_header_is_named(tmp_path: Path) -> None:
    path = tmp_path / "holdout.csv"  # gzipped, though the name does not say so
    path.write_bytes(gzip.compress(b"user_id,book_id\nu1,10\nu1,11\nu2,10\n"))
    assert read_holdout(path) == {"u1": {"10", "11"}, "u2": {"10"}}
    path.write_text("user,book\nu1,10\n")
    expected = f"holdout {path}: needs columns user_id,book_id; header is user,book"
    with pytest.raises(HoldoutError, match=re.escape(expected)):
        read_holdout(path)
