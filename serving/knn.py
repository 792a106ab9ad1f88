"""The versioned k-NN query serving sends: how many HNSW candidates, how wide a beam."""

from __future__ import annotations

from collections.abc import Sequence

from contract.filters import FilterNode
from contract.indexing import IndexedLocation
from contract.settings import ServingSettings
from contract.types import Similarity
from search.requests import VersionedKnnQuery

# HNSW candidates per query: more candidates than k lifts recall at a small cost (the exact-top-10 target).
# They are per shard: a k-NN clause's k applies to each shard, and `size` keeps the best k of all shards'
# candidates. Each shard's best k hold its share of the global best k, so more shards need no more
# candidates (each searches a smaller graph). Measured with 3 shards + 1 replica (tests/cluster: 3,000
# items, 32-d): served top-10 = exact top-10 for 300 of 300 users with these values and serving_ef_search.
MIN_CANDIDATES = 100
MAX_CANDIDATES = 10_000


def candidates(k: int) -> int:
    """HNSW candidates of a k-NN query for the k best."""
    return min(MAX_CANDIDATES, max(k, MIN_CANDIDATES))


def ef_search(settings: ServingSettings, k: int) -> int:
    """The beam width: the configured one (see serving_ef_search), never narrower than the candidates."""
    return max(settings.serving_ef_search, candidates(k))


def knn_query(
    settings: ServingSettings,
    location: IndexedLocation,
    similarity: Similarity,
    vector: Sequence[float],
    k: int,
    *,
    filters: FilterNode | None,
    exclude: frozenset[str],
) -> VersionedKnnQuery:
    """The k best items of `location`'s version for `vector`, under filters and exclusions."""
    return VersionedKnnQuery(
        location=location,
        similarity=similarity,
        vector=vector,
        k=k,
        filter=filters,
        exclude_ids=exclude,
        candidates=candidates(k),
        ef_search=ef_search(settings, k),
    )
