"""Catalog files: CSV, JSON lines and Parquet (plain and gzipped) read back as the items written, every
refusal naming the file, the line or row, the item and the field, and reading streamed and bounded."""

from __future__ import annotations

import csv
import gzip
import json
import tracemalloc
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from catalog.files import (
    LINE_LIMIT,
    CatalogFileError,
    RawItem,
    file_format,
    read_items,
    validated,
)
from contract.items import ItemError, ItemSchema, load_schema

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GOODBOOKS = load_schema(EXAMPLES / "goodbooks" / "schema.yaml")
NEWS = load_schema(EXAMPLES / "news" / "schema.yaml")
LONG_TEXT = ItemSchema.model_validate(
    {
        "name": "long",
        "fields": {"body": {"type": "text", "max_length": 1 << 20}, "tags": {"type": "keywords"}},
    }
)

BOOKS: list[dict[str, Any]] = [
    {
        "item_id": "1",
        "title": 'The Hunger Games, "Book 1"\nfirst line break',
        "authors": ["Suzanne Collins"],
        "year": 2008,
        "language": "en",
        "average_rating": 4.34,
        "ratings_count": 4780653,
        "tags": ["young-adult", "dystopia", "science-fiction"],
    },
    {
        "item_id": "2",
        "title": "Harry Potter à l'école des sorciers",
        "authors": ["J.K. Rowling", "Mary GrandPré"],
        "year": -1750,
        "language": None,
        "average_rating": 4.0,
        "ratings_count": 0,
        "tags": None,
    },
    {
        "item_id": "3",
        "title": "Untitled",
        "authors": ["Anonymous"],
        "year": None,
        "language": "fre",
        "average_rating": None,
        "ratings_count": None,
        "tags": ["classics"],
    },
]
NEWS_ITEMS: list[dict[str, Any]] = [
    {
        "item_id": "n-1",
        "title": "Markets rally | again",
        "publisher": "daily-post",
        "region": "eu",
        "category": "business",
        "topics": ["markets", "stocks"],
        "published_at": "2026-11-30T08:15:00+01:00",
        "word_count": 812,
        "views": 120_000,
        "quality": 0.75,
        "paywalled": True,
    },
    {
        "item_id": "n-2",
        "title": None,
        "publisher": "wire",
        "region": "us",
        "category": "sport",
        "topics": None,
        "published_at": "2026-12-01T00:00:00Z",
        "word_count": None,
        "views": 3,
        "quality": None,
        "paywalled": False,
    },
]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "|".join(value)
    return str(value)


def write_csv(path: Path, items: list[dict[str, Any]]) -> None:
    columns = list(items[0])
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows([_cell(item[c]) for c in columns] for item in items)


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item) + "\n")


def write_parquet(path: Path, items: list[dict[str, Any]]) -> None:
    rows = [
        {
            k: datetime.fromisoformat(v) if k == "published_at" and v is not None else v
            for k, v in item.items()
        }
        for item in items
    ]
    pq.write_table(pa.Table.from_pylist(rows), path)


WRITERS: dict[str, Callable[[Path, list[dict[str, Any]]], None]] = {
    "items.csv": write_csv,
    "items.csv.gz": write_csv,
    "items.jsonl": write_jsonl,
    "items.jsonl.gz": write_jsonl,
    "items.ndjson": write_jsonl,
    "items.parquet": write_parquet,
}


def read_back(path: Path, item_schema: ItemSchema) -> list[dict[str, Any]]:
    return list(validated(read_items(path, item_schema), item_schema))


def refusal(path: Path, item_schema: ItemSchema, **kwargs: Any) -> str:
    with pytest.raises(CatalogFileError) as caught:
        list(validated(read_items(path, item_schema, **kwargs), item_schema))
    return str(caught.value)


@pytest.mark.parametrize("name", sorted(WRITERS))
@pytest.mark.parametrize(
    ("item_schema", "items"), [(GOODBOOKS, BOOKS), (NEWS, NEWS_ITEMS)], ids=["books", "news"]
)
def test_each_format_reads_back_the_items_written(
    tmp_path: Path, name: str, item_schema: ItemSchema, items: list[dict[str, Any]]
) -> None:
    path = tmp_path / name
    WRITERS[name](path, items)
    assert read_back(path, item_schema) == [item_schema.validate_item(item) for item in items]


def test_each_item_says_where_it_was_read(tmp_path: Path) -> None:
    write_csv(tmp_path / "items.csv", BOOKS)
    write_parquet(tmp_path / "items.parquet", BOOKS)
    # The first book's title spans two lines, so the second book starts on line 4.
    assert [r.where for r in read_items(tmp_path / "items.csv", GOODBOOKS)] == [
        f"{tmp_path / 'items.csv'} line {n}" for n in (2, 4, 5)
    ]
    assert [r.where for r in read_items(tmp_path / "items.parquet", GOODBOOKS)] == [
        f"{tmp_path / 'items.parquet'} row {n}" for n in (1, 2, 3)
    ]


