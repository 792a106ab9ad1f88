"""The demo's pure parts: frames, request bodies, the mixing check, similarity, processes by pid file."""

from __future__ import annotations

import os
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from contract.filters import parse_filter
from contract.profiles import Interaction, Profile
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from contract.wire import TypeInfo, VersionInfo, WeightedAttribute
from demo import processes
from demo.layout import Layout
from demo.load import FILTERS, LoadStats, Outcome, SeenItem, request_body
from demo.plan import FIRST_HISTORY, HISTORY_END, next_frame
from demo.processes import Spec
from demo.quality import TypeQuality, holdout_start, never_saw_holdout
from demo.summary import summarize
from demo.verify import SimilarityReport, close, mixes_versions, percentile, similarity
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
