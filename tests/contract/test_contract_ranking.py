"""contract.ranking: the one recall@k / nDCG@k / MAP@k, on properties and against direct definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.ranking import hit_matrix, hits, map_at_k, ndcg_at_k, recall_at_k, tie_slack

METRICS = (recall_at_k, ndcg_at_k, map_at_k)
items = st.integers(0, 30)
cases = st.tuples(st.lists(items, max_size=15), st.frozensets(items, min_size=1), st.integers(1, 12))


def _direct(ranked: list[int], relevant: frozenset[int], k: int) -> tuple[float, float, float]:
    """Recall, nDCG and AP at k written out from their textbook definitions (first occurrences only)."""
    top = list(dict.fromkeys(ranked[:k]))  # a repeat of an item is no new find
    ranks = [r for r, item in enumerate(ranked[:k]) if item in relevant and ranked.index(item) == r]
    most = min(len(relevant), k)
    dcg = sum(1 / math.log2(r + 2) for r in ranks)
    ideal = sum(1 / math.log2(r + 2) for r in range(most))
    precisions = [(n + 1) / (r + 1) for n, r in enumerate(ranks)]
    return len(set(top) & relevant) / most, dcg / ideal, sum(precisions) / most


@given(cases)
def test_one_list_matches_the_definitions(case: tuple[list[int], frozenset[int], int]) -> None:
    ranked, relevant, k = case
    found = hits(ranked, relevant, k)
    figures = tuple(float(metric(found, len(relevant))) for metric in METRICS)
    assert figures == pytest.approx(_direct(ranked, relevant, k))
    assert all(0.0 <= f <= 1.0 + 1e-12 for f in figures)


@given(st.lists(cases.map(lambda c: c[:2]), min_size=1, max_size=8), st.integers(1, 12))
def test_a_matrix_scores_each_list_as_alone(lists: list[tuple[list[int], frozenset[int]]], k: int) -> None:
    ranked, relevant = [r for r, _ in lists], [w for _, w in lists]
    matrix = hit_matrix(ranked, relevant, k)
    assert matrix.shape == (len(lists), k)
    n = np.array([len(w) for w in relevant])
    for metric in METRICS:
        alone = [float(metric(hits(r, w, k), len(w))) for r, w in lists]
        assert metric(matrix, n).tolist() == pytest.approx(alone)


@given(st.frozensets(items, min_size=1), st.integers(1, 12))
def test_a_perfect_list_scores_one_and_a_list_without_hits_zero(relevant: frozenset[int], k: int) -> None:
    best = hits(sorted(relevant), relevant, k)
    none = hits([100 + i for i in range(k)], relevant, k)
    for metric in METRICS:
        assert float(metric(best, len(relevant))) == pytest.approx(1.0)
        assert float(metric(none, len(relevant))) == 0.0


def test_hits_pad_short_lists_and_count_a_repeat_once() -> None:
    assert hits(["a", "x", "a", "b"], {"a", "b"}, 6).tolist() == [True, False, False, True, False, False]
    assert hits(["a", "b", "c"], {"c"}, 2).tolist() == [False, False]  # only the top k counts


def test_nothing_to_find_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one relevant item"):
        recall_at_k(hits(["a"], set(), 3), 0)
    with pytest.raises(ValueError, match="at least one relevant item"):
        ndcg_at_k(hit_matrix([["a"], ["b"]], [{"a"}, set()], 3), np.array([1, 0]))


def test_tie_slack_is_float32_rounding_relative_to_scores_above_one() -> None:
    assert tie_slack(0.5) == tie_slack(-1.0) == 1e-5
    assert tie_slack(-300.0) == pytest.approx(3e-3)