def test_csv_cells_take_their_fields_types(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text(
        "item_id,publisher,region,category,topics,published_at,word_count,quality,paywalled,views\n"
        "a,p,eu,c, x | y||z ,2026-12-03, +12 ,1e-1,TRUE,-0\n"
        "b,p,eu,c,|,2026-12-03T10:00:00+02:00,,.5,0,\n",
        encoding="utf-8",
    )
    docs = [raw.doc for raw in read_items(path, NEWS)]
    assert docs[0] == {
        "item_id": "a",
        "publisher": "p",
        "region": "eu",
        "category": "c",
        "topics": ["x", "y", "z"],
        "published_at": "2026-12-03",
        "word_count": 12,
        "quality": 0.1,
        "paywalled": True,
        "views": 0,
    }
    assert docs[1]["topics"] == [] and docs[1]["word_count"] is None and docs[1]["views"] is None
    assert docs[1]["quality"] == 0.5 and docs[1]["paywalled"] is False
    assert read_back(path, NEWS)[1]["published_at"] == "2026-12-03T08:00:00Z"


@pytest.mark.parametrize(
    ("field", "cell", "problem"),
    [
        ("year", "2008.0", "must be an integer, got '2008.0'"),
        ("year", "1_000", "must be an integer, got '1_000'"),
        ("year", "1" * 30, "must be an integer, got '111111111111111111111111111111'"),
        ("average_rating", "abc", "must be a number, got 'abc'"),
        ("average_rating", "nan", "must be a number, got 'nan'"),
    ],
)
def test_a_csv_cell_of_the_wrong_type_names_line_item_and_field(
    tmp_path: Path, field: str, cell: str, problem: str
) -> None:
    path = tmp_path / "items.csv"
    path.write_text(f"item_id,{field}\nok,1\nb-7,{cell}\n", encoding="utf-8")
    assert refusal(path, GOODBOOKS) == f"{path} line 3: item 'b-7': field {field!r}: {problem}"


def test_a_bad_boolean_names_line_item_and_field(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("item_id,publisher,paywalled\nn-1,p,yes\n", encoding="utf-8")
    with pytest.raises(CatalogFileError) as caught:
        list(read_items(path, NEWS))
    assert str(caught.value) == (
        f"{path} line 2: item 'n-1': field 'paywalled': must be true or false (or 1 or 0), got 'yes'"
    )
    cause = caught.value.__cause__  # the schema's error, for a caller that wants the item and the field
    assert isinstance(cause, ItemError) and (cause.item_id, cause.field) == ("n-1", "paywalled")


def test_a_bad_date_reaches_validation_which_names_line_item_and_field(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    item = {**NEWS_ITEMS[1], "published_at": "03/12/2026"}
    write_csv(path, [NEWS_ITEMS[0], item])
    (_, raw_bad) = read_items(path, NEWS)
    assert raw_bad.doc["published_at"] == "03/12/2026"  # the reader leaves dates to the schema
    message = refusal(path, NEWS)
    assert message.startswith(f"{path} line 3: item 'n-2': field 'published_at': must be an ISO 8601 date")


@pytest.mark.parametrize(
    ("name", "where"), [("items.jsonl", "line 2"), ("items.parquet", "row 2"), ("items.csv.gz", "line 3")]
)
def test_validation_errors_name_the_line_or_row_in_every_format(
    tmp_path: Path, name: str, where: str
) -> None:
    path = tmp_path / name
    WRITERS[name](path, [NEWS_ITEMS[0], {**NEWS_ITEMS[1], "views": 2**40}])
    assert refusal(path, NEWS).startswith(f"{path} {where}: item 'n-2': field 'views': must be within")


def test_an_unknown_csv_column_names_it_and_the_schemas_fields(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("item_id,title,isbn\n1,t,123\n", encoding="utf-8")
    assert refusal(path, GOODBOOKS) == (
        f"{path} line 1: unknown column 'isbn'; the schema 'goodbooks' has item_id, title, authors, year, "
        f"language, average_rating, ratings_count, tags"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("title,year\nt,1\n", " line 1: no item_id column (the header names title, year)"),
        ("", ": empty; a CSV catalog starts with a header row naming its fields"),
        ("item_id,year,year\n1,2,3\n", " line 1: the column 'year' appears twice"),
        ("item_id,year\n1,2\n\n3,4,5\n", " line 4: 3 cells, but the header names 2 columns"),
        ('item_id,title\n1,"a"b\n', " line 2: not valid CSV ("),
    ],
)
def test_a_malformed_csv_names_the_file_and_line(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "items.csv"
    path.write_text(text, encoding="utf-8")
    assert refusal(path, GOODBOOKS).startswith(f"{path}{problem}")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"item_id": "1", "year": }', "not valid JSON (Expecting value at column 26)"),
        ('["item_id", "1"]', "a line must hold a JSON object, got list"),
        (
            '{"item_id": "1", "year": 1, "year": 2}',
            "the key 'year' appears more than once in one JSON object",
        ),
        (
            '{"item_id": "1", "title": "\\ud800"}',
            "a string holds a lone surrogate escape (\\ud800-\\udfff), which is not text",
        ),
    ],
)
def test_a_bad_json_line_names_the_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "items.jsonl"
    path.write_text('{"item_id": "0"}\n\n   \n' + line + "\n", encoding="utf-8")
    assert refusal(path, GOODBOOKS) == f"{path} line 4: {problem}"


def test_a_json_line_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"item_id": "0"}\n{"item_id": "\xff"}\n')
    assert refusal(path, GOODBOOKS) == f"{path} line 2: not UTF-8 (invalid start byte at byte 13)"


