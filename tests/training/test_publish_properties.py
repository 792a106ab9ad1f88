"""Property tests: version ids and their order, the validation rules, the checksum."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from publish_support import direct_type

from contract.keys import Keys, Kind
from contract.types import EmbeddingType, Family, Similarity
from contract.versions import Frame
from contract.wire import ENTITY_ID
from training.publish import VectorSet, checksum, publish
from training.retention import list_versions
from training.validation import PublishError, checked_matrix

EPOCH = datetime(2015, 1, 1, tzinfo=UTC)
_names = itertools.count()

frames = st.builds(
    lambda start, length: Frame(EPOCH + timedelta(seconds=start), EPOCH + timedelta(seconds=start + length)),
    st.integers(0, 10**8),
    st.integers(1, 10**8),
)


@given(frames)
def test_a_frame_and_its_version_id_round_trip(frame: Frame) -> None:
    assert Frame.from_version_id(frame.version_id) == frame


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(frames, min_size=1, max_size=6))
def test_versions_list_by_frame_end_then_publish_order(
    redis_client: redis.Redis, keys: Keys, published: list[Frame]
) -> None:
    etype = direct_type(redis_client, keys, name=f"prop-{next(_names)}")
    rng = np.random.default_rng(0)
    seqs: dict[str, int] = {}
    ids = ("a", "b")
    for frame in published:
        if frame.version_id in seqs:  # the same frame is the same version
            continue
        matrix = rng.standard_normal((2, 8)).astype(np.float32)
        result = publish(
            redis_client, keys, etype, frame, users=VectorSet(ids, matrix), items=VectorSet(ids, matrix)
        )
        seqs[frame.version_id] = result.manifest.seq

    listed = list_versions(redis_client, keys, etype.name)
    expected = sorted(seqs, key=lambda v: (Frame.from_version_id(v).end, seqs[v]))
    assert [m.version for m in listed] == expected
    assert sorted(seqs.values()) == list(range(1, len(seqs) + 1))


ETYPE = EmbeddingType(name="p", family=Family.DIRECT_DIRECT, dim=3, similarity=Similarity.COSINE)
id_text = st.one_of(
    st.from_regex(ENTITY_ID, fullmatch=True).filter(lambda s: "\n" not in s),
    st.text(max_size=4),
)
cells = st.one_of(st.floats(-1e3, 1e3, width=32), st.sampled_from([np.nan, np.inf, -np.inf, 0.0]))


@given(st.lists(id_text, max_size=6), st.data())
def test_validation_accepts_exactly_the_valid_sets(ids: list[str], data: st.DataObject) -> None:
    rows = data.draw(st.integers(0, 7))
    matrix = np.array(
        data.draw(st.lists(st.lists(cells, min_size=3, max_size=3), min_size=rows, max_size=rows))
    )
    matrix = matrix.reshape(rows, 3).astype(np.float32)
    valid = (
        len(ids) == rows
        and rows > 0
        and all(ENTITY_ID.match(i) and "\n" not in i for i in ids)
        and len(set(ids)) == len(ids)
        and bool(np.isfinite(matrix).all())
        and bool(matrix.any(axis=1).all())  # cosine: no zero rows
    )
    if valid:
        np.testing.assert_array_equal(checked_matrix(ETYPE, Kind.USER, ids, matrix, "f.npz"), matrix)
    else:
        with pytest.raises(PublishError, match=r"f\.npz"):
            checked_matrix(ETYPE, Kind.USER, ids, matrix, "f.npz")


@given(st.integers(1, 30))
def test_checksum_ignores_row_order_and_sees_every_bit(n: int) -> None:
    rng = np.random.default_rng(n)
    ids = [f"i{k}" for k in range(n)]
    matrix = rng.standard_normal((n, 4)).astype(np.float32)
    base = checksum([(Kind.ITEM, ids, matrix)])

    order = rng.permutation(n)
    assert checksum([(Kind.ITEM, [ids[k] for k in order], matrix[order])]) == base
    flipped = matrix.copy()
    flipped.view(np.uint32)[rng.integers(n), rng.integers(4)] ^= 1  # one bit of one float
    assert checksum([(Kind.ITEM, ids, flipped)]) != base
    assert checksum([(Kind.USER, ids, matrix)]) != base  # the kind is part of every record
