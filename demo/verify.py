"""What the demo verifies: no response mixes versions, explained similarities match the stored vectors, and
answers to requests that name partitions come from those partitions only."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from redis.asyncio import Redis

from contract.keys import Keys, Kind
from contract.manifest import Buckets, Manifest
from contract.profiles import Profile
from contract.types import EmbeddingType, Family, Similarity
from contract.vectors import by_bucket, decode_one
from demo.load import Outcome

Vector = npt.NDArray[np.float64]
ITEM_NAMESPACE = "item:"
ABS_TOLERANCE = 1e-3  # OpenSearch keeps float32 vectors and returns float32 scores
REL_TOLERANCE = 1e-3


def mixes_versions(outcome: Outcome) -> bool:
    """Whether an embedding-scored item of the response has a version other than the response's."""
    return mixed(outcome.version, scored_versions(outcome))


def scored_versions(outcome: Outcome) -> list[str | None]:
    """The version of each embedding-scored item of the response, in order."""
    return [item.version for item in outcome.items if item.scorer == "embedding"]


def mixed(version: str | None, scored: Sequence[str | None]) -> bool:
    """The version invariant on what a response says: a response with embedding-scored items names one
    version, and every one of those items carries it."""
    if not scored:
        return False
    return version is None or any(item != version for item in scored)


def checkable(outcome: Outcome) -> bool:
    """A served response with explained embedding scores of a named version."""
    return (
        outcome.status == 200
        and outcome.version is not None
        and outcome.embedding_type is not None
        and any(item.scorer == "embedding" and item.similarity is not None for item in outcome.items)
    )


def sample(outcomes: Sequence[Outcome], size: int, seed: int = 11) -> list[Outcome]:
    """Up to `size` checkable responses, drawn evenly over the run."""
    candidates = [o for o in outcomes if checkable(o)]
    if len(candidates) <= size:
        return candidates
    return sorted(random.Random(seed).sample(candidates, size), key=lambda o: o.at)


def similarity(kind: Similarity, user: Vector, item: Vector) -> float:
    """The model similarity (higher is more similar), as serving reports it under explain."""
    if kind is Similarity.DOT:
        return float(user @ item)
    if kind is Similarity.COSINE:
        norm = float(np.linalg.norm(user) * np.linalg.norm(item))
        return float(user @ item) / norm if norm else 0.0
    return -float(np.sum((user - item) ** 2))


def close(expected: float, reported: float) -> bool:
    """Equal within the float32 tolerance."""
    return abs(expected - reported) <= ABS_TOLERANCE + REL_TOLERANCE * abs(expected)


@dataclass
class SimilarityReport:
    """How many explained similarities were recomputed, and which did not match."""

    responses: int = 0
    items: int = 0
    mismatches: list[str] = field(default_factory=list)
    max_error: float = 0.0
    skipped: list[str] = field(default_factory=list)  # responses whose user vector could not be rebuilt


