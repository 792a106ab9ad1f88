"""serving.metrics.LoopHistogram: the exposition prometheus_client's own Histogram gives for the same data."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from serving.metrics import _LATENCY_BUCKETS, LoopHistogram

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
