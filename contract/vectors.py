"""The byte encoding of vectors in Redis and on the wire: little-endian float32, row-major."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

DTYPE = np.dtype("<f4")
Matrix = npt.NDArray[np.float32]

# Vectors per bucket hash on average. Redis keeps a hash of at most hash-max-listpack-entries (we set
# 128) small values in one compact listpack; 64 on average leaves room for the fullest buckets.
BUCKET_TARGET = 64

# What every Redis node must be configured with for buckets to stay listpacks (checked at startup, set by
# `lockstep services up`): entries for the fullest buckets, values for vectors up to dim 1024.
LISTPACK_ENTRIES = 2 * BUCKET_TARGET
LISTPACK_VALUE = 4096

# Consecutive buckets share a hash tag (contract.keys.Keys.vectors) in groups of this many: one script can
# check a whole group, while a version's groups spread over a Redis Cluster's slots.
BUCKETS_PER_GROUP = 16


def buckets_for(count: int) -> int:
    """How many bucket hashes a version's `count` vectors of one kind are spread over (at least 1)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return max(1, -(-count // BUCKET_TARGET))


def bucket_of(entity_id: str, buckets: int) -> int:
    """The bucket holding `entity_id`'s vector: crc32 of its UTF-8 bytes mod `buckets`.

    crc32 rather than hash(): every process and language must agree, and Python salts str hashes.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    return zlib.crc32(entity_id.encode()) % buckets


def group_of(bucket: int) -> int:
    """The group (hash tag) of a bucket."""
    return bucket // BUCKETS_PER_GROUP


def buckets_of(ids: Sequence[str], buckets: int) -> npt.NDArray[np.int64]:
    """`bucket_of` of many ids at once (the same rule; the modulo runs in numpy)."""
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    crc32 = zlib.crc32
    hashes = np.fromiter((crc32(entity.encode()) for entity in ids), np.int64, len(ids))
    return hashes % buckets


def by_bucket(ids: Iterable[str], buckets: int) -> dict[int, list[str]]:
    """`ids` grouped by bucket, each group keeping the given order (one HMGET per group)."""
    groups: dict[int, list[str]] = {}
    for entity in ids:
        groups.setdefault(bucket_of(entity, buckets), []).append(entity)
    return groups


def encode(vector: npt.ArrayLike) -> bytes:
    """One vector (or a row-major matrix) as little-endian float32 bytes."""
    return np.ascontiguousarray(vector, dtype=DTYPE).tobytes()


def decode(data: bytes, dim: int) -> Matrix:
    """Bytes back to a (n, dim) float32 matrix; refuses a length that is not a whole number of rows."""
    if dim <= 0 or len(data) % (4 * dim):
        raise ValueError(f"{len(data)} bytes is not a whole number of float32 vectors of dim {dim}")
    return np.frombuffer(data, dtype=DTYPE).reshape(-1, dim)


def decode_one(data: bytes, dim: int) -> Matrix:
    """Bytes of exactly one vector to a (dim,) float32 array."""
    if len(data) != 4 * dim:
        raise ValueError(f"{len(data)} bytes is not one float32 vector of dim {dim}")
    return np.frombuffer(data, dtype=DTYPE)


def to_base64(matrix: Matrix) -> str:
    """A matrix as base64 of its float32 bytes (the compact JSON encoding of vector batches)."""
    return base64.b64encode(encode(matrix)).decode("ascii")


def from_base64(text: str, dim: int) -> Matrix:
    """Inverse of `to_base64`."""
    return decode(base64.b64decode(text, validate=True), dim)
