"""The synthetic news catalog: valid items, realistic distributions, clustered and drifting vectors, files."""

from __future__ import annotations

import inspect
import itertools
import json
import tracemalloc
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from contract.items import INTEGER_MAX, load_schema
from examples.news import synth
from examples.news.world import CATEGORIES, PUBLISHERS, REGIONS
from training.vector_files import read_vectors

SCHEMA = Path(__file__).resolve().parents[2] / "examples" / "news" / "schema.yaml"


@pytest.fixture(scope="module")
def catalog() -> list[dict[str, Any]]:
    return list(synth.generate(20_000, seed=7))


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """A chunk of 128 rows, so small catalogs span several chunks."""
    monkeypatch.setattr(synth, "CHUNK", 128)
    return 128


def _group_keys(items: list[dict[str, Any]]) -> npt.NDArray[np.str_]:
    return np.array([f"{item['category']}/{item['region']}" for item in items])


def _neighbours(vectors: npt.NDArray[np.float32], queries: npt.NDArray[np.int64], k: int) -> list[set[int]]:
    scores = vectors[queries] @ vectors.T
    scores[np.arange(len(queries)), queries] = -np.inf
    return [set(row) for row in np.argsort(-scores, axis=1)[:, :k].tolist()]


# --- items --------------------------------------------------------------------------------------------


def test_every_item_passes_the_news_schema_unchanged(catalog: list[dict[str, Any]]) -> None:
    schema = load_schema(SCHEMA)
    for item in catalog[:5_000]:
        assert schema.validate_item(item) == item
    assert [item["item_id"] for item in catalog[:3]] == ["n0000001", "n0000002", "n0000003"]
    assert set(catalog[0]) == {"item_id", *schema.fields}


def test_a_one_day_window_elsewhere_still_validates_and_stays_inside() -> None:
    start = datetime(2024, 2, 28, 12, 30, tzinfo=UTC)
    schema = load_schema(SCHEMA)
    items = list(synth.generate(2_000, seed=1, start=start, days=1))
    for item in items:
        assert schema.validate_item(item) == item
    moments = [datetime.fromisoformat(item["published_at"]) for item in items]
    assert start <= min(moments) and max(moments) < start + timedelta(days=1)


def test_same_seed_same_catalog_and_a_shorter_catalog_is_a_prefix(small_chunks: int) -> None:
    longer = list(synth.generate(1_000, seed=3))
    assert list(synth.generate(300, seed=3)) == longer[:300]
    assert list(synth.generate(1_000, seed=3)) == longer
    other = list(synth.generate(300, seed=4))
    assert sum(a != b for a, b in zip(other, longer, strict=False)) > 290


def test_views_are_zipfian_integers(catalog: list[dict[str, Any]]) -> None:
    views = np.sort([item["views"] for item in catalog])[::-1]
    assert all(isinstance(item["views"], int) for item in catalog)
    assert views[-1] >= 0 and views[0] <= INTEGER_MAX
    top = len(views) // 100
    # Uniform or normal popularity would give the top 1% about 1-3% of views.
    assert views[:top].sum() / views.sum() > 0.2
    assert views.mean() > 1.5 * np.median(views)


def test_region_shares_are_skewed_as_declared(catalog: list[dict[str, Any]]) -> None:
    counts = Counter(item["region"] for item in catalog)
    for region in REGIONS:
        assert counts[region.name] / len(catalog) == pytest.approx(region.share, abs=0.015)
    assert max(counts.values()) > 4 * min(counts.values())


def test_publishers_write_mostly_for_their_home_region_with_zipfian_shares(
    catalog: list[dict[str, Any]],
) -> None:
    regions: dict[str, Counter[str]] = {p.name: Counter() for p in PUBLISHERS}
    for item in catalog:
        regions[item["publisher"]][item["region"]] += 1
    for publisher in PUBLISHERS:
        seen = regions[publisher.name]
        assert seen[publisher.home] / sum(seen.values()) > 0.75, publisher
    sizes = sorted((sum(seen.values()) for seen in regions.values()), reverse=True)
    assert sizes[0] > 8 * sizes[-1]
    assert sum(sizes[:5]) > 0.3 * len(catalog)


