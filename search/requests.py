"""Every OpenSearch request body Lockstep sends, built by pure functions.

The versioned queries take an `IndexedLocation` (index, vector field, version field, version) as a required
field, and the builders put the version term filter inside the k-NN clause themselves, next to the business
filters and exclusions: there is no way to build an unversioned k-NN query with this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from contract.filters import FilterNode
from contract.indexing import IndexedLocation, Slot, vector_field, version_field
from contract.items import ITEM_ID, FieldKind, schema
from contract.types import MAX_CANDIDATES, MIN_CANDIDATES, IndexParams, Similarity
from contract.wire import MAX_EXCLUDED
from search.filters import to_query
from search.templates import SPACE_TYPES, IndexLayout

Body = dict[str, Any]

MAX_K: Final = 10_000  # index.max_result_window
MAX_TERMS: Final = 1_000
_TERM_KINDS: Final = frozenset({FieldKind.KEYWORD, FieldKind.KEYWORDS})


def _check_k(k: int, name: str = "k") -> None:
    if not 1 <= k <= MAX_K:
        raise ValueError(f"{name} must be within 1..{MAX_K}, got {k}")


def metadata_fields() -> tuple[str, ...]:
    """Every field of the item schema in effect, item_id first: what results return by default."""
    return tuple(schema().kinds())


def _check_common(k: int, exclude_ids: frozenset[str], source_fields: tuple[str, ...] | None) -> None:
    _check_k(k)
    if len(exclude_ids) > MAX_EXCLUDED:
        raise ValueError(f"exclude_ids holds {len(exclude_ids)} ids, more than the limit of {MAX_EXCLUDED}")
    known = schema().kinds()
    unknown = [name for name in source_fields or () if name not in known]
    if unknown:
        raise ValueError(f"unknown source fields {unknown}; allowed: {sorted(known)}")


def _vector(values: Sequence[float]) -> tuple[float, ...]:
    vector = tuple(map(float, values))  # map over builtins: no Python frame per component (request path)
    if not vector:
        raise ValueError("vector must not be empty")
    if not all(map(math.isfinite, vector)):
        raise ValueError("vector must hold finite numbers only")
    return vector


# HNSW candidates per query: more candidates than k lifts recall at a small cost (the exact-top-10 target).
# They are per shard: a k-NN clause's k applies to each shard, and `size` keeps the best k of all shards'
# candidates. Each shard's best k hold its share of the global best k, so more shards need no more
# candidates (each searches a smaller graph). Measured with 3 shards + 1 replica (tests/cluster: 3,000
# items, 32-d): served top-10 = exact top-10 for 300 of 300 users with MIN_CANDIDATES (contract.types) and
# serving_ef_search. A quantized type needs more of its own (IndexParams.candidates): the rescoring can only
# reorder what the quantized graph found.
def candidates(k: int, configured: int | None = None) -> int:
    """HNSW candidates of a k-NN query for the k best: a type's own number (IndexParams.candidates), else
    MIN_CANDIDATES; never fewer than k."""
    return min(MAX_CANDIDATES, max(k, configured or MIN_CANDIDATES))


def beam(k: int, params: IndexParams, default: int) -> int:
    """The HNSW beam width of a type's query for the k best: the type's own ef_search, else `default`
    (serving_ef_search); never narrower than the candidates it returns."""
    return max(params.ef_search or default, candidates(k, params.candidates))


@dataclass(frozen=True)
class VersionedKnnQuery:
    """Approximate k-NN over the vectors of exactly one version, under filters and exclusions."""

    location: IndexedLocation
    similarity: Similarity
    vector: Sequence[float]
    k: int
    filter: FilterNode | None = None
    exclude_ids: frozenset[str] = frozenset()
    candidates: int | None = None  # oversampling: the k best are taken from this many HNSW candidates
    source_fields: tuple[str, ...] | None = None  # None: every schema field
    # Per-query HNSW beam width; None uses the index's knn.algo_param.ef_search (lucene honours both).
    ef_search: int | None = None
    # Re-score the candidates exactly on the full-precision vectors (for a quantized type's graph, whose
    # own scores are approximate): the k best of `candidates` by their exact scores.
    rescore: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "vector", _vector(self.vector))
        if self.ef_search is not None and not 1 <= self.ef_search <= MAX_K:
            raise ValueError(f"ef_search must be within 1..{MAX_K}, got {self.ef_search}")
        object.__setattr__(self, "exclude_ids", frozenset(self.exclude_ids))
        _check_common(self.k, self.exclude_ids, self.source_fields)
        if self.candidates is not None:
            _check_k(self.candidates, "candidates")
            if self.candidates < self.k:
                raise ValueError(f"candidates ({self.candidates}) must be >= k ({self.k})")


@dataclass(frozen=True)
class WeightedTerm:
    """A metadata term the fallback scorer rewards, e.g. ('tags', 'fantasy', 2.0)."""

    field: str
    value: str
    weight: float

    def __post_init__(self) -> None:
        kinds = schema().kinds()
        if kinds.get(self.field) not in _TERM_KINDS:
            allowed = sorted(f for f, kind in kinds.items() if kind in _TERM_KINDS)
            raise ValueError(f"weighted term field {self.field!r} must be one of {allowed}")
        if not math.isfinite(self.weight) or self.weight <= 0:
            raise ValueError(f"weight of term {self.field}:{self.value} must be finite and > 0")


@dataclass(frozen=True)
class Prior:
    """Popularity prior: popularity * log10(1 + P) + rating * Q / Q.max.

    P and Q are the item schema's popularity and quality fields; a term the schema leaves out is 0.
    """

    popularity: float = 1.0
    rating: float = 1.0


@dataclass(frozen=True)
class FallbackQuery:
    """Items WITHOUT a vector of the location's version, scored by content overlap plus a popularity prior.

    score = sum(weight of each term the item has in that field)
            + the popularity prior (Prior)
    """

    location: IndexedLocation
    k: int
    terms: tuple[WeightedTerm, ...] = ()
    filter: FilterNode | None = None
    exclude_ids: frozenset[str] = frozenset()
    prior: Prior = field(default_factory=Prior)
    source_fields: tuple[str, ...] | None = None  # None: every schema field

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude_ids", frozenset(self.exclude_ids))
        _check_common(self.k, self.exclude_ids, self.source_fields)
        if len(self.terms) > MAX_TERMS:
            raise ValueError(f"fallback takes at most {MAX_TERMS} weighted terms, got {len(self.terms)}")


@dataclass(frozen=True)
class PopularQuery:
    """The most popular items of an index under filters (the degraded path: needs no version)."""

    index: str
    k: int
    filter: FilterNode | None = None
    exclude_ids: frozenset[str] = frozenset()
    prior: Prior = field(default_factory=Prior)
    source_fields: tuple[str, ...] | None = None  # None: every schema field

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude_ids", frozenset(self.exclude_ids))
        _check_common(self.k, self.exclude_ids, self.source_fields)


# --- queries ---------------------------------------------------------------------------------------------


def _business(filter_tree: FilterNode | None, exclude_ids: frozenset[str]) -> tuple[list[Body], list[Body]]:
    """(filter clauses, must_not clauses) of the business filters and exclusions."""
    must_not = [{"terms": {ITEM_ID: sorted(exclude_ids)}}] if exclude_ids else []
    return ([to_query(filter_tree)] if filter_tree is not None else []), must_not


def version_filter(
    location: IndexedLocation,
    filter_tree: FilterNode | None = None,
    exclude_ids: frozenset[str] = frozenset(),
) -> Body:
    """The filter of every versioned vector query: this version, the business filters, no excluded id."""
    filters, must_not = _business(filter_tree, exclude_ids)
    clauses: Body = {"filter": [{"term": {location.version_field: location.version}}, *filters]}
    if must_not:
        clauses["must_not"] = must_not
    return {"bool": clauses}


def _source(fields: Iterable[str] | None, *extra: str) -> list[str]:
    return sorted({ITEM_ID, *(metadata_fields() if fields is None else fields), *extra})


def knn_body(query: VersionedKnnQuery) -> Body:
    """The k-NN search: version filter inside the knn clause (efficient filtering, not a post-filter)."""
    loc = query.location
    clause: Body = {
        "vector": list(query.vector),
        "k": query.candidates or query.k,
        "filter": version_filter(loc, query.filter, query.exclude_ids),
    }
    if query.ef_search is not None:
        clause["method_parameters"] = {"ef_search": query.ef_search}
    body: Body = {
        "size": query.k,
        "_source": _source(query.source_fields, loc.version_field),
        "query": {"knn": {loc.vector_field: clause}},
    }
    if query.rescore:
        # Per shard, its candidates re-scored by the exact script alone (the approximate score weighs 0).
        body["rescore"] = {
            "window_size": query.candidates or query.k,
            "query": {
                "rescore_query": {
                    "script_score": {"query": {"match_all": {}}, "script": _exact_script(query)}
                },
                "query_weight": 0.0,
                "rescore_query_weight": 1.0,
            },
        }
    return body


def exact_body(query: VersionedKnnQuery) -> Body:
    """Exact scoring of the same query (script_score + knn_score, same filter): the recall reference."""
    loc = query.location
    return {
        "size": query.k,
        "_source": _source(query.source_fields, loc.version_field),
        "query": {
            "script_score": {
                "query": version_filter(loc, query.filter, query.exclude_ids),
                "script": _exact_script(query),
            }
        },
    }


def _exact_script(query: VersionedKnnQuery) -> Body:
    """The k-NN plugin's exact scoring of the query vector against each document's full vector."""
    return {
        "lang": "knn",
        "source": "knn_score",
        "params": {
            "field": query.location.vector_field,
            "query_value": list(query.vector),
            "space_type": SPACE_TYPES[query.similarity],
        },
    }


def _prior_functions(prior: Prior) -> list[Body]:
    # field_value_factor's log1p is log10(1 + x); missing values count as 0.
    item_schema, functions = schema(), []
    if item_schema.popularity is not None:
        functions.append(
            {
                "field_value_factor": {"field": item_schema.popularity, "modifier": "log1p", "missing": 0},
                "weight": prior.popularity,
            }
        )
    if item_schema.quality is not None:
        quality = item_schema.quality
        functions.append(
            {
                "field_value_factor": {"field": quality.field, "factor": 1 / quality.max, "missing": 0},
                "weight": prior.rating,
            }
        )
    return functions


def _scored(base: Body, functions: list[Body], size: int, source: list[str]) -> Body:
    return {
        "size": size,
        "_source": source,
        "query": {
            "function_score": {
                "query": base,
                "functions": functions,
                "score_mode": "sum",
                "boost_mode": "replace",
            }
        },
        # Ties (e.g. equal priors) broken by id, so the same request gives the same list.
        "sort": [{"_score": "desc"}, {ITEM_ID: "asc"}],
    }


def fallback_body(query: FallbackQuery) -> Body:
    """Items lacking a vector of the version (version field missing or different), content + prior scored."""
    loc = query.location
    filters, must_not = _business(query.filter, query.exclude_ids)
    base: Body = {
        "bool": {"filter": filters, "must_not": [{"term": {loc.version_field: loc.version}}, *must_not]}
    }
    functions = [{"filter": {"term": {t.field: t.value}}, "weight": t.weight} for t in query.terms]
    return _scored(base, functions + _prior_functions(query.prior), query.k, _source(query.source_fields))


def popular_body(query: PopularQuery) -> Body:
    """The most popular items under the filters, by the prior alone."""
    filters, must_not = _business(query.filter, query.exclude_ids)
    base: Body = {"bool": {"filter": filters, "must_not": must_not}}
    return _scored(base, _prior_functions(query.prior), query.k, _source(query.source_fields))


def count_body(location: IndexedLocation | None = None, filter_tree: FilterNode | None = None) -> Body:
    """Count documents (of a version, when a location is given) under a filter."""
    if location is not None:
        return {"query": version_filter(location, filter_tree)}
    filters, _ = _business(filter_tree, frozenset())
    return {"query": {"bool": {"filter": filters}}}


def mget_body(ids: Iterable[str]) -> Body:
    """Read documents back by id."""
    return {"ids": list(ids)}


def holding_any_body(fields: Sequence[str]) -> Body:
    """Count the documents that hold any of `fields`."""
    should = [{"exists": {"field": name}} for name in fields]
    return {"query": {"bool": {"should": should, "minimum_should_match": 1}}}


def clear_fields_body(fields: Sequence[str]) -> Body:
    """update_by_query: remove `fields` from every document that holds any of them."""
    return {
        **holding_any_body(fields),
        "script": {
            "lang": "painless",
            "source": "for (name in params.fields) { ctx._source.remove(name); }",
            "params": {"fields": list(fields)},
        },
    }


def ids_page_body(size: int, after: str | None = None, query: Body | None = None) -> Body:
    """One page of document ids (of all, or those matching `query`) in id order (search_after paging)."""
    body: Body = {
        "size": size,
        "_source": False,
        "sort": [{ITEM_ID: "asc"}],
        "query": query or {"match_all": {}},
    }
    if after is not None:
        body["search_after"] = [after]
    return body


def lacking_query(field: str, value: str) -> Body:
    """Documents whose `field` does not hold `value` (absent or another)."""
    return {"bool": {"must_not": [{"term": {field: value}}]}}


def carrying_query(ids: Sequence[str], field: str, value: str) -> Body:
    """Those of the documents `ids` whose `field` holds `value`."""
    return {"bool": {"filter": [{"ids": {"values": list(ids)}}, {"term": {field: value}}]}}


# --- documents -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotVector:
    """A vector of one version written into a type's slot."""

    vector_field: str
    version_field: str
    version: str
    vector: Sequence[float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "vector", _vector(self.vector))

    @classmethod
    def of(cls, type_name: str, slot: Slot, version: str, vector: Sequence[float]) -> SlotVector:
        """The slot's field names from contract.indexing."""
        return cls(vector_field(type_name, slot), version_field(type_name, slot), version, vector)


