"""Publishing a version: validate everything, write vectors in pipelined chunks, then the manifest last."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
from redis.cluster import RedisCluster
from redis.exceptions import AskError, LockNotOwnedError, MovedError
from redis.lock import Lock

from contract.keys import Keys, Kind
from contract.manifest import Buckets, Counts, Manifest
from contract.redis_clients import SyncRedis
from contract.replication import (
    UNCONFIRMED,
    NotReplicated,
    Replication,
    primary_connection,
    receive,
    run_script,
    run_script_on,
    send,
    wait_for_replicas,
)
from contract.types import EmbeddingType
from contract.vectors import BUCKETS_PER_GROUP, Matrix, buckets_for, buckets_of
from contract.versions import Frame
from training import leftovers
from training.publish_lock import publish_lock, release, token
from training.validation import PublishError, check_kinds, checked_matrix

__all__ = [
    "PublishError",
    "PublishResult",
    "VectorSet",
    "checksum",
    "publish",
    "read_manifest",
]

LOCK_TTL_SECONDS = 30.0

# Every bucket's field count of one group in one command: a pipeline of ~1,000 HLENs costs more in
# redis-py's packing and parsing than the check is worth. A group's buckets share a slot.
_HLENS = """
local counts = {}
for i, key in ipairs(KEYS) do counts[i] = redis.call('HLEN', key) end
return counts
"""
# The commit, one script on the type's slot: the manifest and its published-set entry appear together,
# only while we hold the lock, and the version's pending mark goes with them.
# KEYS: lock, manifest, published, pending; ARGV: token, manifest JSON, seq, version.
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lost' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'exists' end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
redis.call('HDEL', KEYS[4], ARGV[4])
redis.call('DEL', KEYS[1])
return 'ok'
"""
# An existing manifest, written again as it is: WAIT after it covers the manifest's own write too (the
# replication stream is ordered), so a re-run confirms a commit whose acknowledgement was missed.
_CONFIRM = """
local raw = redis.call('GET', KEYS[1])
if raw then redis.call('SET', KEYS[1], raw) end
return raw
"""


@dataclass(frozen=True, eq=False)
class VectorSet:
    """Ids and their vectors, row i belonging to ids[i]; `source` names the file it came from, if any."""

    ids: tuple[str, ...]
    matrix: np.ndarray  # (len(ids), dim) float32
    source: str = ""


class PublishResult(NamedTuple):
    """The version's manifest, and whether this call created it (False: identical content was there)."""

    manifest: Manifest
    created: bool


@dataclass(frozen=True)
class _Checked:
    kind: Kind
    ids: tuple[str, ...]
    vectors: Matrix

    @property
    def buckets(self) -> int:
        return buckets_for(len(self.ids))

    @cached_property
    def bucket_rows(self) -> np.ndarray:
        """Each row's bucket (contract.vectors.bucket_of)."""
        return buckets_of(self.ids, self.buckets)


