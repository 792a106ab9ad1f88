"""Loading the shared goodbooks-10k subset: ratings in row order, books with authors, curated tags."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow.csv as pacsv

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

# Shelves that say how a reader holds a book, not what the book is. Applied on top of the
# frequency rule below, which catches the generic ones (to-read, favorites, owned, fiction, ...).
_SHELF_NOISE = re.compile(
    r"(^|-)(to-?read|currently|reading|read-in|re-?read|favou?rites?|fav|faves|own|owned|i-own|"
    r"books-i-own|my-|to-buy|buy|wish|library|kindle|e-?books?|nook|audio|audible|default|"
    r"book-?club|abandoned|dnf|did-not-finish|didn-t-finish|borrowed|maybe|have|shelfari|"
    r"goodreads|giveaway|tbr|finish|unfinished|unread|bookshelf|group|paperback|hardcover|calibre|shelf|"
    r"listened|review|on-hold|gave-up|recommend|loan|signed|gift|books?$|\d{4})"
)
TAG_MAX_SHARE = 0.5  # a tag on more than half of the tagged books separates nothing
TAG_MIN_BOOKS = 3  # a tag on fewer books cannot be learned from the ratings


@dataclass(frozen=True)
class Ratings:
    """Ratings as parallel arrays in file row order (approximately chronological per user)."""

    user_ids: Ints
    book_ids: Ints
    ratings: Ints

    def __len__(self) -> int:
        return len(self.user_ids)

    def take(self, mask_or_index: npt.NDArray[np.bool_] | Ints) -> Ratings:
        """The rows selected by a boolean mask or an index array, order kept."""
        return Ratings(
            self.user_ids[mask_or_index], self.book_ids[mask_or_index], self.ratings[mask_or_index]
        )


@dataclass(frozen=True)
class BookAttributes:
    """Which attributes ('tag:<tag_id>', 'author:<slug>') each book has, with raw weights."""

    book_ids: Ints  # row i of the entries below refers to book_ids[i]
    attribute_ids: tuple[str, ...]
    rows: Ints  # index into book_ids
    columns: Ints  # index into attribute_ids
    weights: Floats


@dataclass(frozen=True)
class Goodbooks:
    """The loaded data set."""

    ratings: Ratings
    book_ids: Ints  # all 10,000 books
    authors: dict[int, tuple[str, ...]]  # book_id -> author names, in listed order
    book_tags: dict[int, tuple[tuple[int, int], ...]]  # book_id -> ((tag_id, count), ...)
    tag_names: dict[int, str]


def load_goodbooks(directory: Path) -> Goodbooks:
    """Read ratings, books, book_tags and tags (gzipped CSVs) from `directory`."""
    missing = [
        name
        for name in ("ratings.csv.gz", "books.csv.gz", "book_tags.csv.gz", "tags.csv.gz")
        if not (directory / name).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"goodbooks data dir {directory} lacks {', '.join(missing)} (set LOCKSTEP_DATA_DIR)"
        )
    ratings = pacsv.read_csv(directory / "ratings.csv.gz")
    books = pacsv.read_csv(
        directory / "books.csv.gz",
        convert_options=pacsv.ConvertOptions(include_columns=["book_id", "goodreads_book_id", "authors"]),
    )
    book_tags = pacsv.read_csv(directory / "book_tags.csv.gz")
    tags = pacsv.read_csv(directory / "tags.csv.gz")

    book_ids = np.asarray(books["book_id"].to_numpy(), dtype=np.int64)
    by_goodreads = dict(zip(books["goodreads_book_id"].to_pylist(), book_ids.tolist(), strict=True))
    authors = {
        book: tuple(name.strip() for name in (text or "").split(",") if name.strip())
        for book, text in zip(book_ids.tolist(), books["authors"].to_pylist(), strict=True)
    }
    tagged: dict[int, list[tuple[int, int]]] = {}
    for goodreads, tag, count in zip(
        book_tags["goodreads_book_id"].to_pylist(),
        book_tags["tag_id"].to_pylist(),
        book_tags["count"].to_pylist(),
        strict=True,
    ):
        book = by_goodreads.get(goodreads)
        # Goodreads lets a shelf count go negative after removals; such rows say nothing.
        if book is not None and count > 0:
            tagged.setdefault(book, []).append((tag, count))
    return Goodbooks(
        ratings=Ratings(
            np.asarray(ratings["user_id"].to_numpy(), dtype=np.int64),
            np.asarray(ratings["book_id"].to_numpy(), dtype=np.int64),
            np.asarray(ratings["rating"].to_numpy(), dtype=np.int64),
        ),
        book_ids=book_ids,
        authors=authors,
        book_tags={book: tuple(rows) for book, rows in tagged.items()},
        tag_names=dict(zip(tags["tag_id"].to_pylist(), tags["tag_name"].to_pylist(), strict=True)),
    )


def author_slug(name: str) -> str:
    """An author name as an attribute id part: lowercase ASCII letters/digits joined by '-'."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:100] or "unknown"


def curated_tags(data: Goodbooks) -> frozenset[int]:
    """Tag ids that describe books: not reader shelves, not on most books, on a few books at least."""
    shares = Counter(tag for rows in data.book_tags.values() for tag, _ in rows)
    tagged_books = max(len(data.book_tags), 1)
    return frozenset(
        tag
        for tag, books in shares.items()
        if TAG_MIN_BOOKS <= books <= TAG_MAX_SHARE * tagged_books
        and not _SHELF_NOISE.search(data.tag_names.get(tag, ""))
    )


def book_attributes(data: Goodbooks, *, tag_share: float = 0.5) -> BookAttributes:
    """Each book's curated tags and authors as L1-normalised weights.

    Within a book, tags weigh log(1 + shelf count) and share `tag_share` of the mass; authors share
    the rest equally (all of it when a book has no curated tag). So an item vector, the weighted sum
    of its attribute vectors, is an average and has no scale bias toward heavily tagged books.
    """
    keep = curated_tags(data)
    ids: dict[str, int] = {}
    rows: list[int] = []
    columns: list[int] = []
    weights: list[float] = []
    books = data.book_ids.tolist()
    for row, book in enumerate(books):
        tag_rows = [(tag, count) for tag, count in data.book_tags.get(book, ()) if tag in keep]
        slugs = sorted({author_slug(name) for name in data.authors.get(book, ())})
        tag_mass = tag_share if tag_rows and slugs else (1.0 if tag_rows else 0.0)
        raw = np.log1p(np.array([count for _, count in tag_rows], dtype=np.float64))
        entries = [
            (f"tag:{tag}", tag_mass * w / raw.sum()) for (tag, _), w in zip(tag_rows, raw, strict=True)
        ]
        entries += [(f"author:{slug}", (1.0 - tag_mass) / len(slugs)) for slug in slugs]
        for attribute, weight in entries:
            rows.append(row)
            columns.append(ids.setdefault(attribute, len(ids)))
            weights.append(weight)
    return BookAttributes(
        book_ids=data.book_ids,
        attribute_ids=tuple(ids),
        rows=np.asarray(rows, dtype=np.int64),
        columns=np.asarray(columns, dtype=np.int64),
        weights=np.asarray(weights, dtype=np.float64),
    )
