"""The catalogs the demo runs on (`lockstep demo --example NAME`): goodbooks, trained here, by default; the
synthetic news catalog, whose versions come as vector files, partitioned by region.

An Example says everything the flow needs to know about its catalog: its item schema, its own key/index prefix
(a catalog refuses another schema, so two examples' data never mix), its types and how each is indexed, the
`lockstep` commands that load the catalog, publish the first versions and publish the next one, who the
load generator's users are, and the filters and partitions its requests send.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from contract.indexing import Mode
from contract.profiles import Interaction, Profile
from contract.settings import Settings
from contract.versions import Frame
from demo.load import FILTERS
from demo.plan import FIRST_HISTORY, TYPE_MODES, frame_arg, next_frame
from examples.news import synth
from examples.news.world import REGIONS

EXAMPLES_DIR: Final = Path(synth.__file__).resolve().parents[1]

Commands = list[list[str]]  # `lockstep` subcommands (argv after `lockstep`), run in order


@dataclass(frozen=True)
class Example:
    """One catalog the demo can run on."""

    name: str
    schema: Path
    types: Mapping[str, Mode]
    # Commands that put the catalog into the store: (state dir, --limit) -> commands.
    catalog: Callable[[Path, int | None], Commands]
    # Commands that publish a first version of the types given (those without one).
    first_versions: Callable[[Path, int | None, Sequence[str]], Commands]
    # The rollout's next version: its frame after every type's newest frame end.
    next_frame: Callable[[Mapping[str, datetime | None]], Frame]
    # Commands that publish it: (state dir, --limit, frame, versions published so far per type).
    next_version: Callable[[Path, int | None, Frame, Mapping[str, int]], Commands]
    verb: str  # what next_version does, for the live panel ("training", "publishing")
    filters: tuple[dict[str, Any] | None, ...]
    partitions: tuple[str, ...] = ()  # values of the schema's partition field requests may name
    # The load generator's users: None means the profiles stored in Redis (goodbooks' `profiles load`).
    users: Callable[[Path, int | None], list[Profile]] | None = None
    held_out_ratings: bool = False  # the quality step needs ratings the first versions never saw
    prefix: str | None = None  # key and index prefix stem (None: the configured ones)
    ports: tuple[int, int] | None = None  # orchestrator, serving (None: the configured URLs)
    detail: str = "authors"  # the item field shown beside the title in the recommendation tables
    history: str = "books in their profile"  # what a user's interactions are, in the tables

    def settings(self, base: Settings, environ: Mapping[str, str]) -> Settings:
        """`base` with this example's schema, prefixes and (unless set in `environ`) service URLs."""
        update: dict[str, Any] = {"catalog_schema": self.schema}
        if self.prefix is not None:
            update["key_prefix"] = own_prefix(self.prefix, base.key_prefix)
            update["index_prefix"] = own_prefix(self.prefix, base.index_prefix)
        if self.ports is not None:
            orchestrator, serving = self.ports
            if "LOCKSTEP_ORCHESTRATOR_URL" not in environ:
                update["orchestrator_url"] = f"http://127.0.0.1:{orchestrator}"
            if "LOCKSTEP_SERVING_URL" not in environ:
                update["serving_url"] = f"http://127.0.0.1:{serving}"
        return base.model_copy(update=update)

    def env(self, settings: Settings) -> dict[str, str]:
        """What every command and process the demo starts gets, so they all see this example's data."""
        return {
            "LOCKSTEP_CATALOG_SCHEMA": str(self.schema),
            "LOCKSTEP_KEY_PREFIX": settings.key_prefix,
            "LOCKSTEP_INDEX_PREFIX": settings.index_prefix,
        }


def own_prefix(stem: str, configured: str) -> str:
    """`stem-configured` (within the 31 characters a prefix may have): never a prefix of the configured one's
    names, so patterns like `lockstep*` never take in another example's indexes."""
    return f"{stem}-{configured}"[:31].rstrip("-")


# --- goodbooks: books and ratings, three types trained here -----------------------------------------------


def _goodbooks_catalog(root: Path, limit: int | None) -> Commands:
    return [["catalog", "goodbooks", *([] if limit is None else ["--limit", str(limit)])]]


def _types_args(names: Sequence[str]) -> list[str]:
    return [arg for name in names for arg in ("--type", name)]


def _goodbooks_first(root: Path, limit: int | None, missing: Sequence[str]) -> Commands:
    return [["train", "--history", str(FIRST_HISTORY), *_types_args(missing)]]


def _goodbooks_next(root: Path, limit: int | None, frame: Frame, published: Mapping[str, int]) -> Commands:
    return [["train", "--frame", frame_arg(frame), *_types_args(list(TYPE_MODES))]]


GOODBOOKS: Final = Example(
    name="goodbooks",
    schema=EXAMPLES_DIR / "goodbooks" / "schema.yaml",
    types=TYPE_MODES,
    catalog=_goodbooks_catalog,
    first_versions=_goodbooks_first,
    next_frame=next_frame,
    next_version=_goodbooks_next,
    verb="training",
    filters=FILTERS,
    held_out_ratings=True,
)


# --- news: a synthetic catalog partitioned by region, versions as vector files ----------------------------

