"""Score conversion: known values, round trips, and the real server's scores converted back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from search_support import V1, IndexFactory, embedding_type, location

from contract.indexing import Slot
from contract.types import Similarity
from search.port import SearchEngine
from search.requests import ItemDocument, SlotVector, VersionedKnnQuery, index_action
from search.scores import model_similarity, to_score, to_similarity


@pytest.mark.parametrize(
    ("similarity", "score", "value"),
    [
        (Similarity.DOT, 7.0, 6.0),  # the platform note: a raw inner product of 6 comes back as 7
        (Similarity.DOT, 1.0, 0.0),
        (Similarity.DOT, 0.25, -3.0),
        (Similarity.COSINE, 1.0, 1.0),
        (Similarity.COSINE, 0.5, 0.0),
        (Similarity.COSINE, 0.0625, -0.875),
        (Similarity.L2, 1.0, 0.0),
        (Similarity.L2, 0.2, -4.0),
    ],
)
def test_known_values(similarity: Similarity, score: float, value: float) -> None:
    assert to_similarity(similarity, score) == pytest.approx(value)
    assert to_score(similarity, value) == pytest.approx(score)


@given(st.floats(-1e6, 1e6))
def test_dot_round_trips(value: float) -> None:
    assert to_similarity(Similarity.DOT, to_score(Similarity.DOT, value)) == pytest.approx(
        value, rel=1e-9, abs=1e-9
    )


@given(st.floats(-1.0, 1.0))
def test_cosine_round_trips(value: float) -> None:
    assert to_similarity(Similarity.COSINE, to_score(Similarity.COSINE, value)) == pytest.approx(
        value, abs=1e-12
    )


@given(st.floats(-1e6, 0.0))
def test_l2_round_trips_and_scores_are_monotone(value: float) -> None:
    assert to_similarity(Similarity.L2, to_score(Similarity.L2, value)) == pytest.approx(
        value, rel=1e-9, abs=1e-9
    )
    assert to_score(Similarity.L2, value) <= to_score(Similarity.L2, value / 2)


def test_impossible_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="are positive"):
        to_similarity(Similarity.DOT, 0.0)
    with pytest.raises(ValueError, match="<= 0"):
        to_score(Similarity.L2, 1.0)
    with pytest.raises(ValueError, match="dimension"):
        model_similarity(Similarity.DOT, [1.0], [1.0, 2.0])


ITEMS = {
    "p": [2.0, 1.0, 0.0],  # inner product with the query: 6.0 (the platform's example)
    "z": [0.0, 0.0, 1.0],  # 0.0
    "n": [-1.0, -2.0, 0.5],  # -8.0
    "s": [1.0, 1.0, 1.0],  # 4.0
}
QUERY = [2.0, 2.0, 0.0]


@pytest.mark.anyio
@pytest.mark.parametrize("similarity", list(Similarity))
async def test_real_scores_convert_back_to_the_model_similarity(
    search: SearchEngine, items_index: IndexFactory, similarity: Similarity
) -> None:
    etype = embedding_type(3, similarity)
    index = await items_index(f"scores-{similarity.value}", [etype])
    docs = [
        index_action(index, ItemDocument(i, {}, (SlotVector.of(etype.name, Slot.A, V1, v),)))
        for i, v in ITEMS.items()
    ]
    assert (await search.bulk_write(docs, refresh=True)).ok
    query = VersionedKnnQuery(location(index, etype, V1), similarity, QUERY, k=len(ITEMS))
    for hits in (await search.knn(query), await search.exact(query)):
        assert len(hits) == len(ITEMS)
        for hit in hits:
            want = model_similarity(similarity, QUERY, ITEMS[hit.item_id])
            assert hit.score == pytest.approx(want, rel=1e-5, abs=1e-5), (hit.item_id, hit.raw_score)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    if similarity is Similarity.DOT:
        p = next(h for h in hits if h.item_id == "p")
        assert p.raw_score == pytest.approx(7.0) and p.score == pytest.approx(6.0)
