"""The goodbooks example's loader: typed fields, normalised languages, curated tags, valid items."""

from __future__ import annotations

from pathlib import Path

from contract.items import load_schema, schema
from contract.settings import Settings
from examples.goodbooks.loader import curate_tags, goodbooks_items, normalise_language, parse_year
from indexer.catalog import Item

SCHEMA = Path(__file__).resolve().parents[2] / "examples" / "goodbooks" / "schema.yaml"


def test_languages_fold_english_variants() -> None:
    assert [normalise_language(c) for c in ("eng", "en-US", "en-GB", "en", "fre", "", "EN-CA")] == [
        "en",
        "en",
        "en",
        "en",
        "fre",
        None,
        "en",
    ]


def test_years_parse_float_strings_empty_and_negative() -> None:
    assert parse_year("2008.0") == 2008
    assert parse_year("-1750.0") == -1750
    assert parse_year("") is None


def test_tags_drop_shelves_and_fold_aliases() -> None:
    shelves = [
        "to-read",
        "favorites",
        "sci-fi",
        "owned",
        "science-fiction",
        "ya",
        "currently-reading",
        "fantasy",
    ]
    assert curate_tags(shelves) == ("science-fiction", "young-adult", "fantasy")


def test_goodbooks_catalog_is_complete_and_typed() -> None:
    items = goodbooks_items(Settings().data_dir)
    assert len(items) == 10_000
    assert len({i["item_id"] for i in items}) == 10_000
    first = items[0]
    assert first["item_id"] == "1" and first["title"].startswith("The Hunger Games")
    assert first["authors"] == ["Suzanne Collins"] and first["year"] == 2008 and first["language"] == "en"
    rowling = items[1]
    assert rowling["authors"] == ["J.K. Rowling", "Mary GrandPré"]
    tagged = [i for i in items if i["tags"]]
    assert len(tagged) >= 1000  # book_tags covers 1,199 books
    banned = {"to-read", "favorites", "currently-reading", "owned", "books-i-own", "kindle"}
    assert not any(set(i["tags"]) & banned for i in items)
    assert {i["language"] for i in items} >= {"en", None}
    assert min(i["year"] for i in items if i["year"] is not None) < 0
    goodbooks = load_schema(SCHEMA)
    assert all(goodbooks.validate_item(i) == i for i in items)  # every book as the schema keeps it


def test_document_round_trips_and_has_contract_fields(tmp_path: Path) -> None:
    item = Item.from_document(goodbooks_items(Settings().data_dir, limit=3)[2])
    doc = item.document()
    assert set(doc) == set(schema().kinds())
    assert Item.from_document(doc) == item