def test_paywalls_depend_on_the_publisher(catalog: list[dict[str, Any]]) -> None:
    rates = {p.name: p.paywall for p in PUBLISHERS}
    free = [item["paywalled"] for item in catalog if rates[item["publisher"]] == 0.0]
    strict = [item["paywalled"] for item in catalog if rates[item["publisher"]] >= 0.8]
    assert not any(free)
    assert np.mean(strict) > 0.7


def test_publish_times_are_recent_heavy_and_follow_the_day(catalog: list[dict[str, Any]]) -> None:
    start, end = synth.DEFAULT_START, synth.DEFAULT_START + timedelta(days=30)
    moments = [datetime.fromisoformat(item["published_at"]) for item in catalog]
    assert start <= min(moments) and max(moments) < end
    middle = start + timedelta(days=15)
    assert sum(m >= middle for m in moments) > 3 * sum(m < middle for m in moments)
    # The uk's clock is UTC: its morning outpublishes its small hours.
    hours = Counter(m.hour for m, item in zip(moments, catalog, strict=True) if item["region"] == "uk")
    assert sum(hours[h] for h in range(8, 12)) > 3 * sum(hours[h] for h in range(1, 5))


def test_topics_come_from_the_category_without_repeats(catalog: list[dict[str, Any]]) -> None:
    by_category: dict[str, set[str]] = {}
    for item in catalog:
        assert 1 <= len(item["topics"]) <= synth.MAX_TOPICS
        assert len(set(item["topics"])) == len(item["topics"])
        by_category.setdefault(item["category"], set()).update(item["topics"])
    topic_sets = list(by_category.values())
    assert all(not (a & b) for a, b in itertools.combinations(topic_sets, 2))


# --- vectors ------------------------------------------------------------------------------------------


def test_item_vectors_are_unit_float32_rows_and_chunks_agree(small_chunks: int) -> None:
    whole = synth.item_vectors(1_000, 16, seed=2)
    assert whole.dtype == np.float32 and whole.shape == (1_000, 16)
    assert np.allclose(np.linalg.norm(whole, axis=1), 1, atol=1e-5)
    chunks = list(synth.item_vector_chunks(1_000, 16, seed=2))
    assert max(len(c) for c in chunks) == small_chunks
    assert np.array_equal(np.concatenate(chunks), whole)
    assert np.array_equal(synth.item_vectors(300, 16, seed=2), whole[:300])


def test_items_of_a_topic_group_lie_closer_together(catalog: list[dict[str, Any]]) -> None:
    vectors = synth.item_vectors(3_000, 32, seed=7)
    groups = _group_keys(catalog[:3_000])
    cosines = vectors @ vectors.T
    same = groups[:, None] == groups[None, :]
    np.fill_diagonal(same, False)
    other = groups[:, None] != groups[None, :]
    assert cosines[same].mean() > cosines[other].mean() + 0.3


def test_clusters_fold_the_topic_groups() -> None:
    items = list(synth.generate(2_000, seed=5))
    categories = np.array([item["category"] for item in items])
    other = categories[:, None] != categories[None, :]

    def across_categories(vectors: npt.NDArray[np.float32]) -> float:
        return float((vectors @ vectors.T)[other].mean())

    plain = synth.item_vectors(2_000, 32, seed=5)
    assert abs(across_categories(plain)) < 0.03
    # One group for all: articles of different categories share its direction.
    assert across_categories(synth.item_vectors(2_000, 32, seed=5, clusters=1)) > 0.15
    pairs = len(REGIONS) * len(CATEGORIES)
    assert np.array_equal(synth.item_vectors(2_000, 32, seed=5, clusters=pairs), plain)


def test_a_retrained_version_moves_every_vector_but_keeps_neighbours() -> None:
    first, second = synth.item_vectors(4_000, 32, seed=1), synth.item_vectors(4_000, 32, seed=1, version=1)
    assert np.abs((first * second).sum(axis=1)).mean() < 0.5
    queries = np.arange(0, 4_000, 20, dtype=np.int64)
    before, after = _neighbours(first, queries, 10), _neighbours(second, queries, 10)
    overlap = np.mean([len(a & b) / 10 for a, b in zip(before, after, strict=True)])
    assert overlap > 0.4
    assert not np.array_equal(second, synth.item_vectors(4_000, 32, seed=1, version=2))


