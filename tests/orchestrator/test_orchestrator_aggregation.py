"""The pure weighted sum: exact on small cases, and properties over random inputs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.keys import Kind
from orchestrator.aggregation import weighted_sum
from orchestrator.cache import VectorCache


def test_weighted_sum_reports_used_and_missing() -> None:
    vectors = {"tag:a": np.array([1, 0], np.float32), "tag:b": np.array([0, 2], np.float32)}
    result = weighted_sum([("tag:a", 3.0), ("tag:x", 1.0), ("tag:b", 0.5)], vectors, 2, normalize=False)
    assert result is not None
    assert result.vector.tolist() == [3.0, 1.0]
    assert result.used == ("tag:a", "tag:b") and result.missing == ("tag:x",)


def test_nothing_found_is_none_not_a_zero_vector() -> None:
    assert weighted_sum([("tag:x", 1.0)], {}, 4, normalize=True) is None


def test_cancelling_vectors_normalize_to_zero_without_dividing_by_zero() -> None:
    vectors = {"a:1": np.array([1, 1], np.float32), "a:2": np.array([-1, -1], np.float32)}
    result = weighted_sum([("a:1", 1.0), ("a:2", 1.0)], vectors, 2, normalize=True)
    assert result is not None and result.vector.tolist() == [0.0, 0.0]


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.floats(min_value=1e-3, max_value=1e3), min_size=1, max_size=20),
    seed=st.integers(0, 2**16),
)
def test_normalized_sum_is_unit_length_and_scale_free(weights: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    vectors = {f"t:{i}": rng.standard_normal(6).astype(np.float32) for i in range(len(weights))}
    pairs = [(f"t:{i}", w) for i, w in enumerate(weights)]
    result = weighted_sum(pairs, vectors, 6, normalize=True)
    scaled = weighted_sum([(a, w * 7.0) for a, w in pairs], vectors, 6, normalize=True)
    assert result is not None and scaled is not None
    norm = float(np.linalg.norm(result.vector))
    assert norm == 0.0 or abs(norm - 1.0) < 1e-5
    assert np.allclose(result.vector, scaled.vector, atol=1e-5)
    assert result.missing == ()


def test_cache_is_bounded_lru_with_counters() -> None:
    cache = VectorCache(2)
    one, two, three = (np.full(2, i, np.float32) for i in (1, 2, 3))
    cache.put_many("t", "v", Kind.USER, {"1": one, "2": two})
    assert set(cache.get_many("t", "v", Kind.USER, ["1"])) == {"1"}  # "1" is now most recent
    cache.put_many("t", "v", Kind.USER, {"3": three})  # evicts "2"
    assert set(cache.get_many("t", "v", Kind.USER, ["1", "2", "3"])) == {"1", "3"}
    assert (cache.hits, cache.misses, len(cache)) == (3, 1, 2)
    assert cache.get_many("t", "other-version", Kind.USER, ["1"]) == {}  # keyed by version
