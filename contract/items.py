"""Item metadata fields: the index template types them, the indexer fills them, filters may name them."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class FieldKind(StrEnum):
    """What kind of value a metadata field holds (decides which filters apply)."""

    KEYWORD = "keyword"  # exact strings; `in`, `exists`
    KEYWORDS = "keywords"  # list of exact strings; `in` matches any; `exists`
    INTEGER = "integer"  # `range`, `in`, `exists`
    FLOAT = "float"  # `range`, `exists`
    TEXT = "text"  # full text, returned but not filterable


ITEM_ID: Final = "item_id"

ITEM_FIELDS: Final[dict[str, FieldKind]] = {
    ITEM_ID: FieldKind.KEYWORD,
    "title": FieldKind.TEXT,
    "authors": FieldKind.KEYWORDS,
    "year": FieldKind.INTEGER,
    "language": FieldKind.KEYWORD,
    "average_rating": FieldKind.FLOAT,
    "ratings_count": FieldKind.INTEGER,
    "tags": FieldKind.KEYWORDS,
}

FILTERABLE_FIELDS: Final = frozenset(name for name, kind in ITEM_FIELDS.items() if kind is not FieldKind.TEXT)
