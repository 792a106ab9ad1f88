"""Filter translation on the real server (through the port): a query per op, random trees vs the reference."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from search_support import AUTHORS, LANGS, TAGS, IndexFactory, embedding_type, trees

from contract.filters import matches, parse_filter
from search.filters import to_query
from search.port import SearchEngine
from search.requests import ItemDocument, index_action

pytestmark = pytest.mark.anyio

DOCS: dict[str, dict[str, Any]] = {}
for _i in range(60):
    _doc: dict[str, Any] = {}
    if _i % 4:
        _doc["language"] = LANGS[_i % 3]
    if _i % 5:
        _doc["tags"] = [TAGS[_i % 4], TAGS[(_i // 4) % 4]][: 1 + _i % 2]
    if _i % 6:
        _doc["authors"] = [AUTHORS[_i % 3]]
    if _i % 7:
        _doc["year"] = 1988 + _i % 10
        _doc["ratings_count"] = 1988 + (_i * 3) % 10
    if _i % 3:
        _doc["average_rating"] = [3.0, 3.5, 3.75, 4.0, 4.25][_i % 5]
    _doc["item_id"] = f"d{_i:02d}"  # every stored document has its id as a field
    DOCS[_doc["item_id"]] = _doc


@pytest.fixture
async def filter_index(search: SearchEngine, items_index: IndexFactory) -> str:
    index = await items_index("filters", [embedding_type(2)])
    report = await search.bulk_write(
        [index_action(index, ItemDocument(i, d)) for i, d in DOCS.items()], refresh=True
    )
    assert report.ok, report.failed
    return index


async def search_ids(search: SearchEngine, index: str, raw: dict[str, Any]) -> set[str]:
    query = {"bool": {"filter": [to_query(parse_filter(raw))]}}
    return {item_id async for item_id in search.iter_item_ids(index, query)}


def reference_ids(raw: dict[str, Any]) -> set[str]:
    tree = parse_filter(raw)
    return {i for i, d in DOCS.items() if matches(tree, d)}


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "in", "field": "language", "values": ["eng", "ger"]},
        {"op": "in", "field": "tags", "values": ["fantasy"]},
        {"op": "in", "field": "year", "values": [1990, 1991]},
        {"op": "range", "field": "year", "gte": 1990, "lt": 1994},
        {"op": "range", "field": "average_rating", "gt": 3.5, "lte": 4.0},
        {"op": "exists", "field": "tags"},
        {"op": "not", "child": {"op": "exists", "field": "language"}},
        {
            "op": "and",
            "children": [
                {"op": "in", "field": "authors", "values": ["Austen"]},
                {"op": "exists", "field": "year"},
            ],
        },
        {
            "op": "or",
            "children": [
                {"op": "in", "field": "item_id", "values": ["d01"]},
                {"op": "range", "field": "ratings_count", "lte": 1989},
            ],
        },
    ],
    ids=lambda raw: raw["op"] + ":" + raw.get("field", ""),
)
async def test_each_op_selects_exactly_the_reference_set(
    search: SearchEngine, filter_index: str, raw: dict[str, Any]
) -> None:
    want = reference_ids(raw)
    assert want and want != set(DOCS)  # each case is a real selection
    assert await search_ids(search, filter_index, raw) == want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=trees)
async def test_random_trees_agree_with_the_reference(
    search: SearchEngine, filter_index: str, raw: dict[str, Any]
) -> None:
    assert await search_ids(search, filter_index, raw) == reference_ids(raw)
