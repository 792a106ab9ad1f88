"""Helpers of the search tests (types, locations, versions)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from hypothesis import strategies as st

from contract.indexing import IndexedLocation, Mode, Slot, vector_field, version_field
from contract.items import schema
from contract.types import EmbeddingType, Family, Similarity

FILTERABLE_FIELDS = schema().filterable()

V1 = "20170101T000000Z-20170701T000000Z"
V2 = "20170101T000000Z-20180101T000000Z"


def embedding_type(
    dim: int = 4, similarity: Similarity = Similarity.DOT, name: str = "als-d4"
) -> EmbeddingType:
    """A direct-direct type for tests."""
    return EmbeddingType(name=name, family=Family.DIRECT_DIRECT, dim=dim, similarity=similarity)


def location(index: str, etype: EmbeddingType, version: str, slot: Slot = Slot.A) -> IndexedLocation:
    """Where a version of a type sits in a test index."""
    return IndexedLocation(
        version=version,
        mode=Mode.INCREMENTAL,
        index=index,
        vector_field=vector_field(etype.name, slot),
        version_field=version_field(etype.name, slot),
        indexed_at=datetime.now(UTC),
        item_count=0,
    )


IndexFactory = Callable[[str, Sequence[EmbeddingType]], Awaitable[str]]


# Raw filter trees over a small vocabulary, so random trees select something.
LANGS = ["eng", "fre", "ger"]
TAGS = ["fantasy", "classics", "romance", "sci-fi"]
AUTHORS = ["Austen", "Tolkien", "Le Guin"]

leaf = st.one_of(
    st.builds(
        lambda v: {"op": "in", "field": "language", "values": v}, st.lists(st.sampled_from(LANGS), min_size=1)
    ),
    st.builds(
        lambda v: {"op": "in", "field": "tags", "values": v}, st.lists(st.sampled_from(TAGS), min_size=1)
    ),
    st.builds(
        lambda v: {"op": "in", "field": "authors", "values": v},
        st.lists(st.sampled_from(AUTHORS), min_size=1),
    ),
    st.builds(
        lambda v: {"op": "in", "field": "year", "values": v}, st.lists(st.integers(1990, 1995), min_size=1)
    ),
    st.builds(
        lambda f, bounds: {"op": "range", "field": f, **bounds},
        st.sampled_from(["year", "ratings_count"]),
        st.dictionaries(st.sampled_from(["gte", "lt"]), st.integers(1988, 1997), min_size=1),
    ),
    st.builds(
        lambda bounds: {"op": "range", "field": "average_rating", **bounds},
        st.dictionaries(
            st.sampled_from(["gt", "lte"]), st.sampled_from([3.0, 3.5, 3.75, 4.0, 4.25]), min_size=1
        ),
    ),
    st.builds(lambda f: {"op": "exists", "field": f}, st.sampled_from(sorted(FILTERABLE_FIELDS))),
)

trees = st.recursive(
    leaf,
    lambda kids: st.one_of(
        st.builds(lambda c: {"op": "and", "children": c}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda c: {"op": "or", "children": c}, st.lists(kids, min_size=1, max_size=3)),
        st.builds(lambda c: {"op": "not", "child": c}, kids),
    ),
    max_leaves=8,
)
