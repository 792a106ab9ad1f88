"""A synthetic news catalog: items valid under schema.yaml, clustered item and user vectors, files to publish.

Everything is drawn in chunks of CHUNK rows from random streams keyed by (seed, chunk), so output is
deterministic for a seed, memory is bounded by CHUNK whatever the catalog size, and a catalog of N items is
the first N items of any larger one (same metadata, same vectors).
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from contract.items import INTEGER_MAX
from examples.news.world import CATEGORIES, COMMON_WORDS, DIURNAL, PUBLISHERS, REGIONS, WEEKEND_RATE

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Vectors = npt.NDArray[np.float32]
Progress = Callable[[str, int, int], None]
"""Called after each chunk with (stage, rows done, rows in the stage), e.g. ("v0/items.npz", 16384, 10**6)."""

CHUNK: Final = 16_384  # rows drawn at once (read at call time, so tests may lower it)
DEFAULT_START: Final = datetime(2026, 11, 1, tzinfo=UTC)  # fixed, so a seed alone decides the catalog
MAX_TOPICS: Final = 4
MAX_TITLE_WORDS: Final = 6
VECTOR_DTYPE: Final = np.dtype("<f4")  # what `lockstep publish` stores, little-endian as np.savez writes it

# Popularity: Pareto sizes are Zipf's rank-size law; alpha near 1 gives the heavy head news traffic has.
VIEWS_ALPHA: Final = 1.3
VIEWS_SCALE: Final = 40.0
FRESH_HOURS: Final = 6.0  # an article gathers most of its views in its first hours
FOREIGN_DESK: Final = 0.1  # share of a region's articles written by outlets from elsewhere

# An item vector mixes its category's direction, its topic group's, its topics' and noise (unit norms).
W_CATEGORY: Final = 1.0
W_GROUP: Final = 0.8
W_TOPICS: Final = 0.6
W_NOISE: Final = 0.9
W_USER_NOISE: Final = 0.6
# A retrained model (version > 0): every direction moved this far, a fresh share of each item's noise, and
# the whole space rotated (a new model's coordinates mean nothing in the old one's).
DRIFT: Final = 0.3
NOISE_REFRESH: Final = 0.3

# Random stream tags: each kind of draw has its own stream, so adding one never shifts another.
_SUBJECTS, _DETAILS, _SPACE, _ITEM_NOISE, _USERS, _USER_NOISE = range(6)

_TOPIC_NAMES: Final = tuple(topic for category in CATEGORIES for topic in category.topics)
_TOPICS_PER_CATEGORY: Final = len(CATEGORIES[0].topics)
_TITLE_VOCABULARY: Final = tuple(category.words + COMMON_WORDS for category in CATEGORIES)
_PAIRS: Final = len(CATEGORIES) * len(REGIONS)


# --- items --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    start: datetime
    days: int

    @property
    def seconds(self) -> int:
        return self.days * 86_400


@dataclass(frozen=True)
class _Subjects:
    """What an article is about (decides its vector): indexes into REGIONS, CATEGORIES, _TOPIC_NAMES."""

    region: Ints
    category: Ints
    topics: Ints  # (rows, MAX_TOPICS); only the first topic_count of a row are the item's
    topic_count: Ints


@dataclass(frozen=True)
class _Details:
    publisher: Ints
    second: Ints  # seconds since the window's start
    word_count: Ints
    views: Ints
    quality: Floats
    paywalled: npt.NDArray[np.bool_]
    title_words: Ints  # (rows, MAX_TITLE_WORDS) into the category's _TITLE_VOCABULARY
    title_length: Ints


def generate(
    items: int, *, seed: int = 0, start: datetime | None = None, days: int = 30
) -> Iterator[dict[str, Any]]:
    """Items n0000001.. as the news schema stores them, published within [start, start + days)."""
    _check_counts(items=items, seed=seed, days=days)
    window = _Window(_utc(start), days)
    return _items(items, seed, window)


def item_id(index: int) -> str:
    """The id of the item at 0-based position `index`."""
    return f"n{index + 1:07d}"


def user_id(index: int) -> str:
    """The id of the user at 0-based position `index`."""
    return f"u{index + 1:07d}"


def _items(items: int, seed: int, window: _Window) -> Iterator[dict[str, Any]]:
    for chunk, first, rows in _chunks(items):
        subjects = _subjects(seed, chunk)
        yield from _item_dicts(first, rows, subjects, _details(seed, chunk, subjects, window), window)


def _chunks(rows: int) -> Iterator[tuple[int, int, int]]:
    """(chunk number, first row, rows in it) covering 0..rows."""
    for chunk, first in enumerate(range(0, rows, CHUNK)):
        yield chunk, first, min(CHUNK, rows - first)


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _subjects(seed: int, chunk: int) -> _Subjects:
    """A full chunk's regions, categories and topics (full, so a shorter catalog is a prefix)."""
    rng = _rng(seed, _SUBJECTS, chunk)
    region = rng.choice(len(REGIONS), CHUNK, p=_shares([r.share for r in REGIONS]))
    category = rng.choice(len(CATEGORIES), CHUNK, p=_shares([c.share for c in CATEGORIES]))
    # Topics without repeats, the category's first ones likeliest: the top of Gumbel-perturbed log-weights.
    weights = np.log(1 / np.arange(1, _TOPICS_PER_CATEGORY + 1))
    keys = weights + rng.gumbel(size=(CHUNK, _TOPICS_PER_CATEGORY))
    local = np.argsort(-keys, axis=1)[:, :MAX_TOPICS]
    topics = category[:, None] * _TOPICS_PER_CATEGORY + local
    topic_count = 1 + rng.binomial(MAX_TOPICS - 1, 0.35, CHUNK)
    return _Subjects(region, category, topics.astype(np.int64), topic_count.astype(np.int64))


