"""serving.metrics.LoopHistogram and LoopCounter: the exposition prometheus_client's own Histogram and Counter
give for the same data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from serving.metrics import _LATENCY_BUCKETS, LoopCounter, LoopHistogram

LABELS = ("route",)
observations = st.lists(
    st.tuples(
        st.sampled_from(["/v1/recommend", "/v1/items/{item_id}/similar"]),
        # Bucket bounds themselves included: an observation equal to a bound counts in that bucket.
        st.one_of(st.sampled_from(_LATENCY_BUCKETS), st.floats(min_value=0, max_value=60)),
    ),
    max_size=50,
)


def _lines(registry: CollectorRegistry) -> list[str]:
    # prometheus_client's Histogram adds a `_created` timestamp per label set, which ours leaves out.
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


@given(observations)
def test_the_exposition_is_prometheus_clients_own(observed: list[tuple[str, float]]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopHistogram("lockstep_x_seconds", "Latency.", LABELS, _LATENCY_BUCKETS, ours)
    reference = Histogram("lockstep_x_seconds", "Latency.", LABELS, buckets=_LATENCY_BUCKETS, registry=theirs)
    for route, seconds in observed:
        loop.labels(route).observe(seconds)
        reference.labels(route).observe(seconds)
    assert _lines(ours) == _lines(theirs)


increments = st.lists(
    st.tuples(
        st.sampled_from(["embedding", "fallback", "popular"]),
        st.one_of(st.just(1.0), st.floats(min_value=0, max_value=1e6)),
        st.booleans(),  # labels by name rather than in order
    ),
    max_size=50,
)


@given(increments)
def test_the_counter_exposition_is_prometheus_clients_own(incremented: list[tuple[str, float, bool]]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    loop = LoopCounter("lockstep_x", "Items.", ["scorer"], ours)
    reference = Counter("lockstep_x", "Items.", ["scorer"], registry=theirs)
    for scorer, amount, named in incremented:
        (loop.labels(scorer=scorer) if named else loop.labels(scorer)).inc(amount)
        reference.labels(scorer).inc(amount)
    assert _lines(ours) == _lines(theirs)


def test_a_counter_only_goes_up() -> None:
    counter = LoopCounter("lockstep_x", "Items.", ["scorer"], CollectorRegistry())
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels("embedding").inc(-1)