def publish(
    client: SyncRedis,
    keys: Keys,
    etype: EmbeddingType,
    frame: Frame,
    *,
    users: VectorSet | None = None,
    items: VectorSet | None = None,
    attributes: VectorSet | None = None,
    trainer: Mapping[str, str] | None = None,
    chunk_size: int = 2000,
    progress: Callable[[int, int], None] | None = None,
    lock_ttl_seconds: float = LOCK_TTL_SECONDS,
    lock_wait_seconds: float | None = None,
    replication: Replication = UNCONFIRMED,
) -> PublishResult:
    """Publish one version of `etype` for `frame`; identical content again is a no-op, different refused.

    Everything is validated before the first write. Vectors go first, the manifest last together with
    the ZADD to the published set, so readers see the whole version or nothing. With `replication`, the
    vectors and then the manifest must reach that many replicas, or PublishError says the version is not
    confirmed (a re-run confirms it).
    """
    if chunk_size < 1:
        raise PublishError(f"chunk_size must be >= 1, got {chunk_size}")
    trainer_info = dict(trainer or {})
    for name, value in trainer_info.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise PublishError(f"trainer: {name!r}={value!r} must map strings to strings")
    given = {Kind.USER: users, Kind.ITEM: items, Kind.ATTRIBUTE: attributes}
    present = [(kind, vs) for kind, vs in given.items() if vs is not None]
    check_kinds(etype, [kind for kind, _ in present])
    checked = [
        _Checked(kind, tuple(vs.ids), checked_matrix(etype, kind, vs.ids, vs.matrix, vs.source))
        for kind, vs in present
    ]
    records = [(c.kind, c.ids, c.vectors) for c in checked]
    version = frame.version_id

    existing = _existing(client, keys, etype.name, version, replication)
    if existing is not None:
        return _settled(existing, checksum(records))

    lock = publish_lock(client, keys, etype.name, version, lock_ttl_seconds)
    # By default wait out one full lock lifetime: a publisher killed midway leaves its lock until expiry.
    wait = lock_ttl_seconds + 5.0 if lock_wait_seconds is None else lock_wait_seconds
    if not lock.acquire(blocking_timeout=wait):
        raise PublishError(
            f"another publish of {etype.name!r} version {version} holds {lock.name}; "
            "retry when it ends (the lock expires if its holder died)"
        )
    try:
        with ThreadPoolExecutor(max_workers=1) as pool, ExitStack() as held:
            # The checksum (mostly sha256 and numpy, which release the GIL) runs on another core while the
            # chunks are on the wire; only the manifest needs it.
            digest = pool.submit(checksum, records)
            # Another publisher of this version may have finished while we waited for the lock.
            existing = _existing(client, keys, etype.name, version, replication)
            if existing is not None:
                return _settled(existing, digest.result())
            # No manifest: buckets of this version may hold invisible leftovers of a killed publish or
            # delete, possibly with other content and other bucket counts; their pending mark says which.
            buckets = Buckets(**{c.kind.value: c.buckets for c in checked})
            earlier = leftovers.mark_pending(client, keys, etype.name, version, buckets)
            if earlier is not None:
                leftovers.clear(client, keys, etype.name, version, earlier)
            primaries = _Primaries(client, held)
            _write_vectors(primaries, keys, etype, version, checked, chunk_size, progress, lock)
            for c in checked:
                _check_stored(client, keys, etype.name, version, c)
            try:
                for connection in primaries.connections():
                    wait_for_replicas(connection, replication)
            except NotReplicated as exc:
                raise PublishError(
                    f"vectors of {etype.name!r} {version}: {exc}; the version stays unpublished"
                ) from exc
            manifest = _commit(
                client,
                primaries,
                keys,
                etype,
                frame,
                checked,
                digest.result(),
                trainer_info,
                lock,
                replication,
            )
    except (MovedError, AskError) as exc:
        raise PublishError(
            f"the Redis Cluster moved a slot while publishing {etype.name!r} {version} ({exc}); "
            "the version stays unpublished, re-run"
        ) from exc
    finally:
        release(lock)
    return PublishResult(manifest, True)


def checksum(records: Sequence[tuple[Kind, Sequence[str], Matrix]]) -> str:
    """sha256 over every (kind, id, bytes) record in sorted order (byte layout: docs/publishing.md)."""
    digest = hashlib.sha256()
    for kind, ids, vectors in sorted(records, key=lambda record: record[0].value):
        if not len(ids):
            continue
        order = sorted(range(len(ids)), key=ids.__getitem__)
        digest.update(f"{kind.value}\n{len(ids)}\n".encode())
        digest.update("".join(ids[row] + "\n" for row in order).encode())
        digest.update(np.ascontiguousarray(vectors[np.asarray(order)], dtype="<f4").tobytes())
    return digest.hexdigest()


def read_manifest(client: SyncRedis, keys: Keys, type_name: str, version: str) -> Manifest | None:
    """A version's manifest, or None while it is not published."""
    raw = client.get(keys.manifest(type_name, version))
    return None if raw is None else Manifest.model_validate_json(raw)