def _details(seed: int, chunk: int, subjects: _Subjects, window: _Window) -> _Details:
    rng = _rng(seed, _DETAILS, chunk)
    publisher = _publishers(rng, subjects.region)
    second = _publish_seconds(rng, subjects.region, window)
    word_count = np.clip(rng.lognormal(np.log(600), 0.55, CHUNK), 60, 20_000).astype(np.int64)
    quality = rng.beta(4.0, 2.5, CHUNK).round(3)
    views = _views(rng, quality, window.seconds - second)
    paywall = np.array([p.paywall for p in PUBLISHERS])
    paywalled = rng.random(CHUNK) < paywall[publisher]
    vocabulary = len(_TITLE_VOCABULARY[0])
    title_words = np.argsort(rng.random((CHUNK, vocabulary)), axis=1)[:, :MAX_TITLE_WORDS]
    title_length = rng.integers(3, MAX_TITLE_WORDS + 1, CHUNK)
    return _Details(
        publisher, second, word_count, views, quality, paywalled, title_words.astype(np.int64), title_length
    )


def _publishers(rng: np.random.Generator, region: Ints) -> Ints:
    """Mostly an outlet of the article's region (Zipf within it), sometimes one from anywhere."""
    table = _publisher_table()
    drawn = (rng.random(len(region))[:, None] > table[region]).sum(axis=1)
    return np.asarray(np.minimum(drawn, len(PUBLISHERS) - 1), dtype=np.int64)


@cache
def _publisher_table() -> Floats:
    """Per region, the cumulative chance of each publisher (rows: REGIONS, columns: PUBLISHERS)."""
    home = np.zeros((len(REGIONS), len(PUBLISHERS)))
    for row, region in enumerate(REGIONS):
        members = [i for i, p in enumerate(PUBLISHERS) if p.home == region.name]
        home[row, members] = _shares([1 / (rank + 1) ** 1.1 for rank in range(len(members))])
    anywhere = _shares([r.share for r in REGIONS]) @ home
    return np.cumsum((1 - FOREIGN_DESK) * home + FOREIGN_DESK * anywhere, axis=1)


def _publish_seconds(rng: np.random.Generator, region: Ints, window: _Window) -> Ints:
    """Recent days likelier (exponential decay, lighter weekends), local hours on a daily cycle."""
    day = np.arange(window.days)
    weekday = (window.start.weekday() + day) % 7
    weight = np.exp((day - window.days + 1) / max(window.days / 5, 1.0)) * np.where(
        weekday >= 5, WEEKEND_RATE, 1
    )
    drawn_day = rng.choice(window.days, CHUNK, p=weight / weight.sum())
    hour = rng.choice(24, CHUNK, p=_shares(DIURNAL))
    offset = np.array([round(r.utc_offset_hours * 3600) for r in REGIONS])[region]
    second = drawn_day * 86_400 + hour * 3600 + rng.integers(0, 3600, CHUNK) - offset
    # A local time shifted out of the window moves a day back in (offsets are under a day).
    second = np.where(second < 0, second + 86_400, second)
    second = np.where(second >= window.seconds, second - 86_400, second)
    return np.asarray(np.clip(second, 0, window.seconds - 1), dtype=np.int64)


