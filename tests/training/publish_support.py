"""Shared builders for the publishing tests: types, vector sets, and a snapshot of a prefix's keys."""

from __future__ import annotations

import numpy as np
import redis

from contract.keys import Keys, Kind
from contract.types import EmbeddingType, Family, Similarity
from training.publish import VectorSet
from training.registry import register_type

DIM = 8


def direct_type(
    client: redis.Redis, keys: Keys, name: str = "als-d8", similarity: str = "dot"
) -> EmbeddingType:
    """Register and return a direct-direct type of dim 8."""
    etype = EmbeddingType(name=name, family=Family.DIRECT_DIRECT, dim=DIM, similarity=Similarity(similarity))
    register_type(client, keys, etype)
    return etype


def indirect_type(client: redis.Redis, keys: Keys, family: Family, name: str = "tags-d8") -> EmbeddingType:
    """Register and return an indirect type with namespaces item, tag and author."""
    etype = EmbeddingType(
        name=name,
        family=family,
        dim=DIM,
        similarity=Similarity.DOT,
        attribute_namespaces=("item", "tag", "author"),
    )
    register_type(client, keys, etype)
    return etype


def vectors(ids: list[str], seed: int = 0, dim: int = DIM) -> VectorSet:
    """A VectorSet of random float32 vectors for `ids`."""
    rng = np.random.default_rng(seed)
    return VectorSet(tuple(ids), rng.standard_normal((len(ids), dim)).astype(np.float32))


def users(n: int, seed: int = 0) -> VectorSet:
    """n user vectors u0..u{n-1}."""
    return vectors([f"u{i}" for i in range(n)], seed)


def items(n: int, seed: int = 1) -> VectorSet:
    """n item vectors 1..n."""
    return vectors([str(i + 1) for i in range(n)], seed)


def snapshot(client: redis.Redis, keys: Keys) -> dict[bytes, bytes | None]:
    """Every key of the prefix with its DUMP (type and content), to prove nothing was written."""
    names = sorted(client.scan_iter(match=keys.all_keys_pattern(), count=1000))
    return {name: client.dump(name) for name in names}


def buckets_pattern(keys: Keys, type_name: str, version: str) -> str:
    """SCAN pattern of every bucket hash of a version, all kinds (tests look for leftovers with it)."""
    return f"{keys.prefix}:{{{type_name}:{version}:*"


def bucket_keys(client: redis.Redis, keys: Keys, type_name: str, version: str, kind: Kind) -> list[bytes]:
    """Every bucket hash of one kind of a version that exists, found by SCAN (so leftovers count too)."""
    found = client.scan_iter(match=buckets_pattern(keys, type_name, version), count=10_000)
    # prefix:{type:version:kind:group}:vec:bucket
    return sorted(key for key in found if key.split(b"}")[0].rsplit(b":", 2)[1] == kind.value.encode())


def stored(client: redis.Redis, keys: Keys, type_name: str, version: str, kind: Kind) -> dict[bytes, bytes]:
    """Every stored vector of one kind of a version, id -> bytes, merged over its bucket hashes."""
    merged: dict[bytes, bytes] = {}
    for key in bucket_keys(client, keys, type_name, version, kind):
        merged.update(client.hgetall(key))
    return merged


def stored_count(client: redis.Redis, keys: Keys, type_name: str, version: str, kind: Kind) -> int:
    """How many vectors of one kind of a version are stored, over all its bucket hashes."""
    return sum(int(client.hlen(key)) for key in bucket_keys(client, keys, type_name, version, kind))