@dataclass(frozen=True)
class ItemDocument:
    """An item's metadata and the slot vectors to write with it."""

    item_id: str
    metadata: Mapping[str, Any]
    vectors: tuple[SlotVector, ...] = ()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.metadata) - set(schema().kinds()))
        if unknown:
            raise ValueError(f"item {self.item_id!r}: unknown metadata fields {unknown}")
        if self.metadata.get(ITEM_ID, self.item_id) != self.item_id:
            raise ValueError(f"item {self.item_id!r}: metadata item_id {self.metadata[ITEM_ID]!r} differs")

    def source(self) -> Body:
        """The document body."""
        body: Body = {**self.metadata, ITEM_ID: self.item_id}
        for slot in self.vectors:
            body[slot.vector_field] = list(slot.vector)
            body[slot.version_field] = slot.version
        return body


@dataclass(frozen=True)
class BulkAction:
    """One bulk operation: its header line and, except for deletes, its body line."""

    item_id: str
    header: Body
    body: Body | None = None

    def lines(self) -> list[Body]:
        """The NDJSON lines of this action."""
        return [self.header] if self.body is None else [self.header, self.body]


def index_action(index: str, doc: ItemDocument) -> BulkAction:
    """Write a whole document (replacing what was there)."""
    return BulkAction(doc.item_id, {"index": {"_index": index, "_id": doc.item_id}}, doc.source())


