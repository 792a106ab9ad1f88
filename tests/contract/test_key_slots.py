"""Every atomic operation touches one Redis Cluster slot; a version's buckets spread over many (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from contract.keys import Keys, Kind
from contract.types import TYPE_NAME
from contract.vectors import BUCKETS_PER_GROUP, group_of
from contract.versions import VERSION_ID

prefixes = st.from_regex(r"\A[a-z][a-z0-9-]{0,30}\Z")
type_names = st.from_regex(TYPE_NAME.pattern.replace("^", r"\A").replace("$", r"\Z"))
versions = st.from_regex(VERSION_ID.pattern.replace("^", r"\A").replace("$", r"\Z"))


def _slot(key: str) -> int:
    return key_slot(key.encode())


@given(prefixes, type_names, st.lists(versions, min_size=1, max_size=5, unique=True))
def test_a_types_control_keys_share_one_slot(prefix: str, type_name: str, ids: list[str]) -> None:
    keys = Keys(prefix)
    # Everything the commit, unpublish, compare-and-set, rollback, indexed records and the state read
    # touch together: manifests of any versions, the published set, the sequence, the pending marks,
    # in_use, the audit stream, the indexed hash and the publish locks.
    touched = [
        keys.published(type_name),
        keys.publish_seq(type_name),
        keys.vectors_pending(type_name),
        keys.in_use(type_name),
        keys.audit(type_name),
        keys.indexed(type_name),
        *(keys.manifest(type_name, v) for v in ids),
        *(keys.publish_lock(type_name, v) for v in ids),
    ]
    assert len({_slot(key) for key in touched}) == 1
    assert all(key.startswith(f"{prefix}:{{{type_name}}}:") for key in touched)


@given(prefixes, type_names, versions, st.sampled_from(list(Kind)), st.integers(0, 10_000))
def test_a_groups_buckets_share_one_slot(
    prefix: str, type_name: str, version: str, kind: Kind, bucket: int
) -> None:
    keys = Keys(prefix)
    first = group_of(bucket) * BUCKETS_PER_GROUP
    group = [keys.vectors(type_name, version, kind, b) for b in range(first, first + BUCKETS_PER_GROUP)]
    assert {_slot(key) for key in group} == {_slot(group[0])}


@given(prefixes, type_names, versions)
def test_a_versions_buckets_spread_over_many_slots(prefix: str, type_name: str, version: str) -> None:
    keys = Keys(prefix)
    groups = 64  # e.g. 65,536 users: 1,024 buckets
    slots = {_slot(keys.vectors(type_name, version, Kind.USER, g * BUCKETS_PER_GROUP)) for g in range(groups)}
    assert len(slots) > groups * 3 // 4  # crc16 of distinct tags: collisions are rare
    control = _slot(keys.in_use(type_name))
    assert len(slots - {control}) >= len(slots) - 1  # not piled onto the type's own slot


def test_keys_used_alone_hash_on_their_whole_name() -> None:
    keys = Keys("p")
    for key in (keys.types(), keys.profile("u1"), keys.indexer_lock("alias")):
        assert "{" not in key
    assert _slot(keys.profile("u1")) != _slot(keys.profile("u2"))  # profiles spread over the slots


def test_the_catalog_shares_one_slot() -> None:
    """An item, the id set, the schema record and the change stream are written in one transaction."""
    keys = Keys("p")
    catalog = {keys.catalog_item("1"), keys.catalog_item("x:2"), keys.catalog_ids(), keys.catalog_schema()}
    assert {_slot(key) for key in catalog | {keys.catalog_changes()}} == {_slot(keys.catalog_changes())}