NEWS_ITEMS: Final = 20_000
NEWS_DIM: Final = 32
NEWS_USERS: Final = 2_000
NEWS_VERSIONS: Final = 2  # v0 is published first, the rollouts alternate v1, v0, ...
NEWS_SEED: Final = 0
NEWS_FIRST: Final = Frame(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
NEWS_STEP: Final = timedelta(days=7)  # each next version's frame moves on a week
NEWS_TYPES: Final[dict[str, Mode]] = {
    "news-d32": Mode.SHADOW,
    "news-live-d32": Mode.INCREMENTAL,
}
RECENT_READS: Final = 5  # articles a user's attribute requests send as their recent reads

# Filters on every field kind of examples/news/schema.yaml; each keeps many articles in play.
NEWS_FILTERS: Final[tuple[dict[str, Any] | None, ...]] = (
    None,
    None,
    {"op": "in", "field": "category", "values": ["politics", "business", "world"]},
    {"op": "range", "field": "published_at", "gte": "2026-11-15"},
    {"op": "in", "field": "paywalled", "values": [False]},
    {"op": "range", "field": "views", "gte": 20, "lt": 100_000},
    {"op": "not", "child": {"op": "in", "field": "region", "values": ["us"]}},
    {
        "op": "and",
        "children": [
            {"op": "in", "field": "category", "values": ["sport", "technology"]},
            {"op": "range", "field": "quality", "gte": 0.4},
            {"op": "exists", "field": "topics"},
        ],
    },
)


def news_items(limit: int | None) -> int:
    """Articles in the news demo's catalog: NEWS_ITEMS, or --limit."""
    return NEWS_ITEMS if limit is None else limit


def news_dir(root: Path, limit: int | None) -> Path:
    """Where the synthetic catalog of that size is written (and found again by the next run)."""
    return root / "news" / f"items-{news_items(limit)}"


def _news_files(folder: Path) -> list[Path]:
    vectors = [folder / f"v{v}" / f"{kind}.npz" for v in range(NEWS_VERSIONS) for kind in ("items", "users")]
    return [folder / "items.jsonl", *vectors]


def _news_catalog(root: Path, limit: int | None) -> Commands:
    folder = news_dir(root, limit)
    commands: Commands = []
    if not all(path.is_file() for path in _news_files(folder)):
        commands.append(
            [
                "catalog",
                "synth",
                "--items",
                str(news_items(limit)),
                "--out",
                str(folder),
                "--dim",
                str(NEWS_DIM),
                "--users",
                str(NEWS_USERS),
                "--versions",
                str(NEWS_VERSIONS),
                "--seed",
                str(NEWS_SEED),
            ]
        )
    commands.append(["catalog", "load", str(folder / "items.jsonl")])
    return commands


def _publish(folder: Path, name: str, frame: Frame, version: int) -> list[str]:
    files = folder / f"v{version}"
    return [
        "publish",
        *("--type", name, "--frame", frame_arg(frame)),
        *("--users", str(files / "users.npz"), "--items", str(files / "items.npz")),
    ]


def _news_first(root: Path, limit: int | None, missing: Sequence[str]) -> Commands:
    folder = news_dir(root, limit)
    commands: Commands = []
    for name in missing:
        commands.append(
            [
                "types",
                "register",
                *("--name", name, "--family", "direct-direct"),
                *("--dim", str(NEWS_DIM), "--similarity", "dot"),
            ]
        )
        commands.append(_publish(folder, name, NEWS_FIRST, 0))
    return commands


def news_next_frame(latest_ends: Mapping[str, datetime | None]) -> Frame:
    """A frame a week on from the newest one (the first frame when none is published)."""
    newest = max((end for end in latest_ends.values() if end is not None), default=None)
    if newest is None:
        return NEWS_FIRST
    return Frame(newest - (NEWS_FIRST.end - NEWS_FIRST.start) + NEWS_STEP, newest + NEWS_STEP)


def _news_next(root: Path, limit: int | None, frame: Frame, published: Mapping[str, int]) -> Commands:
    """Every type gets the vector files of the model after its latest one (v1 after v0, then v0 again)."""
    folder = news_dir(root, limit)
    return [_publish(folder, name, frame, published.get(name, 0) % NEWS_VERSIONS) for name in NEWS_TYPES]


def news_users(root: Path, limit: int | None) -> list[Profile]:
    """The synthetic users (each has a vector in every version), each with a few recent reads drawn from
    the catalog for the requests that send attributes instead of a user id."""
    rng = random.Random(NEWS_SEED)
    items = news_items(limit)
    return [
        Profile(
            user_id=synth.user_id(n),
            interactions=tuple(
                Interaction(item_id=synth.item_id(rng.randrange(items)), weight=1.0)
                for _ in range(RECENT_READS)
            ),
        )
        for n in range(NEWS_USERS)
    ]


NEWS: Final = Example(
    name="news",
    schema=EXAMPLES_DIR / "news" / "schema.yaml",
    types=NEWS_TYPES,
    catalog=_news_catalog,
    first_versions=_news_first,
    next_frame=news_next_frame,
    next_version=_news_next,
    verb="publishing",
    filters=NEWS_FILTERS,
    partitions=tuple(region.name for region in REGIONS),
    users=news_users,
    prefix="news",
    ports=(8703, 8704),
    detail="region",
    history="recent reads, sent as attributes by some requests",
)

EXAMPLES: Final[dict[str, Example]] = {example.name: example for example in (GOODBOOKS, NEWS)}