def test_an_unknown_json_field_names_line_item_and_field(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    write_jsonl(path, [{"item_id": "b1", "isbn": "x"}])
    assert refusal(path, GOODBOOKS).startswith(f"{path} line 1: item 'b1': field 'isbn': unknown field")


def test_parquet_columns_must_be_fields_and_include_item_id(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": ["1"], "isbn": ["x"]}), path)
    assert refusal(path, GOODBOOKS).startswith(f"{path}: unknown column 'isbn'; the schema 'goodbooks' has")
    pq.write_table(pa.table({"title": ["x"]}), path)
    assert refusal(path, GOODBOOKS) == f"{path}: no item_id column (the file has title)"
    path.write_bytes(b"not parquet at all")
    assert refusal(path, GOODBOOKS).startswith(f"cannot read {path} as Parquet: ")


def test_parquet_dates_times_and_narrow_numbers_become_json_values(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    table = pa.table(
        {
            "item_id": pa.array(["a", "b"]),
            "published_at": pa.array(
                [datetime(2026, 12, 3, 10, 30, 15, 250_000), None], type=pa.timestamp("us")
            ),
            "word_count": pa.array([7, None], type=pa.int8()),
            "views": pa.array([65_000, 1], type=pa.uint16()),
            "quality": pa.array([0.5, 0.25], type=pa.float32()),
            "paywalled": pa.array([True, None]),
            "topics": pa.array([["a", "b"], []], type=pa.list_(pa.string())),
        }
    )
    dates = pa.table(
        {
            "item_id": ["c", "d"],
            "published_at": pa.array([date(2026, 12, 3), date(1, 1, 1)], type=pa.date32()),
            "quality": pa.array([Decimal("0.125"), None], type=pa.decimal128(5, 3)),
        }
    )
    zoned = pa.table(
        {
            "item_id": ["e"],
            "published_at": pa.array(
                [datetime(2026, 12, 3, 1, 0, tzinfo=timezone(timedelta(hours=2)))],
                type=pa.timestamp("s", tz="Europe/Paris"),
            ),
        }
    )
    pq.write_table(table, path)
    docs = [raw.doc for raw in read_items(path, NEWS)]
    assert docs == [
        {
            "item_id": "a",
            "published_at": "2026-12-03T10:30:15Z",
            "word_count": 7,
            "views": 65_000,
            "quality": 0.5,
            "paywalled": True,
            "topics": ["a", "b"],
        },
        {
            "item_id": "b",
            "published_at": None,
            "word_count": None,
            "views": 1,
            "quality": 0.25,
            "paywalled": None,
            "topics": [],
        },
    ]
    assert all(type(v) in (str, int, float, bool, list, type(None)) for d in docs for v in d.values())
    pq.write_table(dates, path)
    assert [raw.doc for raw in read_items(path, NEWS)] == [
        {"item_id": "c", "published_at": "2026-12-03", "quality": 0.125},
        {"item_id": "d", "published_at": "0001-01-01", "quality": None},
    ]
    pq.write_table(zoned, path)
    assert [raw.doc["published_at"] for raw in read_items(path, NEWS)] == ["2026-12-02T23:00:00Z"]


def test_the_format_comes_from_the_suffix_or_the_caller(tmp_path: Path) -> None:
    assert [file_format(Path(n)) for n in ("a.CSV", "a.csv.gz", "a.ndjson.gz", "a.jsonl", "a.parquet")] == [
        "csv",
        "csv",
        "jsonl",
        "jsonl",
        "parquet",
    ]
    for name in ("items.txt", "items", "items.parquet.gz", "items.gz"):
        with pytest.raises(CatalogFileError) as caught:
            read_items(tmp_path / name, GOODBOOKS)  # refused at the call, before any reading
        assert str(caught.value) == (
            f"{tmp_path / name}: cannot tell the format from the name; supported: .csv, .jsonl or .ndjson "
            f"(either also .gz), .parquet"
        )
    with pytest.raises(CatalogFileError, match=r"unknown format 'xml'; supported: csv, jsonl, parquet"):
        read_items(tmp_path / "items.csv", GOODBOOKS, format="xml")
    # A gzipped JSON lines file under any name, read as the caller says.
    path = tmp_path / "export.dat"
    write_jsonl(path.with_suffix(".gz"), BOOKS)
    path.with_suffix(".gz").rename(path)
    read = validated(read_items(path, GOODBOOKS, format="jsonl"), GOODBOOKS)
    assert list(read) == [GOODBOOKS.validate_item(b) for b in BOOKS]


def test_a_missing_or_truncated_file_is_a_catalog_file_error(tmp_path: Path) -> None:
    assert refusal(tmp_path / "none.csv", GOODBOOKS).startswith(f"cannot read {tmp_path / 'none.csv'}: ")
    path = tmp_path / "items.jsonl.gz"
    write_jsonl(path, BOOKS * 200)
    path.write_bytes(path.read_bytes()[:-40])
    assert "cannot read: Compressed file ended before" in refusal(path, GOODBOOKS)


def test_long_fields_within_an_items_size_read_in_csv_and_jsonl(tmp_path: Path) -> None:
    # Beyond the csv module's default field limit (131,072 characters), within an item's 1 MiB.
    item = {"item_id": "long", "body": "é" * 300_000 + '"quoted"', "tags": ["a"]}
    write_csv(tmp_path / "items.csv", [item])
    write_jsonl(tmp_path / "items.jsonl", [item])
    for name in ("items.csv", "items.jsonl"):
        assert read_back(tmp_path / name, LONG_TEXT) == [item]


@pytest.mark.parametrize("name", ["items.csv", "items.jsonl", "items.csv.gz", "items.jsonl.gz"])
def test_a_10_mb_field_is_refused_without_reading_it_whole(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    huge = {"item_id": "huge", "body": "x" * (10 << 20), "tags": ["a"]}
    WRITERS[name](path, [{"item_id": "small", "body": "b", "tags": ["a"]}, huge, huge])
    unit = "bytes" if "jsonl" in name else "characters"
    line = 3 if "csv" in name else 2
    tracemalloc.start()
    try:
        message = refusal(path, LONG_TEXT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.startswith(f"{path} line {line}: ")
    assert f"longer than {LINE_LIMIT} {unit} (an item is at most 1048576 bytes)" in message
    # Reading the line whole would take its 10 MB and more; the bounded read takes about twice the limit.
    assert peak < 3 * LINE_LIMIT < 10 << 20


def test_an_overlong_record_of_many_short_csv_lines_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write('item_id,body\nsmall,b\nhuge,"')
        for _ in range(LINE_LIMIT // 1000 + 1):
            out.write("y" * 999 + "\n")
        out.write('"\n')
    assert refusal(path, LONG_TEXT).startswith(f"{path} line 3: the record is longer than {LINE_LIMIT}")


def _position(path: Path) -> int | None:
    """Where this process's open descriptor of `path` is, or None when none is open."""
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if fd.readlink() == path:
                info = (Path("/proc/self/fdinfo") / fd.name).read_text().splitlines()
                fields = dict(line.split(":", 1) for line in info)
                return int(fields["pos"])
        except OSError:
            continue
    return None


@pytest.mark.parametrize("name", ["items.jsonl", "items.csv"])
def test_reading_streams_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    WRITERS[name](path, [{**BOOKS[0], "item_id": str(n)} for n in range(200_000)])
    size = path.stat().st_size
    items = read_items(path, GOODBOOKS)
    assert _position(path) is None  # nothing is opened before the first item is asked for
    first = next(items)
    assert isinstance(first, RawItem) and first.doc["item_id"] == "0"
    position = _position(path)
    assert position is not None and position < size // 100
    items.close()  # type: ignore[attr-defined]
    assert _position(path) is None


def test_parquet_rows_are_numbered_across_batches(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    rows = [{"item_id": str(n), "year": n} for n in range(5_000)]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=1_000)
    read = list(read_items(path, GOODBOOKS))
    assert [r.doc for r in read] == rows
    assert read[-1].where == f"{path} row 5000"  # rows count on across batches and row groups
