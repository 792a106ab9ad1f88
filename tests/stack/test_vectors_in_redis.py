"""A float32 vector survives a round trip through the real Redis byte for byte."""

from __future__ import annotations

import numpy as np
import pytest
import redis

from contract import vectors
from contract.keys import Keys, Kind


def test_float32_vector_round_trips_through_redis(redis_client: redis.Redis, keys: Keys) -> None:
    rng = np.random.default_rng(7)
    vector = rng.standard_normal(64).astype(np.float32)
    vector[:3] = [np.float32(1e-38), np.float32(-0.0), np.float32(3.4e38)]  # edge values keep their bits
    key = keys.vectors("als-d64", "v1", Kind.USER, 0)
    redis_client.hset(key, "u1", vectors.encode(vector))
    stored = redis_client.hget(key, "u1")
    assert isinstance(stored, bytes)
    assert len(stored) == 4 * 64
    assert stored[4:8] == b"\x00\x00\x00\x80"  # -0.0, little-endian: the sign bit is in the last byte
    back = vectors.decode_one(stored, 64)
    assert back.dtype == np.dtype("<f4")
    assert back.tobytes() == vector.astype("<f4").tobytes()
    np.testing.assert_array_equal(back, vector)


def test_matrix_round_trips_and_wrong_dim_is_refused(redis_client: redis.Redis, keys: Keys) -> None:
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    key = keys.vectors("als-d4", "v1", Kind.ITEM, 0)
    redis_client.hset(key, "batch", vectors.encode(matrix))
    stored = redis_client.hget(key, "batch")
    assert isinstance(stored, bytes)
    np.testing.assert_array_equal(vectors.decode(stored, 4), matrix)
    with pytest.raises(ValueError, match="not one float32 vector"):
        vectors.decode_one(stored, 4)
    with pytest.raises(ValueError, match="not a whole number"):
        vectors.decode(stored, 5)
