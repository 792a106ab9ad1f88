"""The versioned k-NN query serving sends: how wide a beam, and whether its candidates are re-scored."""

from __future__ import annotations

from collections.abc import Sequence

from contract.filters import FilterNode
from contract.indexing import IndexedLocation
from contract.settings import ServingSettings
from contract.types import EmbeddingType, Encoder, IndexParams
from search.requests import VersionedKnnQuery, beam, candidates


def ef_search(settings: ServingSettings, k: int, params: IndexParams | None = None) -> int:
    """The beam width serving asks for (search.requests.beam, serving_ef_search by default)."""
    return beam(k, params or IndexParams(), settings.serving_ef_search)


def knn_query(
    settings: ServingSettings,
    location: IndexedLocation,
    etype: EmbeddingType,
    vector: Sequence[float],
    k: int,
    *,
    filters: FilterNode | None,
    exclude: frozenset[str],
) -> VersionedKnnQuery:
    """The k best items of `location`'s version for `vector`, under filters and exclusions."""
    return VersionedKnnQuery(
        location=location,
        similarity=etype.similarity,
        vector=vector,
        k=k,
        filter=filters,
        exclude_ids=exclude,
        candidates=candidates(k, etype.index.candidates),
        ef_search=ef_search(settings, k, etype.index),
        rescore=etype.index.encoder is not Encoder.FLOAT,
    )