def _existing(
    client: SyncRedis, keys: Keys, type_name: str, version: str, replication: Replication
) -> Manifest | None:
    """The version's manifest if it is published; with `replication`, only once replicas have it."""
    if not replication.replicas:
        return read_manifest(client, keys, type_name, version)
    try:
        raw = run_script(client, _CONFIRM, [keys.manifest(type_name, version)], [], replication)
    except NotReplicated as exc:
        if exc.reply is None:
            return None  # nothing published to confirm
        raise PublishError(f"{type_name!r} {version} is published but not confirmed: {exc}") from exc
    return None if raw is None else Manifest.model_validate_json(raw)


def _settled(existing: Manifest, digest: str) -> PublishResult:
    if existing.checksum != digest:
        raise PublishError(
            f"version {existing.version} of type {existing.type_name!r} is already published with different "
            f"content (checksum {existing.checksum[:12]}…, yours {digest[:12]}…); versions are immutable, "
            "publish a new frame"
        )
    return PublishResult(existing, False)


class _Primaries:
    """One connection per primary, held for the whole publish: WAIT on each covers all it carried."""

    def __init__(self, client: SyncRedis, held: ExitStack) -> None:
        self._client = client
        self._held = held
        self._by_node: dict[str, Any] = {}

    def of(self, key: bytes | str) -> Any:
        """The connection to the primary owning `key`."""
        client = self._client
        node = client.get_node_from_key(key).name if isinstance(client, RedisCluster) else ""  # type: ignore[no-untyped-call]
        connection = self._by_node.get(node)
        if connection is None:
            connection = self._held.enter_context(primary_connection(client, key))
            self._by_node[node] = connection
        return connection

    def connections(self) -> list[Any]:
        """Every connection taken so far."""
        return list(self._by_node.values())


