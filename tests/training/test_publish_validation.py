"""Every validation error is raised before the first write: the prefix's keys stay exactly as they were."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import redis
from publish_support import DIM, direct_type, indirect_type, items, snapshot, users, vectors

from contract.keys import Keys
from contract.types import EmbeddingType, Family
from contract.versions import Frame
from training.publish import PublishError, VectorSet, publish
from training.registry import UnknownType, get_type

FRAME = Frame.parse("2017-01-01..2017-07-01")


def _with_value(vs: VectorSet, row: int, value: float) -> VectorSet:
    matrix = vs.matrix.copy()
    matrix[row, 2] = value
    return VectorSet(vs.ids, matrix)


def _with_id(vs: VectorSet, row: int, entity: str) -> VectorSet:
    ids = list(vs.ids)
    ids[row] = entity
    return VectorSet(tuple(ids), vs.matrix)


Case = Callable[[EmbeddingType], dict[str, Any]]

DIRECT_CASES: dict[str, tuple[Case, str]] = {
    "nan": (
        lambda t: {"users": _with_value(users(5), 3, np.nan), "items": items(2)},
        r"row 3 \(id 'u3'\).*NaN",
    ),
    "+inf": (lambda t: {"users": users(5), "items": _with_value(items(4), 1, np.inf)}, r"row 1 .*infinity"),
    "-inf": (lambda t: {"users": _with_value(users(5), 0, -np.inf), "items": items(2)}, r"row 0 .*infinity"),
    "float64 overflow": (
        lambda t: {"users": VectorSet(("a", "b"), np.array([[1e39] * DIM, [0.0] * DIM])), "items": items(2)},
        r"row 0 .*infinity",
    ),
    "wrong dim": (lambda t: {"users": vectors(["a", "b"], dim=DIM + 1), "items": items(2)}, "dim 9.*dim 8"),
    "1-d matrix": (lambda t: {"users": VectorSet(("a",), np.zeros(DIM)), "items": items(2)}, "2-d matrix"),
    "duplicate id": (
        lambda t: {"users": _with_id(users(5), 4, "u1"), "items": items(2)},
        "row 4: id 'u1' repeats row 1",
    ),
    "empty id": (lambda t: {"users": _with_id(users(5), 2, ""), "items": items(2)}, "row 2: id '' is empty"),
    "malformed id": (
        lambda t: {"users": _with_id(users(5), 1, "u 1"), "items": items(2)},
        "row 1: id 'u 1' must match",
    ),
    "newline inside id": (lambda t: {"users": _with_id(users(5), 2, "a\nb"), "items": items(2)}, "row 2"),
    "newline in id": (lambda t: {"users": _with_id(users(5), 1, "u1\n"), "items": items(2)}, "row 1"),
    "too many ids": (
        lambda t: {"users": VectorSet(("a", "b", "c"), users(2).matrix), "items": items(2)},
        "3 ids but 2",
    ),
    "too few ids": (
        lambda t: {"users": VectorSet(("a",), users(2).matrix), "items": items(2)},
        "1 ids but 2",
    ),
    "no vectors": (
        lambda t: {"users": VectorSet((), np.zeros((0, DIM), np.float32)), "items": items(2)},
        "no vectors",
    ),
    "strings as vectors": (
        lambda t: {"users": VectorSet(("a",), np.array([["x"] * DIM])), "items": items(2)},
        "float32",
    ),
    "attributes on direct-direct": (
        lambda t: {"users": users(2), "items": items(2), "attributes": vectors(["tag:x"])},
        "no attribute vectors",
    ),
    "missing items": (lambda t: {"users": users(2)}, "needs items"),
    "trainer not strings": (
        lambda t: {"users": users(2), "items": items(2), "trainer": {"epochs": 3}},
        "trainer",
    ),
    "chunk size": (lambda t: {"users": users(2), "items": items(2), "chunk_size": 0}, "chunk_size"),
}

INDIRECT_CASES: dict[str, tuple[Case, str]] = {
    "users on indirect": (
        lambda t: {"users": users(2), "items": items(2), "attributes": vectors(["item:1"])},
        "users are aggregated",
    ),
    "attribute without namespace": (
        lambda t: {"items": items(2), "attributes": vectors(["item:1", "fantasy"])},
        "row 1: attribute id 'fantasy' must be 'namespace:id'",
    ),
    "undeclared namespace": (
        lambda t: {"items": items(2), "attributes": vectors(["genre:x"])},
        "row 0: attribute id 'genre:x'.*item, tag, author",
    ),
    "empty attribute id after namespace": (
        lambda t: {"items": items(2), "attributes": vectors(["tag:"])},
        "row 0: attribute id 'tag:'",
    ),
    "missing attributes": (lambda t: {"items": items(2)}, "needs attributes"),
}


@pytest.mark.parametrize("case", DIRECT_CASES, ids=list(DIRECT_CASES))
def test_direct_publish_refusals_write_nothing(redis_client: redis.Redis, keys: Keys, case: str) -> None:
    etype = direct_type(redis_client, keys)
    build, message = DIRECT_CASES[case]
    before = snapshot(redis_client, keys)
    with pytest.raises(PublishError, match=message):
        publish(redis_client, keys, etype, FRAME, **build(etype))
    assert snapshot(redis_client, keys) == before


@pytest.mark.parametrize("case", INDIRECT_CASES, ids=list(INDIRECT_CASES))
def test_indirect_publish_refusals_write_nothing(redis_client: redis.Redis, keys: Keys, case: str) -> None:
    etype = indirect_type(redis_client, keys, Family.INDIRECT_DIRECT)
    build, message = INDIRECT_CASES[case]
    before = snapshot(redis_client, keys)
    with pytest.raises(PublishError, match=message):
        publish(redis_client, keys, etype, FRAME, **build(etype))
    assert snapshot(redis_client, keys) == before


def test_zero_vectors_are_refused_for_cosine_types(redis_client: redis.Redis, keys: Keys) -> None:
    etype = direct_type(redis_client, keys, name="cos-d8", similarity="cosine")
    before = snapshot(redis_client, keys)
    zero = VectorSet(("1", "2"), np.vstack([np.ones(DIM), np.zeros(DIM)]).astype(np.float32))
    with pytest.raises(PublishError, match=r"row 1 \(id '2'\) is all zeros"):
        publish(redis_client, keys, etype, FRAME, users=users(2), items=zero)
    assert snapshot(redis_client, keys) == before


def test_an_unknown_type_is_named(redis_client: redis.Redis, keys: Keys) -> None:
    direct_type(redis_client, keys)
    with pytest.raises(UnknownType, match="unknown embedding type 'nope'; registered: als-d8"):
        get_type(redis_client, keys, "nope")
    assert issubclass(UnknownType, PublishError)