def _views(rng: np.random.Generator, quality: Floats, age_seconds: Ints) -> Ints:
    pareto = (1 - rng.random(CHUNK)) ** (-1 / VIEWS_ALPHA)
    matured = 1 - np.exp(-age_seconds / (FRESH_HOURS * 3600))
    views = VIEWS_SCALE * pareto * matured * (0.5 + quality)
    return np.asarray(np.minimum(views, INTEGER_MAX), dtype=np.int64)


def _item_dicts(
    first: int, rows: int, subjects: _Subjects, details: _Details, window: _Window
) -> Iterator[dict[str, Any]]:
    moments = np.datetime64(window.start.replace(tzinfo=None), "s") + details.second[:rows]
    published = np.datetime_as_string(moments, unit="s").tolist()
    region, category = subjects.region[:rows].tolist(), subjects.category[:rows].tolist()
    topics, counts = subjects.topics[:rows].tolist(), subjects.topic_count[:rows].tolist()
    publisher, word_count = details.publisher[:rows].tolist(), details.word_count[:rows].tolist()
    views, quality = details.views[:rows].tolist(), details.quality[:rows].tolist()
    paywalled = details.paywalled[:rows].tolist()
    words, lengths = details.title_words[:rows].tolist(), details.title_length[:rows].tolist()
    for j in range(rows):
        item_topics = [_TOPIC_NAMES[t] for t in topics[j][: counts[j]]]
        yield {
            "item_id": item_id(first + j),
            "title": _title(item_topics[0], _TITLE_VOCABULARY[category[j]], words[j][: lengths[j]]),
            "publisher": PUBLISHERS[publisher[j]].name,
            "region": REGIONS[region[j]].name,
            "category": CATEGORIES[category[j]].name,
            "topics": item_topics,
            "published_at": published[j] + "Z",
            "word_count": word_count[j],
            "views": views[j],
            "quality": quality[j],
            "paywalled": paywalled[j],
        }


def _title(lead: str, vocabulary: tuple[str, ...], words: list[int]) -> str:
    return f"{lead.replace('-', ' ').capitalize()}: {' '.join(vocabulary[w] for w in words)}"


# --- vectors ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Space:
    """One model version's unit directions, and its rotation against version 0 (None for version 0)."""

    category: Vectors
    group: Vectors
    topic: Vectors
    rotation: Vectors | None


def item_vector_chunks(
    items: int, dim: int, *, seed: int = 0, version: int = 0, clusters: int | None = None
) -> Iterator[Vectors]:
    """item_vectors in chunks of at most CHUNK rows, in item order."""
    _check_counts(items=items, seed=seed, dim=dim, version=version, clusters=clusters)
    return _item_chunks(items, _space(seed, dim, version, clusters or _PAIRS), seed, version, clusters)


def item_vectors(
    items: int, dim: int, *, seed: int = 0, version: int = 0, clusters: int | None = None
) -> Vectors:
    """(items x dim) float32 unit vectors of generate(items, seed=seed)'s items, in the same order.

    A mixture of Gaussians: one group per (category, region) pair (`clusters` folds the pairs onto that
    many groups), plus the item's category and topics, plus noise. `version` > 0 is a retrained model.
    """
    chunks = item_vector_chunks(items, dim, seed=seed, version=version, clusters=clusters)
    out = np.empty((items, dim), dtype=np.float32)
    _fill(out, chunks)
    return out


def user_vector_chunks(
    users: int, dim: int, *, seed: int = 0, version: int = 0, clusters: int | None = None
) -> Iterator[Vectors]:
    """user_vectors in chunks of at most CHUNK rows, in user order."""
    _check_counts(users=users, seed=seed, dim=dim, version=version, clusters=clusters)
    space = _space(seed, dim, version, clusters or _PAIRS)
    return (_user_rows(space, seed, chunk, version, clusters)[:rows] for chunk, _, rows in _chunks(users))


def user_vectors(
    users: int, dim: int, *, seed: int = 0, version: int = 0, clusters: int | None = None
) -> Vectors:
    """(users x dim) float32 unit vectors, each leaning to 1-3 topic groups (popular ones likelier).

    Dot products against item_vectors of the same seed, version and clusters rank a user's groups first.
    """
    chunks = user_vector_chunks(users, dim, seed=seed, version=version, clusters=clusters)
    out = np.empty((users, dim), dtype=np.float32)
    _fill(out, chunks)
    return out


