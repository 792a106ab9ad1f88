"""Translate the neutral filter tree (contract.filters) to OpenSearch query DSL, one function per op."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from contract.filters import (
    AndFilter,
    ExistsFilter,
    FilterNode,
    InFilter,
    NotFilter,
    OrFilter,
    RangeFilter,
)

Query = dict[str, Any]


def _and(node: AndFilter) -> Query:
    # `filter` rather than `must`: no scoring, and the clauses are cacheable.
    return {"bool": {"filter": [to_query(child) for child in node.children]}}


def _or(node: OrFilter) -> Query:
    return {"bool": {"should": [to_query(child) for child in node.children], "minimum_should_match": 1}}


def _not(node: NotFilter) -> Query:
    return {"bool": {"must_not": [to_query(node.child)]}}


def _in(node: InFilter) -> Query:
    return {"terms": {node.field: list(node.values)}}


def _range(node: RangeFilter) -> Query:
    return {"range": {node.field: node.bounds()}}


def _exists(node: ExistsFilter) -> Query:
    return {"exists": {"field": node.field}}


_TRANSLATORS: Final[dict[str, Callable[[Any], Query]]] = {
    "and": _and,
    "or": _or,
    "not": _not,
    "in": _in,
    "range": _range,
    "exists": _exists,
}


def to_query(node: FilterNode) -> Query:
    """The OpenSearch query clause equivalent to a filter tree (depth is bounded by the tree's limits)."""
    return _TRANSLATORS[node.op](node)
