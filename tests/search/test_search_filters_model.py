"""The filter tree: validation, limits, and translation against the reference semantics (no server)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from search_support import AUTHORS, LANGS, TAGS, trees

from contract.filters import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_VALUES,
    Filter,
    fields_of,
    filter_to_json,
    matches,
    parse_filter,
)
from contract.items import schema
from search.filters import to_query

FILTERABLE_FIELDS = schema().filterable()

# --- strategies -------------------------------------------------------------------------------------------

docs = st.fixed_dictionaries(
    {},
    optional={
        "language": st.sampled_from(LANGS),
        "tags": st.lists(st.sampled_from(TAGS), max_size=3),
        "authors": st.lists(st.sampled_from(AUTHORS), max_size=2),
        "year": st.integers(1988, 1997),
        "ratings_count": st.integers(1988, 1997),
        "average_rating": st.sampled_from([3.0, 3.5, 3.75, 4.0, 4.25]),
    },
)


def _depth(raw: dict[str, Any]) -> int:
    kids = raw.get("children") or ([raw["child"]] if "child" in raw else [])
    return 1 + max((_depth(k) for k in kids), default=0)


# --- a tiny interpreter of the DSL subset we emit: the translation must mean what `matches` means --------


def _values(doc: dict[str, Any], name: str) -> list[Any]:
    value = doc.get(name)
    if value is None or value == []:
        return []
    return value if isinstance(value, list) else [value]


def run_dsl(query: dict[str, Any], doc: dict[str, Any]) -> bool:
    ((kind, spec),) = query.items()
    if kind == "bool":
        ok = all(run_dsl(q, doc) for q in spec.get("filter", []))
        ok = ok and not any(run_dsl(q, doc) for q in spec.get("must_not", []))
        if "should" in spec:
            ok = ok and sum(run_dsl(q, doc) for q in spec["should"]) >= spec["minimum_should_match"]
        return ok
    if kind == "terms":
        ((name, wanted),) = spec.items()
        return any(v in wanted for v in _values(doc, name))
    if kind == "range":
        ((name, bounds),) = spec.items()
        ops = {"gte": float.__ge__, "gt": float.__gt__, "lte": float.__le__, "lt": float.__lt__}
        return any(all(ops[o](float(v), float(b)) for o, b in bounds.items()) for v in _values(doc, name))
    if kind == "exists":
        return bool(_values(doc, spec["field"]))
    raise AssertionError(f"unexpected clause {kind}")


# --- properties -------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(trees, docs)
def test_translation_means_what_the_reference_semantics_mean(
    raw: dict[str, Any], doc: dict[str, Any]
) -> None:
    tree = parse_filter(raw)
    assert run_dsl(to_query(tree), doc) == matches(tree, doc)


@settings(max_examples=200, deadline=None)
@given(trees)
def test_valid_trees_round_trip_and_respect_the_limits(raw: dict[str, Any]) -> None:
    tree = parse_filter(raw)
    assert parse_filter(filter_to_json(tree)) == tree
    assert _depth(raw) <= MAX_DEPTH
    assert fields_of(tree) <= FILTERABLE_FIELDS


@settings(max_examples=100, deadline=None)
@given(st.integers(MAX_DEPTH + 1, 400))
def test_any_tree_deeper_than_the_limit_is_a_validation_error_naming_it(depth: int) -> None:
    raw: dict[str, Any] = {"op": "exists", "field": "year"}
    for _ in range(depth - 1):
        raw = {"op": "not", "child": raw}
    with pytest.raises(ValidationError, match=f"limit of {MAX_DEPTH} levels"):
        parse_filter(raw)


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=20).filter(lambda s: s not in FILTERABLE_FIELDS))
def test_unknown_fields_are_named_with_the_allowed_ones(name: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_filter({"op": "exists", "field": name})
    message = str(err.value)
    assert repr(name) in message
    assert "allowed fields: authors, average_rating" in message


# --- examples ---------------------------------------------------------------------------------------------


def test_depth_100_is_a_clean_error_and_deeper_json_too() -> None:
    raw: dict[str, Any] = {"op": "exists", "field": "year"}
    for _ in range(99):
        raw = {"op": "and", "children": [raw]}
    with pytest.raises(ValidationError, match="MAX_DEPTH"):
        parse_filter(raw)

    class Body(BaseModel):
        filters: Filter

    deep = '{"op":"not","child":' * 5000 + '{"op":"exists","field":"year"}' + "}" * 5000
    with pytest.raises(ValidationError):
        Body.model_validate_json('{"filters":' + deep + "}")


def test_node_and_value_limits_name_the_limit() -> None:
    wide = {"op": "or", "children": [{"op": "exists", "field": "year"}] * MAX_NODES}
    with pytest.raises(ValidationError, match="MAX_NODES"):
        parse_filter(wide)
    many = {"op": "in", "field": "tags", "values": [f"t{i}" for i in range(MAX_VALUES + 1)]}
    with pytest.raises(ValidationError, match="MAX_VALUES"):
        parse_filter(many)
    spread = {"op": "or", "children": [{"op": "in", "field": "tags", "values": ["x"] * 101}] * 10}
    with pytest.raises(ValidationError, match="MAX_VALUES"):
        parse_filter(spread)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"op": "range", "field": "tags", "gte": 1}, "only to integer/float/date fields"),
        ({"op": "range", "field": "language", "lt": 3}, "only to integer/float/date fields"),
        ({"op": "in", "field": "average_rating", "values": [4]}, "'in' does not apply to float"),
        ({"op": "in", "field": "title", "values": ["x"]}, "unknown filter field 'title'"),
        ({"op": "in", "field": "year", "values": ["1990"]}, "must be ints"),
        ({"op": "in", "field": "tags", "values": [3]}, "must be strs"),
        ({"op": "in", "field": "tags", "values": []}, "at least 1"),
        ({"op": "range", "field": "year"}, "at least one of gte"),
        ({"op": "range", "field": "year", "gte": 1, "gt": 2}, "not both"),
        ({"op": "range", "field": "year", "gte": float("inf")}, "finite"),
        ({"op": "range", "field": "year", "gte": True}, "valid"),
        ({"op": "and", "children": []}, "at least 1"),
        ({"op": "xor", "children": []}, "does not match any of the expected tags"),
        ({"op": "exists", "field": "year", "extra": 1}, "Extra inputs"),
        ({"op": "exists"}, "Field required"),
    ],
)
def test_bad_trees_are_refused_with_a_useful_message(raw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        parse_filter(raw)


def test_translation_of_each_op() -> None:
    tree = parse_filter(
        {
            "op": "and",
            "children": [
                {"op": "in", "field": "tags", "values": ["fantasy"]},
                {"op": "or", "children": [{"op": "range", "field": "year", "gte": 1990, "lt": 2000}]},
                {"op": "not", "child": {"op": "exists", "field": "language"}},
            ],
        }
    )
    assert to_query(tree) == {
        "bool": {
            "filter": [
                {"terms": {"tags": ["fantasy"]}},
                {
                    "bool": {
                        "should": [{"range": {"year": {"gte": 1990, "lt": 2000}}}],
                        "minimum_should_match": 1,
                    }
                },
                {"bool": {"must_not": [{"exists": {"field": "language"}}]}},
            ]
        }
    }
