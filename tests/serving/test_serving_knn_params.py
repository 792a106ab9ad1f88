"""Serving's beam width per type: the type's own ef_search, else serving_ef_search; never below candidates."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contract.settings import ServingSettings
from contract.types import EmbeddingType, Encoder, Family, IndexParams, Similarity
from search.requests import MIN_CANDIDATES
from serving.knn import ef_search


def test_a_types_own_ef_search_wins_over_the_setting() -> None:
    settings = ServingSettings(serving_ef_search=512)
    assert ef_search(settings, 10, IndexParams(ef_search=300)) == 300
    assert ef_search(settings, 10, IndexParams()) == 512
    assert ef_search(settings, 10, IndexParams(ef_search=8)) == MIN_CANDIDATES  # never below the candidates


def test_index_parameters_are_validated_and_stored_types_without_them_still_load() -> None:
    with pytest.raises(ValidationError, match="m"):
        IndexParams(m=1)
    with pytest.raises(ValidationError, match="encoder"):
        IndexParams.model_validate({"encoder": "pq"})
    with pytest.raises(ValidationError, match=r"sq1.*kills the node"):
        IndexParams(encoder=Encoder.SQ1)
    with pytest.raises(ValidationError, match="extra"):
        IndexParams.model_validate({"nlist": 4})
    old = '{"name": "als-d8", "family": "direct-direct", "dim": 8, "similarity": "dot"}'
    loaded = EmbeddingType.model_validate_json(old)
    assert loaded.index == IndexParams() and loaded.index.encoder is Encoder.FLOAT
    assert loaded == EmbeddingType(
        name="als-d8", family=Family.DIRECT_DIRECT, dim=8, similarity=Similarity.DOT
    )