def test_users_prefer_a_few_topic_groups_within_their_version(catalog: list[dict[str, Any]]) -> None:
    items, groups = synth.item_vectors(5_000, 32, seed=7), _group_keys(catalog[:5_000])
    users = synth.user_vectors(200, 32, seed=7)
    assert users.dtype == np.float32 and users.shape == (200, 32)
    top = np.argsort(-(users @ items.T), axis=1)[:, :20]
    held = [sum(n for _, n in Counter(groups[row]).most_common(3)) / 20 for row in top]
    assert np.mean(held) > 0.8  # 20 random items spread over many more groups (about 0.3)
    # Scoring a user of one version against items of another is meaningless: the version invariant.
    mixed = np.argsort(-(users @ synth.item_vectors(5_000, 32, seed=7, version=1).T), axis=1)[:, :20]
    assert np.mean([len(set(a) & set(b)) for a, b in zip(top, mixed, strict=True)]) < 2


# --- files and streaming ------------------------------------------------------------------------------


def test_written_files_hold_the_catalog_and_read_as_publish_input(tmp_path: Path, small_chunks: int) -> None:
    seen: list[tuple[str, int, int]] = []
    summary = synth.write(
        tmp_path, 500, dim=16, users=300, versions=2, seed=1, progress=lambda *a: seen.append(a)
    )
    lines = (tmp_path / "items.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == list(synth.generate(500, seed=1))
    for version in (0, 1):
        items = read_vectors(tmp_path / f"v{version}" / "items.npz")
        assert items.ids == tuple(synth.item_id(i) for i in range(500))
        assert np.array_equal(items.matrix, synth.item_vectors(500, 16, seed=1, version=version))
        users = read_vectors(tmp_path / f"v{version}" / "users.npz")
        assert users.ids[0] == "u0000001" and len(users.ids) == 300
        assert np.array_equal(users.matrix, synth.user_vectors(300, 16, seed=1, version=version))
    assert (summary.items, summary.users, summary.versions, summary.dim) == (500, 300, 2, 16)
    assert summary.bytes == sum(path.stat().st_size for path in summary.files) and len(summary.files) == 5
    assert ("items.jsonl", 500, 500) in seen and ("v1/users.npz", 300, 300) in seen
    assert ("v0/items.npz", small_chunks, 500) in seen


def test_an_interrupted_write_leaves_no_partial_file(tmp_path: Path) -> None:
    def stop(stage: str, done: int, total: int) -> None:
        if stage == "v0/users.npz":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        synth.write(tmp_path, 200, dim=8, users=50, versions=1, progress=stop)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")) == [
        "items.jsonl",
        "v0/items.npz",
    ]
    assert len(read_vectors(tmp_path / "v0" / "items.npz").ids) == 200


def _peak_bytes(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_generation_and_writing_stream_in_chunks(tmp_path: Path, small_chunks: int) -> None:
    assert inspect.isgenerator(synth.generate(10**7))  # nothing drawn yet for ten million items
    assert all(len(c) <= small_chunks for c in synth.item_vector_chunks(1_000, 8))

    def consume(items: int) -> Callable[[], object]:
        return lambda: sum(1 for _ in synth.generate(items))

    def write(items: int) -> Callable[[], object]:
        return lambda: synth.write(tmp_path / str(items), items, dim=32, users=items, versions=1)

    # Ten times the items, about the same peak: memory follows the chunk, not the catalog.
    for run in (consume, write):
        run(4 * small_chunks)()  # first calls fill caches; measure warm runs only
        small, large = _peak_bytes(run(4 * small_chunks)), _peak_bytes(run(40 * small_chunks))
        assert large < 1.5 * small, run


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: synth.generate(-1), "items"),
        (lambda: synth.generate(10, seed=-1), "seed"),
        (lambda: synth.generate(10, days=0), "days"),
        (lambda: synth.generate(10, start=datetime(2026, 1, 1)), "start"),
        (lambda: synth.item_vectors(10, 0), "dim"),
        (lambda: synth.user_vectors(10, 8, clusters=0), "clusters"),
        (lambda: synth.write(Path("unused"), 10, versions=-1), "versions"),
    ],
)
def test_bad_arguments_name_the_argument(call: Callable[[], object], argument: str) -> None:
    with pytest.raises(ValueError, match=f"^{argument}: "):
        call()
