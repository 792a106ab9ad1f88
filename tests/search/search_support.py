"""Helpers of the search tests (types, locations, versions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from contract.indexing import IndexedLocation, Mode, Slot, vector_field, version_field
from contract.types import EmbeddingType, Family, Similarity

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


IndexFactory = Callable[[str, Sequence[EmbeddingType]], str]