def _item_chunks(
    items: int, space: _Space, seed: int, version: int, clusters: int | None
) -> Iterator[Vectors]:
    dim = space.category.shape[1]
    for chunk, _, rows in _chunks(items):
        subjects = _subjects(seed, chunk)
        noise = _noise(seed, _ITEM_NOISE, chunk, dim, version)
        yield _item_rows(space, subjects, _group(subjects.region, subjects.category, clusters), noise)[:rows]


def _fill(out: Vectors, chunks: Iterable[Vectors]) -> None:
    row = 0
    for block in chunks:
        out[row : row + len(block)] = block
        row += len(block)


def _group(region: Ints, category: Ints, clusters: int | None) -> Ints:
    pair = category * len(REGIONS) + region
    return pair if clusters is None else pair % clusters


@lru_cache(maxsize=8)
def _space(seed: int, dim: int, version: int, groups: int) -> _Space:
    base = _rng(seed, _SPACE, dim, groups)
    category, group, topic = (
        _unit(base.standard_normal((rows, dim))) for rows in (len(CATEGORIES), groups, len(_TOPIC_NAMES))
    )
    if version == 0:
        return _Space(category, group, topic, None)
    drift = _rng(seed, _SPACE, dim, groups, version)

    def moved(directions: Vectors) -> Vectors:
        return _unit(directions + DRIFT * _unit(drift.standard_normal(directions.shape)))

    moved_category, moved_group, moved_topic = moved(category), moved(group), moved(topic)
    rotation, _ = np.linalg.qr(drift.standard_normal((dim, dim)))
    return _Space(moved_category, moved_group, moved_topic, rotation.astype(np.float32))


def _noise(seed: int, stream: int, chunk: int, dim: int, version: int) -> Vectors:
    """A chunk's noise, unit norm on average; a later version keeps most of version 0's."""
    noise = _gaussian(_rng(seed, stream, chunk), dim)
    if version == 0:
        return noise
    fresh = _gaussian(_rng(seed, stream, chunk, version), dim)
    kept = np.float32(np.sqrt(1 - NOISE_REFRESH**2))
    return kept * noise + np.float32(NOISE_REFRESH) * fresh


def _gaussian(rng: np.random.Generator, dim: int) -> Vectors:
    return rng.standard_normal((CHUNK, dim), dtype=np.float32) / np.float32(np.sqrt(dim))


def _item_rows(space: _Space, subjects: _Subjects, group: Ints, noise: Vectors) -> Vectors:
    rows = W_CATEGORY * space.category[subjects.category] + W_GROUP * space.group[group]
    share = W_TOPICS / subjects.topic_count
    for slot in range(MAX_TOPICS):
        held = (slot < subjects.topic_count) * share
        rows += held[:, None] * space.topic[subjects.topics[:, slot]]
    return _rotated(space, _unit(rows + W_NOISE * noise))


def _user_rows(space: _Space, seed: int, chunk: int, version: int, clusters: int | None) -> Vectors:
    """Each user: a weighted mix of 1-3 (category, region) pairs' directions, drawn by their item share."""
    rng = _rng(seed, _USERS, chunk)
    liked = rng.choice(_PAIRS, (CHUNK, 3), p=_pair_shares())
    kept = np.arange(3) < rng.choice(3, CHUNK, p=[0.5, 0.35, 0.15])[:, None] + 1
    weights = rng.dirichlet(np.ones(3), CHUNK) * kept
    weights /= weights.sum(axis=1, keepdims=True)
    category, region = np.divmod(liked, len(REGIONS))
    rows = np.zeros((CHUNK, space.category.shape[1]))
    for slot in range(3):
        direction = W_CATEGORY * space.category[category[:, slot]]
        direction = direction + W_GROUP * space.group[_group(region[:, slot], category[:, slot], clusters)]
        rows += weights[:, slot, None] * direction
    noise = _noise(seed, _USER_NOISE, chunk, space.category.shape[1], version)
    return _rotated(space, _unit(rows + W_USER_NOISE * noise))


def _pair_shares() -> Floats:
    """How many items each (category, region) pair holds (category and region are drawn independently)."""
    regions = _shares([r.share for r in REGIONS])
    return np.outer(_shares([c.share for c in CATEGORIES]), regions).ravel()


def _rotated(space: _Space, rows: Floats | Vectors) -> Vectors:
    out = rows.astype(np.float32)
    return out if space.rotation is None else out @ space.rotation