def update_action(index: str, doc: ItemDocument) -> BulkAction:
    """Merge fields into a document (other types' slots stay), creating it when missing."""
    return BulkAction(
        doc.item_id,
        {"update": {"_index": index, "_id": doc.item_id}},
        {"doc": doc.source(), "doc_as_upsert": True},
    )


def delete_action(index: str, item_id: str) -> BulkAction:
    """Delete a document."""
    return BulkAction(item_id, {"delete": {"_index": index, "_id": item_id}})


def clear_slot_action(index: str, item_id: str, vector_field: str, version_field: str) -> BulkAction:
    """Empty a slot of an existing document (the item has no vector of the slot's new version)."""
    return BulkAction(
        item_id,
        {"update": {"_index": index, "_id": item_id}},
        {"doc": {vector_field: None, version_field: None}},
    )


def bulk_body(actions: Iterable[BulkAction]) -> list[Body]:
    """The bulk request lines."""
    return [line for action in actions for line in action.lines()]


# --- indices and aliases ---------------------------------------------------------------------------------


def create_index_body(
    vector_properties: Mapping[str, Any],
    ef_search: int,
    build_meta: Mapping[str, Any] | None = None,
    layout: IndexLayout | None = None,
) -> Body:
    """A new items index: the template supplies metadata; this adds the vector slots, ef_search, the layout.

    With `build_meta`, a bulk-load build: no refresh and no replica until it is finished (replicas copy the
    merged segments afterwards instead of indexing every document again), `build_meta` as mapping `_meta`.
    Without, the live index: no merge inside a refresh.
    """
    index: Body = {"knn": True, "knn.algo_param.ef_search": ef_search}
    if layout is not None:
        index.update(layout.settings())
    body: Body = {"settings": {"index": index}, "mappings": {"properties": dict(vector_properties)}}
    if build_meta is not None:
        # One segment build at the end instead of a refresh (and a small HNSW graph) every second.
        index["refresh_interval"] = "-1"
        index["number_of_replicas"] = 0
        body["mappings"]["_meta"] = dict(build_meta)
    else:
        # Lucene's merge-on-refresh would make a refresh of the live index wait (up to 10 s) while it merges
        # the segments just flushed, rebuilding HNSW graphs, before a cycle's writes are visible: 2-4 s of a
        # 10k-change cycle at 100k items (bench/README). Its merges run in the background and in the
        # incremental indexer's maintenance step instead. Read when a shard opens: older indices keep it.
        index["merge_on_flush.enabled"] = False
    return body


def replicas_body(replicas: int) -> Body:
    """Index settings giving each shard `replicas` copies besides its primary."""
    return {"index": {"number_of_replicas": replicas}}


def refresh_interval_body(interval: str) -> Body:
    """Index settings turning periodic refresh on ("1s") or off ("-1")."""
    return {"index": {"refresh_interval": interval}}


def meta_body(meta: Mapping[str, Any]) -> Body:
    """put_mapping: replace an index's mapping `_meta`."""
    return {"_meta": dict(meta)}


def put_mapping_body(vector_properties: Mapping[str, Any]) -> Body:
    """Add vector slots (e.g. a new type) to an existing index."""
    return {"properties": dict(vector_properties)}


def alias_swap_body(alias: str, new_index: str, old_indices: Iterable[str]) -> Body:
    """Point `alias` at `new_index` only, in one atomic `_aliases` call."""
    removes = [{"remove": {"index": old, "alias": alias}} for old in sorted(set(old_indices) - {new_index})]
    return {"actions": [*removes, {"add": {"index": new_index, "alias": alias}}]}