def _write_vectors(
    primaries: _Primaries,
    keys: Keys,
    etype: EmbeddingType,
    version: str,
    checked: Sequence[_Checked],
    chunk_size: int,
    progress: Callable[[int, int], None] | None,
    lock: Lock,
) -> None:
    total = sum(len(c.ids) for c in checked)
    done = 0
    row_bytes = 4 * etype.dim
    if progress is not None:
        progress(0, total)
    for c in checked:
        if not c.ids:
            continue
        rows = c.bucket_rows
        # Rows sorted by bucket, so a chunk holds few long runs and each run is one HSET to one bucket.
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        blob = c.vectors[order].tobytes()  # encoded once; each field value is a slice of it
        # Ids hold no newline (validation.ENTITY_ID): encoding them as one string runs at C speed.
        encoded = "\n".join(c.ids).encode().split(b"\n")
        encoded_ids = [encoded[row] for row in order.tolist()]
        key_of = [keys.vectors(etype.name, version, c.kind, b).encode() for b in range(c.buckets)]
        # A group's buckets share a slot, so one lookup per group finds every bucket's primary.
        connection_of = [primaries.of(key_of[b]) for b in range(0, c.buckets, BUCKETS_PER_GROUP)]
        for start in range(0, len(c.ids), chunk_size):
            end = min(start + chunk_size, len(c.ids))
            # Where the bucket changes inside the chunk: the runs' boundaries.
            cuts = [start, *(start + 1 + np.flatnonzero(rows[start + 1 : end] != rows[start : end - 1])), end]
            # Connections hash by identity: one batch of HSETs per primary.
            batches: dict[Any, list[bytes]] = {}
            for a, b in itertools.pairwise(cuts):
                bucket = int(rows[a])
                command = hset_command(key_of[bucket], encoded_ids[a:b], blob, int(a), row_bytes)
                batches.setdefault(connection_of[bucket // BUCKETS_PER_GROUP], []).append(command)
            _send_chunk(batches)
            try:
                lock.reacquire()  # one chunk's time to the next refresh is far below the lock's lifetime
            except LockNotOwnedError as exc:
                raise PublishError(
                    f"lost the publish lock {lock.name} (it expired); the version stays unpublished, re-run"
                ) from exc
            done += end - start
            if progress is not None:
                progress(done, total)


def hset_command(key: bytes, ids: Sequence[bytes], blob: bytes, first_row: int, row_bytes: int) -> bytes:
    """One `HSET key id vector ...` in RESP, rows taken from `blob` starting at `first_row`.

    Packed here rather than by redis-py: its per-argument packing costs more than the network, and
    every value has the same length, so one bytes-format per vector is all it takes.
    """
    value_head = b"$%d\r\n" % row_bytes
    offsets = range(first_row * row_bytes, (first_row + len(ids)) * row_bytes, row_bytes)
    parts = [b"*%d\r\n$4\r\nHSET\r\n$%d\r\n%b\r\n" % (2 + 2 * len(ids), len(key), key)]
    parts.extend(
        b"$%d\r\n%b\r\n%b%b\r\n" % (len(entity), entity, value_head, blob[offset : offset + row_bytes])
        for entity, offset in zip(ids, offsets, strict=True)
    )
    return b"".join(parts)


def _send_chunk(batches: Mapping[Any, Sequence[bytes]]) -> None:
    """Send packed HSETs, then read every reply: every primary gets its commands before any reply is
    read, so the primaries work in parallel."""
    for connection, commands in batches.items():
        send(connection, commands)
    for connection, commands in batches.items():
        receive(connection, len(commands))


def _commit(
    client: SyncRedis,
    primaries: _Primaries,
    keys: Keys,
    etype: EmbeddingType,
    frame: Frame,
    checked: Sequence[_Checked],
    digest: str,
    trainer: Mapping[str, str],
    lock: Lock,
    replication: Replication,
) -> Manifest:
    version = frame.version_id
    counts = Counts(**{c.kind.value: len(c.ids) for c in checked})
    # The seq is taken before the commit (the manifest embeds it); a run dying here only leaves a gap.
    seq = int(client.incr(keys.publish_seq(etype.name)))
    manifest = Manifest(
        type_name=etype.name,
        version=version,
        seq=seq,
        frame_start=frame.start,
        frame_end=frame.end,
        dim=etype.dim,
        counts=counts,
        buckets=Buckets.for_counts(counts),
        checksum=digest,
        created_at=datetime.now(UTC),
        trainer=dict(trainer),
    )
    names = [
        lock.name,
        keys.manifest(etype.name, version),
        keys.published(etype.name),
        keys.vectors_pending(etype.name),
    ]
    try:
        outcome = run_script_on(
            primaries.of(lock.name),
            _COMMIT,
            names,
            [token(lock), manifest.model_dump_json(), seq, version],
            replication,
        )
    except NotReplicated as exc:
        raise PublishError(
            f"{etype.name!r} {version} is committed on the primary but not confirmed: {exc} "
            "(re-run the same publish to confirm it)"
        ) from exc
    if outcome == b"lost":
        raise PublishError(f"lost the publish lock {lock.name} before the manifest; re-run")
    if outcome == b"exists":
        raise PublishError(f"{etype.name!r} {version} was published by someone else meanwhile; re-run")
    return manifest


def _check_stored(client: SyncRedis, keys: Keys, type_name: str, version: str, c: _Checked) -> None:
    """Every bucket holds exactly the vectors written to it (HLENs in one script per group, pipelined)."""
    if not c.ids:
        return
    expected = np.bincount(c.bucket_rows, minlength=c.buckets)
    names = [keys.vectors(type_name, version, c.kind, bucket) for bucket in range(c.buckets)]
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(names), BUCKETS_PER_GROUP):
        group = names[start : start + BUCKETS_PER_GROUP]
        pipe.execute_command("EVAL", _HLENS, len(group), *group)  # a cluster pipeline routes it by slot
    stored = np.asarray([n for counts in pipe.execute() for n in counts], dtype=np.int64)
    if not np.array_equal(stored, expected):
        raise PublishError(
            f"{c.kind.value} vectors of {type_name!r} {version}: {int(stored.sum())} stored, "
            f"{len(c.ids)} written; something removed them meanwhile, re-run"
        )
