"""The bucket rule every reader and writer of vector hashes shares (pure: no servers)."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.keys import Keys, Kind
from contract.manifest import Buckets, Counts
from contract.vectors import BUCKET_TARGET, bucket_of, buckets_for, buckets_of, by_bucket


def test_bucket_of_is_crc32_of_the_utf8_id_so_any_language_can_follow_it() -> None:
    assert bucket_of("u1", 1) == 0
    assert bucket_of("u1", 97) == zlib.crc32(b"u1") % 97
    assert bucket_of("tag:sci-fi", 10) == zlib.crc32(b"tag:sci-fi") % 10
    assert bucket_of("caf\u00e9", 7) == zlib.crc32("caf\u00e9".encode()) % 7
    with pytest.raises(ValueError, match="buckets must be >= 1"):
        bucket_of("u1", 0)


@given(st.lists(st.text(min_size=1, max_size=20), max_size=50), st.integers(1, 5000))
def test_the_vectorised_and_grouped_forms_follow_the_same_rule(ids: list[str], buckets: int) -> None:
    assert buckets_of(ids, buckets).tolist() == [bucket_of(i, buckets) for i in ids]
    groups = by_bucket(ids, buckets)
    assert sorted(i for group in groups.values() for i in group) == sorted(ids)
    assert all(bucket_of(i, buckets) == b for b, group in groups.items() for i in group)


def test_buckets_for_keeps_about_64_vectors_per_bucket() -> None:
    assert [buckets_for(n) for n in (0, 1, 64, 65, 128, 50_000)] == [1, 1, 1, 2, 2, 782]
    with pytest.raises(ValueError, match="count must be >= 0"):
        buckets_for(-1)
    # Sequential ids, as the models produce them, spread evenly: no bucket near the listpack limit (128).
    ids = [str(i) for i in range(50_000)]
    sizes = [len(g) for g in by_bucket(ids, buckets_for(len(ids))).values()]
    assert len(sizes) == 782 and max(sizes) < 2 * BUCKET_TARGET


def test_manifest_buckets_follow_the_counts() -> None:
    buckets = Buckets.for_counts(Counts(user=50_000, item=65, attr=0))
    assert (buckets.of(Kind.USER), buckets.of(Kind.ITEM), buckets.of(Kind.ATTRIBUTE)) == (782, 2, 1)


def test_vector_keys_carry_their_group_tag() -> None:
    keys = Keys("p")
    key = keys.vectors("als-d64", "20170101T000000Z-20170701T000000Z", Kind.ATTRIBUTE, 12)
    assert key == "p:{als-d64:20170101T000000Z-20170701T000000Z:attr:0}:vec:12"
    assert keys.vectors("als-d64", "v", Kind.USER, 16) == "p:{als-d64:v:user:1}:vec:16"
    assert keys.vectors_pending("als-d64") == "p:{als-d64}:pending"  # one hash for every version