class VectorReader:
    """Reads vectors of an explicit version straight from Redis (never through a process)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._buckets: dict[tuple[str, str], Buckets | None] = {}  # versions are immutable

    async def _bucket_counts(self, type_name: str, version: str) -> Buckets | None:
        if (type_name, version) not in self._buckets:
            raw = await self.redis.get(self.keys.manifest(type_name, version))
            self._buckets[(type_name, version)] = (
                None if raw is None else Manifest.model_validate_json(raw).buckets
            )
        return self._buckets[(type_name, version)]

    async def _rows(
        self, type_name: str, version: str, kind: Kind, ids: Sequence[str], dim: int
    ) -> dict[str, Vector]:
        if not ids:
            return {}
        buckets = await self._bucket_counts(type_name, version)
        if buckets is None:
            return {}
        groups = by_bucket(ids, buckets.of(kind))
        pipe = self.redis.pipeline(transaction=False)
        for bucket, members in groups.items():
            pipe.hmget(self.keys.vectors(type_name, version, kind, bucket), members)
        replies = await pipe.execute()
        # The client returns bytes (no decode_responses): vectors are raw float32.
        return {
            i: decode_one(r, dim).astype(np.float64)
            for members, raw in zip(groups.values(), replies, strict=True)
            for i, r in zip(members, raw, strict=True)
            if isinstance(r, bytes)
        }

    async def items(self, etype: EmbeddingType, version: str, ids: Sequence[str]) -> dict[str, Vector]:
        """Item vectors of the version."""
        return await self._rows(etype.name, version, Kind.ITEM, ids, etype.dim)

    async def user(self, etype: EmbeddingType, version: str, body: dict[str, Any]) -> Vector | None:
        """The user vector serving must have used: the same rules as the orchestrator's, on this version.

        Explicit attributes, else a direct user vector (direct-direct), else the stored profile's items
        as `item:<id>` attributes; aggregates are weighted sums scaled to unit length, and an `item:X`
        attribute without an attribute vector counts with X's item vector.
        """
        if body.get("attributes"):
            weighted = [(str(a["id"]), float(a["weight"])) for a in body["attributes"]]
        else:
            user_id = str(body["user_id"])
            if etype.family is Family.DIRECT_DIRECT:
                found = await self._rows(etype.name, version, Kind.USER, [user_id], etype.dim)
                if user_id in found:
                    return found[user_id]
            raw = await self.redis.get(self.keys.profile(user_id))
            if raw is None:
                return None
            profile = Profile.model_validate_json(raw)
            weighted = [(f"{ITEM_NAMESPACE}{i.item_id}", i.weight) for i in profile.interactions]
        ids = list(dict.fromkeys(a for a, _ in weighted))
        vectors = await self._rows(etype.name, version, Kind.ATTRIBUTE, ids, etype.dim)
        items = [a for a in ids if a not in vectors and a.startswith(ITEM_NAMESPACE)]
        by_item = await self._rows(
            etype.name, version, Kind.ITEM, [a[len(ITEM_NAMESPACE) :] for a in items], etype.dim
        )
        vectors.update({f"{ITEM_NAMESPACE}{i}": v for i, v in by_item.items()})
        total = np.zeros(etype.dim, dtype=np.float64)
        used = False
        for attribute, weight in weighted:
            vector = vectors.get(attribute)
            if vector is not None:
                total += weight * vector
                used = True
        if not used:
            return None
        norm = float(np.linalg.norm(total))
        return total / norm if norm > 0 else total


async def recompute(
    reader: VectorReader, types: dict[str, EmbeddingType], outcomes: Sequence[Outcome]
) -> SimilarityReport:
    """Recompute each explained embedding similarity from the vectors of the response's own version."""
    report = SimilarityReport()
    for outcome in outcomes:
        assert outcome.embedding_type is not None and outcome.version is not None
        etype = types[outcome.embedding_type]
        user = await reader.user(etype, outcome.version, outcome.body)
        if user is None:
            report.skipped.append(f"{outcome.embedding_type} {outcome.version}: no user vector to rebuild")
            continue
        scored = [i for i in outcome.items if i.scorer == "embedding" and i.similarity is not None]
        found = await reader.items(etype, outcome.version, [i.item_id for i in scored])
        report.responses += 1
        for item in scored:
            assert item.similarity is not None
            report.items += 1
            vector = found.get(item.item_id)
            if vector is None:
                report.mismatches.append(
                    f"{etype.name} {outcome.version}: item {item.item_id} was scored by embedding but "
                    "has no item vector of that version"
                )
                continue
            expected = similarity(etype.similarity, user, vector)
            error = abs(expected - item.similarity)
            report.max_error = max(report.max_error, error)
            if not close(expected, item.similarity):
                report.mismatches.append(
                    f"{etype.name} {outcome.version}: item {item.item_id} explain.similarity "
                    f"{item.similarity:.6f}, recomputed {expected:.6f}"
                )
    return report


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, int(np.ceil(share * len(ordered))))
    return ordered[rank - 1]


@dataclass
class PartitionReport:
    """Responses to requests that named partitions, and items they returned from elsewhere."""

    responses: int = 0
    items: int = 0
    violations: list[str] = field(default_factory=list)


def partition_scoped(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """Served responses to requests that named partitions."""
    return [o for o in outcomes if o.status == 200 and o.body.get("partitions")]


def check_partitions(outcomes: Sequence[Outcome], partition_of: Mapping[str, str]) -> PartitionReport:
    """Every item of a partition-scoped response must be, in the catalog, in one of the partitions named.

    `partition_of` maps item ids to their partition field's value as the catalog store holds it; an item
    the catalog does not hold counts as a violation too.
    """
    report = PartitionReport()
    for outcome in partition_scoped(outcomes):
        named = set(outcome.body["partitions"])
        report.responses += 1
        for item in outcome.items:
            report.items += 1
            found = partition_of.get(item.item_id)
            if found not in named:
                report.violations.append(
                    f"item {item.item_id} ({'not in the catalog' if found is None else found}) answered "
                    f"a request for {sorted(named)}"
                )
    return report