def _unit(rows: npt.NDArray[np.floating[Any]]) -> Vectors:
    """Rows scaled to unit length, as float32."""
    return np.asarray(rows / np.linalg.norm(rows, axis=-1, keepdims=True), dtype=np.float32)


def _shares(weights: Iterable[float]) -> Floats:
    array = np.asarray(list(weights), dtype=np.float64)
    return np.asarray(array / array.sum(), dtype=np.float64)


# --- files --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What `write` produced."""

    items: int
    users: int
    versions: int
    dim: int
    files: tuple[Path, ...]
    bytes: int
    seconds: float


def write(
    out_dir: Path,
    items: int,
    *,
    dim: int = 64,
    users: int = 10_000,
    versions: int = 2,
    seed: int = 0,
    start: datetime | None = None,
    days: int = 30,
    progress: Progress | None = None,
) -> Summary:
    """out_dir/items.jsonl, and per version vN/items.npz and vN/users.npz for `lockstep publish`."""
    _check_counts(items=items, users=users, versions=versions, seed=seed, dim=dim, days=days)
    began = time.monotonic()
    report = progress or (lambda stage, done, total: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    catalog = generate(items, seed=seed, start=start, days=days)
    files = [_write_items(out_dir / "items.jsonl", catalog, items, report)]
    for version in range(versions):
        folder = out_dir / f"v{version}"
        folder.mkdir(exist_ok=True)
        item_rows = item_vector_chunks(items, dim, seed=seed, version=version)
        user_rows = user_vector_chunks(users, dim, seed=seed, version=version)
        files.append(_write_npz(folder / "items.npz", item_id, items, dim, item_rows, report))
        files.append(_write_npz(folder / "users.npz", user_id, users, dim, user_rows, report))
    size = sum(path.stat().st_size for path in files)
    return Summary(items, users, versions, dim, tuple(files), size, time.monotonic() - began)


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` that replaces it only when the block completes.

    A reader (or a cache check) never sees a half-written file under the final name.
    """
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


def _write_items(path: Path, rows: Iterable[dict[str, Any]], total: int, report: Progress) -> Path:
    with _replacing(path) as partial, partial.open("w", encoding="utf-8") as out:
        for done, item in enumerate(rows, 1):
            out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
            if done % CHUNK == 0 or done == total:
                report(path.name, done, total)
    return path


def _write_npz(
    path: Path, name: Callable[[int], str], rows: int, dim: int, chunks: Iterable[Vectors], report: Progress
) -> Path:
    """An .npz as np.savez writes it (arrays `ids` and `vectors`), streamed a chunk at a time."""
    stage = f"{path.parent.name}/{path.name}"
    id_type = np.dtype(f"<U{len(name(max(rows - 1, 0)))}")
    id_chunks = (
        np.array([name(i) for i in range(first, first + n)], dtype=id_type) for _, first, n in _chunks(rows)
    )
    with (
        _replacing(path) as partial,
        zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
    ):
        _npy_member(archive, "ids.npy", id_type, (rows,), id_chunks, lambda done: None)
        _npy_member(
            archive, "vectors.npy", VECTOR_DTYPE, (rows, dim), chunks, lambda done: report(stage, done, rows)
        )
    return path


def _npy_member(
    archive: zipfile.ZipFile,
    name: str,
    dtype: np.dtype[Any],
    shape: tuple[int, ...],
    chunks: Iterable[npt.NDArray[Any]],
    done: Callable[[int], None],
) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    written = 0
    with archive.open(name, "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(member, header)
        for block in chunks:
            member.write(np.ascontiguousarray(block, dtype=dtype).tobytes())
            written += len(block)
            done(written)
    if written != shape[0]:
        raise RuntimeError(f"{name}: wrote {written} rows, the header says {shape[0]}")


# --- arguments ----------------------------------------------------------------------------------------


def _check_counts(**counts: int | None) -> None:
    """Refuse a negative count or seed, and a zero dim, days or clusters, naming the argument."""
    positive = {"dim", "days", "clusters"}
    for name, value in counts.items():
        if value is None:
            continue
        least = 1 if name in positive else 0
        if value < least:
            raise ValueError(f"{name}: must be at least {least}, got {value}")


def _utc(start: datetime | None) -> datetime:
    if start is None:
        return DEFAULT_START
    if start.tzinfo is None:
        raise ValueError("start: must carry a timezone (e.g. 2026-11-01T00:00:00+00:00)")
    return start.astimezone(UTC).replace(microsecond=0)
