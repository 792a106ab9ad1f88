"""`lockstep train` publishes versions of our three families into the real Redis; `lockstep eval` reports."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest
import redis
import typer
from publish_support import stored, stored_count
from typer.testing import CliRunner, Result

from cli import evaluate as evaluate_cli
from contract.keys import Keys, Kind
from contract.settings import Settings
from training import commands_models
from training.data import load_goodbooks
from training.publish import read_manifest
from training.retention import list_versions
from training.split import frame_for, read_holdout, window

Invoke = Callable[..., Result]


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory, stack_settings: Settings) -> Path:
    """The shared goodbooks files with the ratings of 1,500 users only (fast to train on)."""
    source = stack_settings.data_dir
    target = tmp_path_factory.mktemp("goodbooks")
    for name in ("books.csv.gz", "book_tags.csv.gz", "tags.csv.gz"):
        (target / name).symlink_to(source / name)
    table = pacsv.read_csv(source / "ratings.csv.gz")
    keep = [i for i, user in enumerate(table["user_id"].to_pylist()) if user <= 1500]
    lines = ["user_id,book_id,rating"] + [
        f"{u},{b},{r}"
        for u, b, r in zip(
            *(table[c].take(keep).to_pylist() for c in ("user_id", "book_id", "rating")), strict=True
        )
    ]
    (target / "ratings.csv.gz").write_bytes(gzip.compress("\n".join(lines).encode() + b"\n"))
    return target


@pytest.fixture
def run(settings: Settings, small_data: Path) -> Invoke:
    app = typer.Typer()
    commands_models.register(app)
    evaluate_cli.register(app)
    env = {
        "LOCKSTEP_REDIS_URL": settings.redis_endpoint,
        "LOCKSTEP_KEY_PREFIX": settings.key_prefix,
        "LOCKSTEP_DATA_DIR": str(small_data),
    }
    return lambda *args: CliRunner().invoke(app, list(args), env=env)


def test_train_one_type_on_a_frame_publishes_one_version(
    run: Invoke, redis_client: redis.Redis, keys: Keys
) -> None:
    result = run("train", "--type", "als-d64", "--frame", "2017-01-01..2017-07-02T12:00")
    assert result.exit_code == 0, result.output
    version = frame_for(0.0, 0.5).version_id
    manifest = read_manifest(redis_client, keys, "als-d64", version)
    assert manifest is not None and manifest.dim == 64 and manifest.counts.user > 1000
    assert manifest.trainer["algorithm"] == "implicit.als" and "50%" in manifest.trainer["history"]
    assert stored_count(redis_client, keys, "als-d64", version, Kind.USER) == manifest.counts.user
    again = run("train", "--type", "als-d64", "--history", "0.5")  # the same frame: nothing to do
    assert again.exit_code == 0 and "already published" in again.output


def test_train_all_publishes_two_versions_of_each_family(
    run: Invoke, redis_client: redis.Redis, keys: Keys
) -> None:
    result = run("train", "--all", "--versions", "2")
    assert result.exit_code == 0, result.output
    expected = [frame_for(0.0, 0.9).version_id, frame_for(0.0, 1.0).version_id]
    for name in ("als-d64", "ease-d128", "tagauthor-d64"):
        assert [m.version for m in list_versions(redis_client, keys, name)] == expected
    latest = {
        name: read_manifest(redis_client, keys, name, expected[1]) for name in ("ease-d128", "tagauthor-d64")
    }
    ease, tagauthor = latest["ease-d128"], latest["tagauthor-d64"]
    assert ease is not None and ease.counts.user == 0 and ease.counts.attr == ease.counts.item
    assert tagauthor is not None and tagauthor.counts.item > 1188  # books nobody rated, embedded by author
    attributes = stored(redis_client, keys, "tagauthor-d64", expected[1], Kind.ATTRIBUTE)
    names = [f.decode() for f in attributes]
    assert {name.split(":")[0] for name in names} == {"tag", "author", "item"}


def test_train_refuses_conflicting_options(run: Invoke) -> None:
    assert run("train", "--all", "--frame", "2017-01-01..2017-06-01", "--history", "0.5").exit_code == 2
    result = run("train", "--type", "nope")
    assert result.exit_code == 2 and "unknown type nope" in result.output


def test_eval_prints_json_and_a_chart(run: Invoke, tmp_path: Path) -> None:
    chart = tmp_path / "eval.png"
    result = run("eval", "--type", "ease-d128", "--json", "--chart", str(chart))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert set(report["types"]) == {"ease-d128"}
    ease, baseline = report["types"]["ease-d128"], report["baseline"]
    assert ease["recall@10"] > baseline["recall@10"] > 0
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_on_a_holdout_file_and_a_bad_one(run: Invoke, tmp_path: Path) -> None:
    holdout = tmp_path / "holdout.csv"
    holdout.write_text("user_id,book_id\n2,4081\n5,11\n")
    result = run("eval", "--type", "ease-d128", "--holdout", str(holdout), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{") :])["baseline"]["users"] == 2
    holdout.write_text("user,item\n2,4081\n")
    bad = run("eval", "--holdout", str(holdout))
    assert bad.exit_code == 2 and "needs columns user_id,book_id" in bad.output


def test_eval_refuses_offline_flags_with_via_serving(run: Invoke, tmp_path: Path) -> None:
    result = run(
        "eval", "--via-serving", "http://127.0.0.1:1", "--chart", str(tmp_path / "x.png"), "--all-books"
    )
    assert result.exit_code == 2
    assert "--chart, --all-books: offline evaluation only" in result.output
    assert not (tmp_path / "x.png").exists()


def test_eval_published_scores_the_stored_vectors_of_a_version(run: Invoke) -> None:
    assert run("train", "--type", "ease-d128", "--history", "0.8").exit_code == 0
    version = frame_for(0.0, 0.8).version_id
    # The default split's test items are each user's last 2 ratings: outside the first 80% it trained on.
    result = run("eval", "--published", "--type", "ease-d128", "--version", version, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert set(report["types"]) == {f"ease-d128 {version}"}
    stored, baseline = report["types"][f"ease-d128 {version}"], report["baseline"]
    assert stored["recall@10"] > baseline["recall@10"] > 0
    newest = run("eval", "--published", "--type", "ease-d128", "--json")  # no --version: the newest
    assert newest.exit_code == 0, newest.output

    missing = run(
        "eval", "--published", "--type", "ease-d128", "--version", "20990101T000000Z-20990102T000000Z"
    )
    assert missing.exit_code == 2 and "has no published version 20990101T000000Z" in missing.output
    loose = run("eval", "--type", "ease-d128", "--version", version)
    assert (
        loose.exit_code == 2 and "--version: give it with --published and exactly one --type" in loose.output
    )
    unknown = run("eval", "--published", "--type", "nope")
    assert unknown.exit_code == 2 and "unknown embedding type 'nope'" in unknown.output


def test_holdout_writes_what_a_history_share_never_saw(run: Invoke, small_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "later.csv.gz"
    result = run("holdout", str(path), "--history", "0.8")
    assert result.exit_code == 0, result.output
    held = read_holdout(path)
    ratings = load_goodbooks(small_data).ratings
    trained = window(ratings, frame_for(0.0, 0.8))
    # The holdout and the 80% training window split every user's ratings: each pair in exactly one.
    key = ratings.user_ids * (1 << 32) + ratings.book_ids
    held_key = held.user_ids * (1 << 32) + held.book_ids
    trained_key = trained.user_ids * (1 << 32) + trained.book_ids
    assert len(held) + len(trained) == len(ratings)
    assert not np.isin(held_key, trained_key).any() and np.isin(key, np.r_[held_key, trained_key]).all()
    assert f"wrote {len(held):,} ratings" in result.output

    missing = run("holdout", str(tmp_path / "nowhere" / "h.csv"), "--history", "0.8")
    assert missing.exit_code == 2 and "no directory" in missing.output
    everything = run("holdout", str(tmp_path / "h.csv"), "--history", "1.0")
    assert everything.exit_code == 2 and not (tmp_path / "h.csv").exists()
