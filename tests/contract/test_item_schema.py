"""The declared item schema: bad schema files and bad items are refused with a message naming them."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.items import ItemError, ItemSchema, SchemaError, load_schema, parse_date

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NEWS = load_schema(EXAMPLES / "news" / "schema.yaml")
GOOD = {
    "item_id": "n1",
    "title": "Rain in the north",
    "publisher": "Daily",
    "region": "eu",
    "category": "weather",
    "topics": ["rain", "storms"],
    "published_at": "2026-12-03T10:00:00+01:00",
    "word_count": 420,
    "views": 17,
    "quality": 0.5,
    "paywalled": False,
}


def _schema_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    return path


def test_both_examples_load() -> None:
    goodbooks = load_schema(EXAMPLES / "goodbooks" / "schema.yaml")
    assert goodbooks.popularity == "ratings_count" and goodbooks.content == ("tags", "authors")
    assert NEWS.partition == "region" and "published_at" in NEWS.filterable()
    assert "title" not in NEWS.filterable() and "item_id" in NEWS.filterable()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("name: x\nfields: {a: {type: money}}\n", "fields.a.type"),
        ("name: x\nfields: {item_id: {type: keyword}}\n", "'item_id' is reserved"),
        ("name: x\nfields: {Bad-Name: {type: keyword}}\n", "field name 'Bad-Name'"),
        ("name: x\nfields: {t: {type: text, filterable: true}}\n", "text field cannot be filterable"),
        (
            "name: x\nfields: {a: {type: keyword}}\npopularity: a\n",
            "popularity field 'a' must be float/integer",
        ),
        ("name: x\nfields: {a: {type: keyword}}\npartition: b\n", "partition names 'b'"),
        ("name: x\nfields: {a: {type: keyword}}\npartition: a\n", "must be required and filterable"),
        ("name: x\nfields: {a: {type: integer, max_length: 3}}\n", "max_length applies to"),
        ("name: x\nfields: {a: {type: keyword, colour: red}}\n", "fields.a.colour"),
        ("name: x\nfields: {}\n", "fields"),
        ("fields: {a: {type: keyword}}\n", "name"),
        ("name: x\nfields: [a\n", "cannot read"),
    ],
)
def test_bad_schemas_are_refused_naming_the_file_and_the_field(tmp_path: Path, text: str, named: str) -> None:
    path = _schema_file(tmp_path, text)
    with pytest.raises(SchemaError) as refused:
        load_schema(path)
    assert str(path) in str(refused.value) and named in str(refused.value)


def test_a_good_item_is_kept_with_dates_in_utc() -> None:
    stored = NEWS.validate_item(GOOD)
    assert stored["published_at"] == "2026-12-03T09:00:00Z"
    assert stored["quality"] == 0.5 and stored["topics"] == ["rain", "storms"]
    assert (
        NEWS.validate_item({**GOOD, "published_at": "2026-12-03"})["published_at"] == "2026-12-03T00:00:00Z"
    )


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"item_id": None}, "item_id", "must be a string"),
        ({"item_id": "a/b"}, "item_id", "must be a string matching"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({"views": "17"}, "views", "must be an integer"),
        ({"views": True}, "views", "must be an integer"),
        ({"views": 2**31}, "views", "must be within"),
        ({"quality": "high"}, "quality", "must be a number"),
        ({"quality": 10**400}, "quality", "must be a finite number"),
        ({"paywalled": 1}, "paywalled", "must be true or false"),
        ({"topics": "rain"}, "topics", "must be a list of strings"),
        ({"topics": ["x"] * 101}, "topics", "more than the limit of 100"),
        ({"publisher": 5}, "publisher", "must be a string"),
        ({"publisher": None}, "publisher", "is required"),
        ({"title": "x" * 10_000_000}, "title", "more than its limit of 512"),
        ({"published_at": "03/12/2026"}, "published_at", "ISO 8601"),
        ({"published_at": "2026-12-03T10:00:00"}, "published_at", "with an offset"),
        ({"published_at": "2026-13-03"}, "published_at", "ISO 8601"),
    ],
)
def test_bad_items_are_refused_naming_the_item_and_the_field(change: dict, field: str, problem: str) -> None:
    with pytest.raises(ItemError) as refused:
        NEWS.validate_item({**GOOD, **change})
    assert refused.value.field == field
    assert f"field {field!r}" in str(refused.value) and problem in str(refused.value)
    if field != "item_id":
        assert "item 'n1'" in str(refused.value)


def test_a_missing_required_field_is_named() -> None:
    item = {k: v for k, v in GOOD.items() if k != "region"}
    with pytest.raises(ItemError, match="field 'region': is required"):
        NEWS.validate_item(item)
    # A patch may leave it out, but not remove it.
    assert NEWS.validate_item({"item_id": "n1", "views": 3}, partial=True) == {"item_id": "n1", "views": 3}
    with pytest.raises(ItemError, match="cannot be null"):
        NEWS.validate_item({"item_id": "n1", "region": None}, partial=True)


def test_the_fingerprint_follows_fields_not_descriptions() -> None:
    described = NEWS.model_copy(
        update={
            "fields": {**NEWS.fields, "views": NEWS.fields["views"].model_copy(update={"description": "x"})}
        }
    )
    assert described.fingerprint() == NEWS.fingerprint()
    fewer = ItemSchema.model_validate(
        {"name": "news", "fields": {n: s.model_dump() for n, s in NEWS.fields.items() if n != "word_count"}}
    )
    assert fewer.fingerprint() != NEWS.fingerprint()


def test_dates_parse_to_one_utc_form() -> None:
    assert parse_date("2026-12-03T23:30:00-02:00") == "2026-12-04T01:30:00Z"
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_date(20261203)
