"""The demo's pure parts: frames, request bodies, the mixing check, similarity, processes by pid file."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from contract.filters import fields_of, parse_filter
from contract.items import load_schema, using_schema
from contract.profiles import Interaction, Profile
from contract.settings import Settings
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from contract.wire import TypeInfo, VersionInfo, WeightedAttribute
from demo import processes
from demo.examples import (
    EXAMPLES,
    GOODBOOKS,
    NEWS,
    NEWS_FILTERS,
    NEWS_FIRST,
    news_dir,
    news_next_frame,
    own_prefix,
)
from demo.layout import Layout
from demo.load import FILTERS, LoadStats, Outcome, SeenItem, request_body
from demo.plan import FIRST_HISTORY, HISTORY_END, next_frame
from demo.processes import Spec
from demo.quality import TypeQuality, holdout_start, never_saw_holdout
from demo.report import rollout_cost
from demo.summary import summarize
from demo.verify import (
    PartitionReport,
    SimilarityReport,
    check_partitions,
    close,
    mixes_versions,
    percentile,
    similarity,
)
from training.split import frame_for

V1 = "20170101T000000Z-20171125T120000Z"
V2 = "20170101T000000Z-20180101T000000Z"


def test_next_frame_is_ordered_after_every_latest() -> None:
    assert next_frame({"a": None}).end == HISTORY_END
    assert next_frame({"a": datetime(2017, 11, 25, 12, tzinfo=UTC), "b": None}).version_id == V2
    after = next_frame({"a": HISTORY_END, "b": datetime(2017, 6, 1, tzinfo=UTC)})
    assert after.end > HISTORY_END and after.version_id != V2
    assert next_frame({"a": after.end}).end > after.end


def test_request_bodies_are_valid_and_varied() -> None:
    profiles = [
        Profile(
            user_id=str(n), interactions=tuple(Interaction(item_id=str(i), weight=3) for i in range(1, 8))
        )
        for n in range(1, 5)
    ]
    rng = random.Random(3)
    bodies = [request_body(rng, profiles, ["t1", "t2"]) for _ in range(400)]
    for body in bodies:
        assert ("user_id" in body) != ("attributes" in body)
        assert body["explain"] is True
        if "filters" in body:
            parse_filter(body["filters"])
        for attribute in body.get("attributes", []):
            WeightedAttribute.model_validate(attribute)
    assert {b.get("embedding_type") for b in bodies} == {None, "t1", "t2"}
    assert any("attributes" in b for b in bodies) and any("filters" in b for b in bodies)
    for chosen in FILTERS:
        if chosen is not None:
            parse_filter(chosen)


def _outcome(version: str | None, *items: tuple[str, str | None]) -> Outcome:
    seen = tuple(SeenItem(str(n), scorer, v, 0.5) for n, (scorer, v) in enumerate(items))
    return Outcome(0.0, 0.01, 200, {}, "t", version, False, seen)


def test_mixing_is_any_embedding_item_of_another_version() -> None:
    assert not mixes_versions(_outcome(V1, ("embedding", V1), ("fallback", V1)))
    assert not mixes_versions(_outcome(V1, ("fallback", V2)))  # fallback items carry the request's label
    assert mixes_versions(_outcome(V1, ("embedding", V1), ("embedding", V2)))
    assert mixes_versions(_outcome(None, ("embedding", V1)))
    assert not mixes_versions(_outcome(None, ("fallback", None)))


def test_similarity_and_tolerance() -> None:
    u, v = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    assert similarity(Similarity.DOT, u, v) == pytest.approx(1.0)
    assert similarity(Similarity.COSINE, u, v) == pytest.approx(1.0 / (np.sqrt(5) * np.sqrt(10)))
    assert similarity(Similarity.L2, u, v) == pytest.approx(-13.0)
    assert close(0.5, 0.5004) and not close(0.5, 0.51)
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3 and percentile([], 0.99) == 0.0
    assert percentile(list(range(1, 101)), 0.99) == 99


def test_a_started_process_is_recognised_then_stopped(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    spec = Spec("sleeper", (sys.executable, "-c", "import time; time.sleep(60)"))
    record = processes.start(layout, spec, {"PATH": "/usr/bin:/bin"})
    try:
        assert processes.running(layout, "sleeper") == record
        assert processes.stop(layout, "sleeper", timeout=5)
        assert not processes.alive(record.pid)
        assert processes.running(layout, "sleeper") is None
        assert not processes.stop(layout, "sleeper")
    finally:
        processes.stop(layout, "sleeper", timeout=1)


def test_a_recycled_pid_is_not_taken_for_ours(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    layout.root.mkdir(exist_ok=True)
    # Our own pid, recorded with a command line it does not run: never "running", never signalled.
    layout.pid_file("other").write_text(
        f'{{"pid": {os.getpid()}, "argv": ["x", "orchestrator", "serve"], "started_at": 0}}'
    )
    assert processes.running(layout, "other") is None
    assert not processes.stop(layout, "other")


def test_a_process_older_than_the_code_counts_as_running_old_code(tmp_path: Path) -> None:
    package = tmp_path / "serving"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "serving.py").write_text("")  # not code the processes run: never counts
    module = package / "recommender.py"
    module.write_text("")
    os.utime(module, (1000.0, 1000.0))
    os.utime(package / "__init__.py", (900.0, 900.0))
    os.utime(tmp_path / "bench" / "serving.py", (5000.0, 5000.0))
    assert processes.newest_code_mtime(tmp_path) == 1000.0
    started = processes.Record(pid=1, argv=("lockstep", "serving", "serve"), started_at=1500.0)
    assert not processes.runs_old_code(started, tmp_path)
    os.utime(module, (2000.0, 2000.0))  # edited (or upgraded) after the process started
    assert processes.runs_old_code(started, tmp_path)


def _info(*frames: tuple[datetime, datetime], in_use: int) -> TypeInfo:
    """A TypeInfo with one published version per frame; in_use is the index of one of them."""
    published = [
        VersionInfo(
            version=Frame(start, end).version_id,
            seq=n,
            frame_start=start,
            frame_end=end,
            counts={},
            created_at=end,
        )
        for n, (start, end) in enumerate(frames, start=1)
    ]
    etype = EmbeddingType(name="t", family=Family.DIRECT_DIRECT, dim=2, similarity=Similarity.DOT)
    return TypeInfo(
        type=etype,
        latest=published[-1].version,
        in_use=published[in_use].version,
        published=published,
        indexed=[],
    )


def test_the_holdout_starts_where_the_first_versions_stop_training() -> None:
    first = frame_for(0.0, FIRST_HISTORY)
    assert holdout_start() == first.end  # the demo's mirror of training's rounding
    whole = (first.start, HISTORY_END)
    half = frame_for(0.0, 0.5)
    assert never_saw_holdout(_info((first.start, first.end), whole, in_use=0))
    assert never_saw_holdout(_info((half.start, half.end), whole, in_use=0))  # stopped even earlier
    assert not never_saw_holdout(_info((first.start, first.end), whole, in_use=1))  # the rollout's version
    assert not never_saw_holdout(_info(whole, (first.end, datetime(2018, 1, 2, tzinfo=UTC)), in_use=1))


def _quality(name: str, share: float | None, failed: int = 0) -> TypeQuality:
    return TypeQuality(name, "v", 40, failed, 0.1, 0.2, share, share, 0.0)


def test_quality_checks_need_the_exact_share_and_no_failed_request() -> None:
    summary = summarize(
        LoadStats(),
        1.0,
        1,
        SimilarityReport(),
        [],
        [_quality("a", 0.97), _quality("b", 0.9), _quality("c", None), _quality("d", 1.0, failed=1)],
    )
    verdicts = {c.name.split()[0]: c.ok for c in summary.checks if "exact top-10" in c.name}
    assert verdicts == {"a": True, "b": False, "c": False, "d": False}
    assert "recall@10 0.100 on held-out ratings" in next(c.detail for c in summary.checks if c.name[0] == "a")
    assert summary.as_json()["quality"][0]["exact_top10_share"] == 0.97


# --- the news example ------------------------------------------------------------------------------------


@pytest.fixture
def news_schema() -> Iterator[None]:
    """The news schema in effect for the test, the previous one restored after."""
    with using_schema(load_schema(NEWS.schema)):
        yield


def _news_profiles() -> list[Profile]:
    return NEWS.users(Path("/nowhere"), 500) if NEWS.users else []


@pytest.mark.usefixtures("news_schema")
def test_news_requests_are_valid_under_the_news_schema_and_name_one_or_two_regions() -> None:
    regions = set(NEWS.partitions)
    assert regions == {"us", "eu", "in", "uk", "br", "jp", "africa", "au"}
    fields: set[str] = set()
    for chosen in NEWS.filters:
        if chosen is not None:
            fields |= fields_of(parse_filter(chosen))
    # Every filterable kind of the schema is exercised: keyword, keywords, date, boolean, integer, float.
    assert fields >= {"category", "topics", "published_at", "paywalled", "views", "quality", "region"}
    profiles = _news_profiles()
    rng = random.Random(5)
    bodies = [
        request_body(rng, profiles, list(NEWS.types), NEWS.filters, NEWS.partitions) for _ in range(600)
    ]
    scoped = [b for b in bodies if "partitions" in b]
    assert 0.2 < len(scoped) / len(bodies) < 0.4
    assert {len(b["partitions"]) for b in scoped} == {1, 2}
    assert all(
        set(b["partitions"]) <= regions and len(set(b["partitions"])) == len(b["partitions"]) for b in scoped
    )
    for body in bodies:
        if "filters" in body:
            parse_filter(body["filters"])
        for attribute in body.get("attributes", []):
            WeightedAttribute.model_validate(attribute)
    assert any("attributes" in b for b in bodies) and any("user_id" in b for b in bodies)


def test_the_news_filters_are_refused_under_the_goodbooks_schema() -> None:
    with using_schema(load_schema(GOODBOOKS.schema)):
        with pytest.raises(ValidationError, match="unknown filter field 'category'"):
            parse_filter(NEWS_FILTERS[2])
        assert all(f is None or parse_filter(f) for f in GOODBOOKS.filters)


def test_goodbooks_requests_name_no_partitions() -> None:
    profiles = [Profile(user_id="1", interactions=(Interaction(item_id="2", weight=1),))]
    rng = random.Random(3)
    assert not any("partitions" in request_body(rng, profiles, ["t"]) for _ in range(300))
    assert GOODBOOKS.partitions == () and GOODBOOKS.filters is FILTERS


def _scoped(partitions: list[str] | None, *item_ids: str, status: int = 200) -> Outcome:
    body: dict[str, Any] = {"user_id": "u1"} | ({"partitions": partitions} if partitions else {})
    seen = tuple(SeenItem(i, "embedding", "v", 0.5) for i in item_ids)
    return Outcome(0.0, 0.01, status, body, "t", "v", False, seen)


def test_partition_scoped_answers_are_checked_against_the_catalog() -> None:
    catalog = {"a": "eu", "b": "us", "c": "jp"}
    report = check_partitions(
        [
            _scoped(["eu"], "a"),
            _scoped(["eu", "jp"], "a", "c"),
            _scoped(None, "b", "c"),  # no partitions named: anything goes
            _scoped(["us"], "a", status=503),  # not served: nothing to check
        ],
        catalog,
    )
    assert (report.responses, report.items, report.violations) == (2, 3, [])
    report = check_partitions([_scoped(["eu"], "a", "b"), _scoped(["us"], "zz")], catalog)
    assert report.responses == 2 and report.items == 3 and len(report.violations) == 2
    assert "item b (us)" in report.violations[0] and "not in the catalog" in report.violations[1]


def test_the_summary_checks_partitions_only_when_the_example_names_them() -> None:
    plain = summarize(LoadStats(), 1.0, 1, SimilarityReport(), [], [])
    assert plain.partition_violations is None
    assert not any("partitions" in c.name for c in plain.checks)
    clean = summarize(LoadStats(), 1.0, 1, SimilarityReport(), [], [], partitions=PartitionReport(4, 40, []))
    (check,) = [c for c in clean.checks if "partitions" in c.name]
    assert check.ok and clean.partition_violations == 0
    bad = PartitionReport(4, 40, ["item b (us) answered a request for ['eu']"])
    failed = summarize(LoadStats(), 1.0, 1, SimilarityReport(), [], [], partitions=bad)
    (check,) = [c for c in failed.checks if "partitions" in c.name]
    assert not check.ok and failed.partition_violations == 1
    assert failed.as_json()["partition_examples"] == bad.violations
    # A run whose partition-scoped requests got nothing back has verified nothing.
    empty = summarize(LoadStats(), 1.0, 1, SimilarityReport(), [], [], partitions=PartitionReport())
    assert not next(c for c in empty.checks if "partitions" in c.name).ok


def test_the_news_example_has_its_own_prefixes_schema_and_ports() -> None:
    base = Settings(key_prefix="lockstep", index_prefix="lockstep")
    news = NEWS.settings(base, {})
    assert news.key_prefix == news.index_prefix == "news-lockstep"
    assert not news.index_prefix.startswith(base.index_prefix)  # `lockstep*` never takes in news indexes
    assert news.catalog_schema == NEWS.schema and load_schema(news.catalog_schema).partition == "region"
    assert news.orchestrator_url.endswith(":8703") and news.serving_url.endswith(":8704")
    given = NEWS.settings(base, {"LOCKSTEP_SERVING_URL": "x"})
    assert given.serving_url == base.serving_url and given.orchestrator_url.endswith(":8703")
    assert NEWS.env(news)["LOCKSTEP_CATALOG_SCHEMA"] == str(NEWS.schema)
    assert NEWS.env(news)["LOCKSTEP_KEY_PREFIX"] == "news-lockstep"
    # goodbooks keeps the configured prefixes and URLs: the default demo is unchanged.
    books = GOODBOOKS.settings(base, {})
    assert (books.key_prefix, books.serving_url) == (base.key_prefix, base.serving_url)
    assert len(own_prefix("news", "t" * 31)) == 31
    assert set(EXAMPLES) == {"goodbooks", "news"}


def test_news_versions_come_from_the_synthetic_files_v0_first_then_alternating(tmp_path: Path) -> None:
    assert news_next_frame({"a": None}) == NEWS_FIRST
    second = news_next_frame({"a": NEWS_FIRST.end, "b": None})
    assert second.end > NEWS_FIRST.end and second.end - second.start == NEWS_FIRST.end - NEWS_FIRST.start
    assert news_next_frame({"a": second.end}).end > second.end
    first = NEWS.first_versions(tmp_path, 300, ["news-d32"])
    assert [c[:2] for c in first] == [["types", "register"], ["publish", "--type"]]
    assert f"{news_dir(tmp_path, 300)}/v0/users.npz" in first[1]

    def folders(published: int) -> set[str]:
        commands = NEWS.next_version(tmp_path, 300, second, dict.fromkeys(NEWS.types, published))
        assert len(commands) == len(NEWS.types)
        return {Path(c[c.index("--items") + 1]).parent.name for c in commands}

    assert folders(1) == {"v1"} and folders(2) == {"v0"}
    # The catalog is synthesised once, then reused; it is loaded on every run.
    assert [c[:2] for c in NEWS.catalog(tmp_path, 300)] == [["catalog", "synth"], ["catalog", "load"]]
    folder = news_dir(tmp_path, 300)
    for name in ("items.jsonl", "v0/items.npz", "v0/users.npz", "v1/items.npz", "v1/users.npz"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("")
    assert [c[:2] for c in NEWS.catalog(tmp_path, 300)] == [["catalog", "load"]]


def test_the_summary_splits_p99_into_during_the_rollout_and_after_it() -> None:
    stats = LoadStats()
    # 100 quiet requests before and after, 100 slow ones while the versions were published and indexed.
    for n in range(300):
        at = n / 10.0
        latency = 0.2 if 10.0 <= at < 20.0 else 0.01
        stats.outcomes.append(Outcome(at, latency, 200, {}, "t", "v", False, ()))
    summary = summarize(stats, 30.0, 1, SimilarityReport(), [], [], rollout_window=(10.0, 20.0))
    assert (summary.p99_rollout_ms, summary.p99_settled_ms) == (200.0, 10.0)
    assert "20.00x" in rollout_cost(summary)
    nothing_moved = summarize(stats, 30.0, 1, SimilarityReport(), [], [])
    assert (nothing_moved.p99_rollout_ms, nothing_moved.p99_settled_ms) == (None, None)
    assert rollout_cost(nothing_moved) == "-"
