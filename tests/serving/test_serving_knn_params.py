"""Serving's beam width per type: the type's own ef_search, else serving_ef_search; never below candidates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contract.indexing import IndexedLocation, Mode, Slot, vector_field, version_field
from contract.settings import ServingSettings
from contract.types import (
    MAX_CANDIDATES,
    MIN_CANDIDATES,
    EmbeddingType,
    Encoder,
    Family,
    IndexParams,
    Similarity,
)
from search.requests import knn_body
from serving.knn import ef_search, knn_query


def test_a_types_own_ef_search_wins_over_the_setting() -> None:
    settings = ServingSettings(serving_ef_search=512)
    assert ef_search(settings, 10, IndexParams(ef_search=300)) == 300
    assert ef_search(settings, 10, IndexParams()) == 512
    assert ef_search(settings, 10, IndexParams(ef_search=8)) == MIN_CANDIDATES  # never below the candidates


LOC = IndexedLocation(
    version="v1",
    mode=Mode.SHADOW,
    index="p-items-sq-d8-v1",
    vector_field=vector_field("sq-d8", Slot.A),
    version_field=version_field("sq-d8", Slot.A),
    indexed_at=datetime(2026, 12, 5, tzinfo=UTC),
    item_count=0,
)


def test_a_types_own_candidates_reach_its_query_and_widen_its_beam() -> None:
    settings = ServingSettings(serving_ef_search=512)
    quantized = EmbeddingType(
        name="sq-d8",
        family=Family.DIRECT_DIRECT,
        dim=8,
        similarity=Similarity.DOT,
        index=IndexParams(encoder=Encoder.SQ7, candidates=1000),
    )
    query = knn_query(settings, LOC, quantized, [0.0] * 8, 10, filters=None, exclude=frozenset())
    assert query.candidates == 1000 and query.ef_search == 1000 and query.rescore
    clause = knn_body(query)["query"]["knn"][LOC.vector_field]
    assert clause["k"] == 1000 and knn_body(query)["rescore"]["window_size"] == 1000
    plain = quantized.model_copy(update={"index": IndexParams()})
    query = knn_query(settings, LOC, plain, [0.0] * 8, 10, filters=None, exclude=frozenset())
    assert query.candidates == MIN_CANDIDATES and query.ef_search == 512 and not query.rescore
    with pytest.raises(ValidationError, match="candidates"):
        IndexParams(candidates=MIN_CANDIDATES - 1)
    with pytest.raises(ValidationError, match="candidates"):
        IndexParams(candidates=MAX_CANDIDATES + 1)


def test_index_parameters_are_validated_and_stored_types_without_them_still_load() -> None:
    with pytest.raises(ValidationError, match="m"):
        IndexParams(m=1)
    with pytest.raises(ValidationError, match="encoder"):
        IndexParams.model_validate({"encoder": "pq"})
    with pytest.raises(ValidationError, match=r"sq1.*kills the node"):
        IndexParams(encoder=Encoder.SQ1)
    with pytest.raises(ValidationError, match="extra"):
        IndexParams.model_validate({"nlist": 4})
    # A quantized encoder's confidence interval: 0 (dynamic) or 0.9-1.0, and only with a quantized encoder.
    assert IndexParams(encoder=Encoder.SQ7, confidence_interval=0).confidence_interval == 0
    assert IndexParams(encoder=Encoder.SQ7, confidence_interval=0.95).confidence_interval == 0.95
    for wrong in (0.5, 1.5, -0.1):
        with pytest.raises(ValidationError, match=r"confidence_interval\n.*neither 0 \(dynamic\)"):
            IndexParams(encoder=Encoder.SQ7, confidence_interval=wrong)
    with pytest.raises(ValidationError, match="confidence_interval applies to a quantized encoder"):
        IndexParams(confidence_interval=0)
    old = '{"name": "als-d8", "family": "direct-direct", "dim": 8, "similarity": "dot"}'
    loaded = EmbeddingType.model_validate_json(old)
    assert loaded.index == IndexParams() and loaded.index.encoder is Encoder.FLOAT
    assert loaded == EmbeddingType(
        name="als-d8", family=Family.DIRECT_DIRECT, dim=8, similarity=Similarity.DOT
    )
