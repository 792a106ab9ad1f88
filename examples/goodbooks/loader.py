"""The goodbooks example's loader: its CSVs as items of its schema.yaml, tags curated to genre-like names."""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from contract.items import ITEM_ID

# Goodreads shelves are noisy; only these genre-like names become filterable tags. Aliases fold the
# spellings users shelve under onto one name, so a filter on "science-fiction" also finds "sci-fi".
TAG_ALIASES: Final[dict[str, str]] = {
    "sci-fi": "science-fiction",
    "scifi": "science-fiction",
    "ya": "young-adult",
    "nonfiction": "non-fiction",
    "non-fic": "non-fiction",
    "classic": "classics",
    "mysteries": "mystery",
    "thrillers": "thriller",
    "humour": "humor",
    "funny": "humor",
    "memoirs": "memoir",
    "biographies": "biography",
    "bio": "biography",
    "autobiography": "biography",
    "historical": "historical-fiction",
    "fiction-historical": "historical-fiction",
    "chicklit": "chick-lit",
    "chic-lit": "chick-lit",
    "graphic-novels": "graphic-novel",
    "comics": "graphic-novel",
    "dystopia": "dystopian",
    "horror-fiction": "horror",
    "kids": "childrens",
    "children": "childrens",
    "children-s": "childrens",
    "children-s-books": "childrens",
}
GENRE_TAGS: Final[frozenset[str]] = frozenset(
    {
        "fiction",
        "non-fiction",
        "fantasy",
        "science-fiction",
        "young-adult",
        "romance",
        "mystery",
        "thriller",
        "crime",
        "suspense",
        "horror",
        "classics",
        "historical-fiction",
        "history",
        "biography",
        "memoir",
        "contemporary",
        "literary-fiction",
        "literature",
        "humor",
        "poetry",
        "philosophy",
        "psychology",
        "religion",
        "science",
        "politics",
        "travel",
        "self-help",
        "business",
        "economics",
        "adventure",
        "dystopian",
        "paranormal",
        "graphic-novel",
        "childrens",
        "chick-lit",
        "war",
        "drama",
        "essays",
        "short-stories",
        "coming-of-age",
        "feminism",
        "mythology",
        "vampires",
        "magic",
        "urban-fantasy",
        "epic-fantasy",
        "christian",
        "spirituality",
        "true-crime",
        "plays",
        "western",
        "erotica",
        "lgbt",
        "art",
        "cooking",
        "sports",
        "music",
    }
)
MAX_TAGS: Final = 12


def normalise_language(code: str) -> str | None:
    """'en-US', 'eng', 'en-GB' -> 'en'; other ISO 639-2 codes kept; empty -> None."""
    code = code.strip().lower()
    if not code:
        return None
    if code == "eng" or code == "en" or code.startswith("en-"):
        return "en"
    return code.split("-")[0]


def parse_year(text: str) -> int | None:
    """'2008.0' -> 2008, '-1750.0' -> -1750, '' -> None."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(float(text))
    except ValueError:
        return None


def curate_tags(names: Iterable[str]) -> tuple[str, ...]:
    """Genre-like tag names in the given (most shelved first) order, aliases folded, no duplicates."""
    seen: dict[str, None] = {}
    for name in names:
        canonical = TAG_ALIASES.get(name, name)
        if canonical in GENRE_TAGS:
            seen.setdefault(canonical, None)
        if len(seen) >= MAX_TAGS:
            break
    return tuple(seen)


def _rows(path: Path) -> Iterable[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _float(text: str) -> float | None:
    try:
        return float(text) if text.strip() else None
    except ValueError:
        return None


def goodbooks_items(data_dir: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Every book of goodbooks (or the first `limit` by book_id) as item documents, sorted by book_id."""
    books = sorted(_rows(data_dir / "books.csv.gz"), key=lambda row: int(row["book_id"]))
    if limit is not None:
        books = books[:limit]
    tag_names = {row["tag_id"]: row["tag_name"] for row in _rows(data_dir / "tags.csv.gz")}
    wanted = {row["goodreads_book_id"] for row in books}
    shelves: dict[str, list[str]] = defaultdict(list)
    # book_tags rows are sorted by count descending within a book, so order means "most shelved first".
    for row in _rows(data_dir / "book_tags.csv.gz"):
        if row["goodreads_book_id"] in wanted:
            shelves[row["goodreads_book_id"]].append(tag_names.get(row["tag_id"], ""))
    items = []
    for row in books:
        ratings = _float(row["ratings_count"])
        items.append(
            {
                ITEM_ID: row["book_id"],
                "title": row["title"] or row["original_title"],
                "authors": [a.strip() for a in row["authors"].split(",") if a.strip()],
                "year": parse_year(row["original_publication_year"]),
                "language": normalise_language(row["language_code"]),
                "average_rating": _float(row["average_rating"]),
                "ratings_count": int(ratings) if ratings is not None else None,
                "tags": list(curate_tags(shelves.get(row["goodreads_book_id"], []))),
            }
        )
    return items
